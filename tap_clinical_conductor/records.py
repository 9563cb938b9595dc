"""Turn an API object into a staging record: pure functions, no I/O.

A staging record is ``instance_id``, the parent key of a child stream, ``id``, ``modifiedDate``
(the change value normalised to UTC, or null) and ``data``, the API object untouched except for
NUL characters, which PostgreSQL JSONB cannot store.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import typing as t
from collections.abc import Mapping

from tap_clinical_conductor.catalogue import Endpoint
from tap_clinical_conductor.timestamps import TimestampError, normalise


class JSONObject(Mapping):
    """The API object inside a record, opaque to the SDK's per-record property walk.

    singer-sdk removes deselected properties by walking every nested dict of every record with
    uncached breadcrumb lookups, which costs more than everything else the tap does per record.
    ``data`` is one JSONB column, so nothing below it can be deselected: wrapping it in a
    Mapping that is not a dict skips the walk. The tap's writer serialises it as the object.
    """

    __slots__ = ("value",)

    def __init__(self, value: dict) -> None:
        self.value = value

    def __getitem__(self, key: str) -> object:
        return self.value[key]

    def __iter__(self) -> t.Iterator[str]:
        return iter(self.value)

    def __len__(self) -> int:
        return len(self.value)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, JSONObject):
            return self.value == other.value
        return self.value == other

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"JSONObject({self.value!r})"


class BadRecord(ValueError):
    """A record the tap cannot key; it is skipped and counted, never loaded half-right."""


def dig(obj: object, dotted: str) -> object:
    """Follow a dotted path (``study.id``) through nested objects; ``None`` when absent."""
    for part in dotted.split("."):
        if not isinstance(obj, dict):
            return None
        obj = obj.get(part)
    return obj


def id_is_string(endpoint: Endpoint) -> bool:
    """Whether the stream's ``id`` is a string (synthetic or a UID) rather than an integer."""
    return bool(endpoint.id_from) or endpoint.id_field == "instanceUID"


def record_id(endpoint: Endpoint, item: object) -> int | str:
    """The record's id: its id field, or a stable id built from ``id_from``.

    Raises:
        BadRecord: No usable id.
    """
    if endpoint.id_from:
        if endpoint.id_from == ("$value",):
            if not isinstance(item, str):
                raise BadRecord("list entry is not a string")
            return item
        parts = [dig(item, path) for path in endpoint.id_from]
        if all(p is None for p in parts):
            raise BadRecord("none of the key fields is present")
        canonical = json.dumps(parts, separators=(",", ":"), default=str)
        return hashlib.sha1(canonical.encode()).hexdigest()[:20]  # noqa: S324 - a key, not security
    if not isinstance(item, dict):
        raise BadRecord("record is not an object")
    value = item.get(endpoint.id_field)
    if value is None:
        raise BadRecord(f"record has no {endpoint.id_field!r}")
    if id_is_string(endpoint):
        return str(value)
    if isinstance(value, bool):
        raise BadRecord(f"{endpoint.id_field!r} is a boolean")
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        # Seen on some tenants: a numeric id serialised as a string on one page.
        return int(value)
    raise BadRecord(f"{endpoint.id_field!r} is not an integer")


def record_key(endpoint: Endpoint, parent: t.Mapping[str, object], item: object) -> tuple:
    """The key a staging row has, without ``instance_id``: (parent id,) id.

    Tests use it to key the sandbox's ground truth the way the tap keys records.
    """
    rid = record_id(endpoint, item)
    if endpoint.parent_key:
        return (parent[endpoint.parent_key], rid)
    return (rid,)


def strip_nul(value: object) -> object:
    r"""Remove ``\u0000`` from every string; PostgreSQL JSONB rejects it."""
    if isinstance(value, str):
        return value.replace("\x00", "") if "\x00" in value else value
    if isinstance(value, dict):
        return {strip_nul(k): strip_nul(v) for k, v in value.items()}
    if isinstance(value, list):
        return [strip_nul(v) for v in value]
    return value


def change_value(item: dict, field: str | None, tenant_tz: dt.tzinfo) -> str | None:
    """The record's change value in bookmark format; ``None`` without one.

    An unreadable value is ``None`` too: the record still loads (losing it would be worse) but
    cannot move the bookmark. The stream counts and reports these.
    """
    if field is None:
        return None
    raw = item.get(field)
    if raw is None:
        return None
    try:
        return normalise(raw, tenant_tz)
    except TimestampError:
        return None


def build_record(
    endpoint: Endpoint,
    item: object,
    *,
    instance_id: str,
    parent_id: int | None,
    change_field: str | None,
    tenant_tz: dt.tzinfo,
    scrub_nul: bool = False,
    data: object = None,
) -> dict:
    """Build the staging record for one API object.

    ``item`` is the object, or only the fields the key and change value need when ``data``
    carries the object itself (undecoded JSON, passed through untouched). ``scrub_nul`` is decided
    once per response (a byte search of the body), not per record.

    Raises:
        BadRecord: The object cannot be keyed.
    """
    rid = record_id(endpoint, item)
    if data is None:
        data = item if isinstance(item, dict) else {"value": item}
        data = JSONObject(t.cast("dict", strip_nul(data)) if scrub_nul else data)
    record: dict[str, object] = {"instance_id": instance_id}
    if endpoint.parent_key:
        record[endpoint.parent_key] = parent_id
    record["id"] = rid
    record["modifiedDate"] = (
        change_value(item, change_field, tenant_tz) if isinstance(item, dict) else None
    )
    record["data"] = data
    return record
