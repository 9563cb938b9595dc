"""Datetime formatting and parsing in the forms Clinical Conductor serves and accepts.

Instants are held as float POSIX seconds (UTC). CC writes naive tenant-local strings
(``2024-01-15T10:15:00``, sometimes with seven .NET fractional digits); the ``plan`` profile writes
UTC strings with an offset, in a few spellings, so that a client's normalisation is exercised.
"""

from __future__ import annotations

import functools
import re
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)

#: ``YYYY-MM-DDTHH:MM[:SS[.fffffff]]`` with an optional ``Z`` or ``+hh:mm`` offset.
ISO_RE = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,7}))?)?(Z|[+-]\d{2}:\d{2})?$"
)


@functools.lru_cache(maxsize=16)
def zone(name: str) -> ZoneInfo:
    """Return the time zone called ``name`` (cached: ZoneInfo lookups are not free)."""
    return ZoneInfo(name)


def format_local(instant: float, tz: str, fraction: str = "") -> str:
    """Format ``instant`` as a naive tenant-local string, CC's own form.

    Args:
        instant: POSIX seconds.
        tz: IANA name of the tenant's time zone.
        fraction: Digits to append after the seconds (``""`` for none), e.g. seven .NET digits.
    """
    local = (_EPOCH + timedelta(seconds=int(instant))).astimezone(zone(tz))
    text = local.strftime("%Y-%m-%dT%H:%M:%S")
    return f"{text}.{fraction}" if fraction else text


def format_utc(instant: float, variant: int) -> str:
    """Format ``instant`` as UTC with an offset, in one of three spellings.

    Args:
        instant: POSIX seconds; a fractional part is written only by variant 2.
        variant: 0 for ``...Z``, 1 for ``...+00:00``, 2 for ``...ffffffZ`` with microseconds.
    """
    moment = _EPOCH + timedelta(seconds=instant)
    base = moment.strftime("%Y-%m-%dT%H:%M:%S")
    if variant == 1:
        return base + "+00:00"
    if variant == 2:
        return f"{base}.{moment.microsecond:06d}Z"
    return base + "Z"


@functools.lru_cache(maxsize=262144)
def parse_instant(text: str, tz: str) -> float | None:
    """Parse a stored or literal datetime into POSIX seconds.

    Naive strings are tenant-local (``tz``); fractional digits beyond microseconds are dropped.
    Cached because filters and sorts parse the same stored values on every request.

    Returns:
        The instant, or ``None`` when ``text`` is not a datetime.
    """
    match = ISO_RE.match(text)
    if match is None:
        return None
    year, month, day, hour, minute, second, frac, offset = match.groups()
    micro = int((frac or "0")[:6].ljust(6, "0"))
    naive = datetime(
        int(year), int(month), int(day), int(hour), int(minute), int(second or 0), micro
    )
    if offset is None:
        aware = naive.replace(tzinfo=zone(tz))
    elif offset == "Z":
        aware = naive.replace(tzinfo=timezone.utc)
    else:
        sign = 1 if offset[0] == "+" else -1
        delta = timedelta(hours=int(offset[1:3]), minutes=int(offset[4:6]))
        aware = naive.replace(tzinfo=timezone(sign * delta))
    return aware.timestamp()
