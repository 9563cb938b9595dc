"""One timestamp format for bookmarks, and the literal formats the API's ``$filter`` may take.

The SDK compares bookmarks as strings, so every change value the tap emits has exactly one shape:
UTC, microseconds, explicit offset (``2024-01-15T15:15:00.000000+00:00``). That is also the shape
of ``datetime.isoformat()`` on the SDK's replication signpost, so the two compare correctly.

Values are read by msgspec's RFC 3339 parser (in C; it also runs inside the typed page decoder,
see ``records.PageEncoder``), so that both record paths produce the same text: .NET's seventh
fraction digit is rounded to the microsecond, as PostgreSQL rounds it. Other ISO 8601 spellings
(no seconds, a comma fraction) go through ``datetime.fromisoformat``.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from zoneinfo import ZoneInfo

import msgspec

UTC = dt.timezone.utc

# Python parses at most 6 fractional digits; for the spellings msgspec refuses.
_FRACTION = re.compile(r"(\.\d{6})\d+")
_ENCODE = msgspec.json.encode
_ZERO = dt.timedelta(0)
#: Cached hours per zone before the cache starts over: a century, so memory stays bounded.
_MAX_CACHED_HOURS = 1_000_000


class TimestampError(ValueError):
    """A change value that is not a recognisable datetime."""


def to_datetime(value: object) -> dt.datetime:
    """Read an API datetime; naive values stay naive (they are tenant-local).

    Raises:
        TimestampError: The value is not an ISO-8601 datetime.
    """
    if not isinstance(value, str) or len(value) < 10:
        raise TimestampError(f"not an ISO-8601 datetime: {type(value).__name__}")
    try:
        return msgspec.convert(value, dt.datetime)
    except msgspec.ValidationError:
        pass
    text = _FRACTION.sub(r"\1", value.strip())
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        return dt.datetime.fromisoformat(text)
    except ValueError as exc:
        raise TimestampError(f"not an ISO-8601 datetime: {value[:40]!r}") from exc


def parse_datetime(value: object, tenant_tz: dt.tzinfo) -> dt.datetime:
    """Parse an API datetime into an aware UTC datetime.

    Naive values are the tenant's local time (CC serialises without an offset).

    Args:
        value: The value from the API.
        tenant_tz: Zone of naive values.

    Returns:
        The instant, in UTC.

    Raises:
        TimestampError: The value is not an ISO-8601 datetime.
    """
    parsed = to_datetime(value)
    if parsed.tzinfo is None:
        return (parsed - local_offset(parsed, tenant_tz)).replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def local_offset(local: dt.datetime, tenant_tz: dt.tzinfo) -> dt.timedelta:
    """UTC offset of a naive tenant-local datetime, cached per hour: zone maths is slow.

    Offsets change on whole hours in every zone CC tenants use; in the repeated hour of a
    DST change the first occurrence is taken, as ``datetime.replace(tzinfo=...)`` does.
    """
    offsets = _OFFSETS.get(tenant_tz)
    if offsets is None or len(offsets) > _MAX_CACHED_HOURS:
        offsets = _OFFSETS[tenant_tz] = {}
    hour = local.toordinal() * 24 + local.hour
    offset = offsets.get(hour)
    if offset is None:
        start = local.replace(minute=0, second=0, microsecond=0, tzinfo=tenant_tz, fold=0)
        offset = offsets[hour] = start.utcoffset() or _ZERO
    return offset


_OFFSETS: dict[dt.tzinfo, dict[int, dt.timedelta]] = {}


def utc_json(value: dt.datetime, tenant_tz: dt.tzinfo) -> bytes:
    """``value`` in the bookmark format, as a JSON string (``b'"...+00:00"'``).

    It runs for every record with a change value, so it avoids ``datetime`` formatting.

    Raises:
        TimestampError: The instant is outside the years 1 to 9999 in UTC (``0001-01-01T00:00``
            in a zone east of UTC, ``9999-12-31T23:00`` west of it).
    """
    zone_ = value.tzinfo
    try:
        if zone_ is None:
            value = value - local_offset(value, tenant_tz)
        elif zone_ is not UTC:
            value = value.astimezone(UTC)
    except OverflowError:
        raise TimestampError(f"out of range in UTC: {value.isoformat()}") from None
    # msgspec writes b'"2024-01-15T15:15:00.123456Z"', leaving out a zero fraction.
    text = _ENCODE(value)
    text = text[:-2] if zone_ is not None else text[:-1]
    return text + (b'+00:00"' if len(text) == 27 else b'.000000+00:00"')


def normalise(value: object, tenant_tz: dt.tzinfo) -> str:
    """Normalise an API datetime to the bookmark format.

    Raises:
        TimestampError: The value is not an ISO-8601 datetime.
    """
    return utc_json(to_datetime(value), tenant_tz)[1:-1].decode()


def to_bookmark(instant: dt.datetime) -> str:
    """Render an instant in the tap's single bookmark format."""
    return instant.astimezone(UTC).isoformat(timespec="microseconds")


def zone(name: str) -> dt.tzinfo:
    """Resolve an IANA zone name; ``UTC`` without touching tzdata."""
    return UTC if name.upper() == "UTC" else ZoneInfo(name)


@dataclass(frozen=True)
class LiteralFormat:
    """A way to write a datetime in ``$filter``.

    Attributes:
        name: Setting value (``filter_datetime_format``).
        template: ``{}`` is replaced by the datetime text.
        utc: Whether the text is UTC with ``Z``; otherwise naive tenant-local time.
    """

    name: str
    template: str
    utc: bool

    def render(self, instant: dt.datetime, tenant_tz: dt.tzinfo) -> str:
        """Write ``instant`` as this literal."""
        if self.utc:
            text = instant.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        else:
            text = instant.astimezone(tenant_tz).strftime("%Y-%m-%dT%H:%M:%S")
        return self.template.format(text)


#: Candidates seen for CC's ``$filter`` datetime literal, tried in this order when ``auto``.
LITERAL_FORMATS: tuple[LiteralFormat, ...] = (
    LiteralFormat("iso_utc", "{}", utc=True),
    LiteralFormat("iso_local", "{}", utc=False),
    LiteralFormat("datetime_local", "datetime'{}'", utc=False),
    LiteralFormat("datetimeoffset_utc", "datetimeoffset'{}'", utc=True),
)
LITERAL_BY_NAME: dict[str, LiteralFormat] = {f.name: f for f in LITERAL_FORMATS}
