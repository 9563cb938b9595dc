"""One timestamp format for bookmarks, and the literal formats the API's ``$filter`` may take.

The SDK compares bookmarks as strings, so every change value the tap emits has exactly one shape:
UTC, microseconds, explicit offset (``2024-01-15T15:15:00.000000+00:00``). That is also the shape
of ``datetime.isoformat()`` on the SDK's replication signpost, so the two compare correctly.
"""

from __future__ import annotations

import datetime as dt
import re
import typing as t
from dataclasses import dataclass
from functools import lru_cache
from zoneinfo import ZoneInfo

UTC = dt.timezone.utc

# .NET serialises up to 7 fractional digits; Python parses at most 6.
_FRACTION = re.compile(r"(\.\d{6})\d+")
_UTC_TEXT = re.compile(
    r"(\d{4}-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12]\d|3[01])T(?:[01]\d|2[0-3]):[0-5]\d:[0-5]\d)"
    r"(?:\.(\d{1,7}))?(Z|\+00:00)?\Z"
)


class TimestampError(ValueError):
    """A change value that is not a recognisable datetime."""


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
    parsed = _parse(value)
    if parsed.tzinfo is None:
        return (parsed - _offset(parsed.isoformat()[:13], tenant_tz)).replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def _parse(value: object) -> dt.datetime:
    if not isinstance(value, str) or len(value) < 10:
        raise TimestampError(f"not an ISO-8601 datetime: {type(value).__name__}")
    try:
        # Python 3.11 reads "Z" and 7-digit .NET fractions itself; this is the hot path.
        return dt.datetime.fromisoformat(value)
    except ValueError:
        pass
    text = _FRACTION.sub(r"\1", value.strip())
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        return dt.datetime.fromisoformat(text)
    except ValueError as exc:
        raise TimestampError(f"not an ISO-8601 datetime: {value[:40]!r}") from exc


@lru_cache(maxsize=8192)
def _offset(hour: str, tenant_tz: dt.tzinfo) -> dt.timedelta:
    """UTC offset of a tenant-local hour (``YYYY-MM-DDTHH``), cached: zone maths is slow.

    Offsets change on whole hours in every zone CC tenants use; in the repeated hour of a
    DST change the first occurrence is taken, as ``datetime.replace(tzinfo=...)`` does.
    """
    local = dt.datetime.fromisoformat(hour + ":00:00")
    return local.replace(tzinfo=tenant_tz).utcoffset() or dt.timedelta(0)


def to_bookmark(instant: dt.datetime) -> str:
    """Render an instant in the tap's single bookmark format."""
    return instant.astimezone(UTC).isoformat(timespec="microseconds")


def normalise(value: object, tenant_tz: dt.tzinfo) -> str:
    """Normalise an API datetime to the bookmark format (1–2 µs: it runs per record)."""
    # Already UTC (or naive in a UTC tenant): only the text changes, no datetime maths. Days
    # after the 28th take the slow path, which knows how long each month is.
    if (
        isinstance(value, str)
        and (match := _UTC_TEXT.match(value))
        and (match.group(3) or tenant_tz is UTC)
        and value[8:10] <= "28"
    ):
        return f"{match.group(1)}.{(match.group(2) or '').ljust(6, '0')[:6]}+00:00"
    parsed = _parse(value)
    offset = parsed.utcoffset()
    if offset is None:
        text = t.cast("str", value)
        hour = text[:13] if text[10:11] in ("T", " ") else parsed.isoformat()[:13]
        offset = _offset(hour.replace(" ", "T"), tenant_tz)
    if offset:
        parsed -= offset
    return parsed.replace(tzinfo=None).isoformat(timespec="microseconds") + "+00:00"


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
