"""Turn API objects into staging records and RECORD lines: pure functions, no I/O.

A staging record is ``instance_id``, the parent key of a child stream, ``id``, ``modifiedDate``
(the change value normalised to UTC, or null) and ``data``, the API object untouched except for
NUL characters, which PostgreSQL JSONB cannot store. This module owns the record's schema, its
key, how a record is built one by one (``build_record``) and how a whole page becomes RECORD
lines at once (``PageEncoder``), and the reasons a record is skipped.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import itertools
import json
import typing as t
from collections.abc import Mapping

import msgspec
import msgspec.structs

from tap_clinical_conductor.catalogue import Endpoint
from tap_clinical_conductor.responses import envelope_decoder
from tap_clinical_conductor.schemas import data_schema
from tap_clinical_conductor.timestamps import TimestampError, normalise, utc_json

#: Why a record was dropped: the server ignored ``$filter`` and sent it although it is older.
DROPPED_OLDER = "dropped, older than the bookmark (server ignored $filter)"


def unreadable(change_field: str) -> str:
    """Why a record was loaded with ``modifiedDate`` null although it has a change value."""
    return f"unreadable {change_field} (loaded with modifiedDate null)"


def record_schema(endpoint: Endpoint) -> dict[str, t.Any]:
    """JSON schema of a staging record for ``endpoint``."""
    properties: dict[str, dict[str, t.Any]] = {"instance_id": {"type": "string"}}
    if endpoint.parent_key:
        properties[endpoint.parent_key] = {"type": "integer"}
    properties["id"] = {"type": "string" if id_is_string(endpoint) else "integer"}
    properties["modifiedDate"] = {
        "type": ["string", "null"],
        "format": "date-time",
        "description": "The record's change timestamp in UTC; null where the entity has none.",
    }
    properties["data"] = data_schema(endpoint.name)
    return {
        "type": "object",
        "properties": properties,
        "required": list(properties.keys() - {"modifiedDate"}),
    }


def key_properties(endpoint: Endpoint) -> list[str]:
    """The staging row's key: ``instance_id``, the parent key of a child stream, ``id``."""
    return [k for k in ("instance_id", endpoint.parent_key, "id") if k]


class JSONObject(Mapping[str, object]):
    """The API object inside a record, opaque to the SDK's per-record property walk.

    singer-sdk removes deselected properties by walking every nested dict of every record with
    uncached breadcrumb lookups, which costs more than everything else the tap does per record.
    ``data`` is one JSONB column, so nothing below it can be deselected: wrapping it in a
    Mapping that is not a dict skips the walk. The tap's writer serialises it as the object.
    """

    __slots__ = ("value",)

    def __init__(self, value: dict[str, object]) -> None:
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

    # Equal to a dict, so unhashable like one. Mapping declares __hash__ a method, hence the
    # ignore: assigning None is how Python marks a class unhashable.
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


def record_key(
    endpoint: Endpoint, parent: t.Mapping[str, object], item: object
) -> tuple[object, ...]:
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


def change_value(item: dict[str, t.Any], field: str | None, tenant_tz: dt.tzinfo) -> str | None:
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
) -> dict[str, t.Any]:
    """Build the staging record for one API object.

    ``item`` is the object, or only the fields the key and change value need when ``data``
    carries the object itself (undecoded JSON, passed through untouched). ``scrub_nul`` is decided
    once per response (a byte search of the body), not per record.

    Raises:
        BadRecord: The object cannot be keyed.
    """
    rid = record_id(endpoint, item)
    if data is None:
        value = item if isinstance(item, dict) else {"value": item}
        data = JSONObject(t.cast("dict[str, object]", strip_nul(value)) if scrub_nul else value)
    record: dict[str, object] = {"instance_id": instance_id}
    if endpoint.parent_key:
        record[endpoint.parent_key] = parent_id
    record["id"] = rid
    record["modifiedDate"] = (
        change_value(item, change_field, tenant_tz) if isinstance(item, dict) else None
    )
    record["data"] = data
    return record


class PageEncoder:
    """Writes a whole page of API objects as Singer RECORD lines, with no dict per record.

    The per-record path decodes a record's key fields, builds a dict and lets the SDK and the
    writer walk it, which costs several times what the rest of the tap does per record (README,
    "Measured"). Here one typed decoder reads the keys of the whole page in one pass, and each
    line is formatted as bytes around the record's untouched JSON: the message
    ``output.record_line`` describes, byte for byte (``tests/tap/test_pages.py``). A page that
    does not fit the strict key types (a string id, a missing parent reference, a change value
    that is not an RFC 3339 datetime) gets ``None`` and goes through the per-record path, which
    repairs or skips such records.
    """

    def __init__(
        self,
        endpoint: Endpoint,
        *,
        stream: str,
        instance_id: str,
        change_field: str | None,
        tenant_tz: dt.tzinfo,
        lower: str | None,
    ) -> None:
        """Prepare the decoder and the line template of one stream."""
        if not self.fits(endpoint):
            raise ValueError(f"{endpoint.name}: records without an id field take the slow path")
        self.change_field = change_field
        self.tenant_tz = tenant_tz
        self.lower = lower
        self.string_id = id_is_string(endpoint)
        fields: list[tuple[str, t.Any] | tuple[str, t.Any, t.Any]] = [
            ("key_id", str if self.string_id else int)
        ]
        rename = {"key_id": endpoint.id_field}
        if endpoint.parent_ref:
            fields.append(("key_parent", _reference_type(endpoint.parent_ref.split(".")[1:])))
            rename["key_parent"] = endpoint.parent_ref.split(".")[0]
        if change_field:
            # Parsed in C while decoding; a value msgspec cannot read sends the page per record.
            fields.append(("key_change", dt.datetime | None, None))
            rename["key_change"] = change_field
        keys = msgspec.defstruct("PageKeys", fields, rename=rename, gc=False)
        self._decode = envelope_decoder(keys).decode
        self._parent_depth = len(endpoint.parent_ref.split(".")) - 1 if endpoint.parent_ref else 0
        encode = msgspec.json.encode
        self._head = b'{"type":"RECORD","stream":%s,"record":{"instance_id":%s,' % (
            encode(stream),
            encode(instance_id),
        )
        self._parent_field = b'"%s":' % endpoint.parent_key.encode() if endpoint.parent_key else b""
        # Head, parent field, id, change value (JSON), record, tail.
        self._line = (
            b'%s%s"id":' + (b"%s" if self.string_id else b"%d") + b',"modifiedDate":%s,"data":%s%s'
        )

    @staticmethod
    def fits(endpoint: Endpoint) -> bool:
        """Whether the endpoint's records are keyed by one id field (not a synthetic id)."""
        return not endpoint.id_from

    def encode(
        self,
        body: bytes,
        items_key: str | None,
        raws: list[msgspec.Raw],
        *,
        parent_id: int | None,
        version: int | None,
        extracted_at: bytes,
        skipped: t.MutableMapping[str, int],
    ) -> tuple[bytes, int, str | None] | None:
        """The page's RECORD lines, how many, and the greatest change value among them.

        ``body`` is the response, with the records in a bare array or in the list under
        ``items_key`` (see ``responses.Page``); ``raws`` are the records. ``extracted_at`` is
        the JSON of the page's extraction time. ``None`` when a record does not fit the strict
        key types. Records older than the lower bound are dropped and counted in ``skipped``
        (the server ignored ``$filter``).
        """
        try:
            decoded = self._decode(body)
        except msgspec.ValidationError:
            return None
        keys = decoded.get(items_key or "") if isinstance(decoded, dict) else decoded
        if not isinstance(keys, list) or len(keys) != len(raws):
            return None
        tail = (
            b'},"version":%d,"time_extracted":%s}\n' % (version, extracted_at)
            if (version is not None)
            else b'},"time_extracted":%s}\n' % extracted_at
        )
        head = self._head
        parent = self._parent_field
        if parent_id is not None:
            head += b"%s%d," % (parent, parent_id)
            parent = b""
        ids: list[int] | list[bytes] = [k.key_id for k in keys]
        if self.string_id:
            ids = [msgspec.json.encode(i) for i in ids]
        line = self._line
        parents: t.Iterable[bytes]
        if parent:
            parents = [b"%s%d," % (parent, p) for p in self._parents(keys)]
        else:
            parents = itertools.repeat(b"")
        if not self.change_field:
            lines = [
                line % (head, p, i, b"null", raw, tail)
                for p, i, raw in zip(parents, ids, raws, strict=False)
            ]
            return b"".join(lines), len(lines), None
        return self._encode_changed(
            keys, zip(parents, ids, raws, strict=False), head, tail, skipped
        )

    def _encode_changed(
        self,
        keys: list[t.Any],
        rows: t.Iterable[tuple[bytes, object, msgspec.Raw]],
        head: bytes,
        tail: bytes,
        skipped: t.MutableMapping[str, int],
    ) -> tuple[bytes, int, str | None]:
        line = self._line
        # Same-length JSON strings compare like the text inside them.
        lower = b'"%s"' % self.lower.encode() if self.lower is not None else None
        tz = self.tenant_tz
        best: bytes | None = None
        out: list[bytes] = []
        dropped = 0
        for key, (p, i, raw) in zip(keys, rows, strict=False):
            value = key.key_change
            if value is None:
                changed = b"null"
            else:
                try:
                    changed = utc_json(value, tz)
                except TimestampError:
                    # Only this value is lost: the record loads with modifiedDate null.
                    skipped[unreadable(self.change_field or "")] += 1
                    changed = b"null"
                    out.append(line % (head, p, i, changed, raw, tail))
                    continue
                if lower is not None and changed < lower:
                    dropped += 1
                    continue
                if best is None or changed > best:
                    best = changed
            out.append(line % (head, p, i, changed, raw, tail))
        if dropped:
            skipped[DROPPED_OLDER] += dropped
        return b"".join(out), len(out), best[1:-1].decode() if best is not None else None

    def _parents(self, keys: list[t.Any]) -> list[int]:
        values = [k.key_parent for k in keys]
        for _ in range(self._parent_depth):
            values = [v.ref for v in values]
        return values


def _reference_type(path: list[str]) -> type[t.Any]:
    """A struct type holding an integer at ``path`` inside an object (``["id"]`` for study.id)."""
    if not path:
        return int
    return msgspec.defstruct(
        "Reference", [("ref", _reference_type(path[1:]))], rename={"ref": path[0]}, gc=False
    )


def key_reader(
    endpoint: Endpoint, change_field: str | None
) -> t.Callable[[msgspec.Raw], dict[str, t.Any] | None]:
    """A decoder that reads only the top-level fields the tap needs from a record's JSON.

    msgspec skips every other field without building Python objects for it; the record's JSON
    then goes to the target untouched. ``None`` for a record that is not an object.
    """
    wanted = {path.split(".")[0] for path in endpoint.id_from} or {endpoint.id_field}
    if change_field:
        wanted.add(change_field)
    if endpoint.parent_ref:
        wanted.add(endpoint.parent_ref.split(".")[0])
    names = sorted(wanted)
    struct = msgspec.defstruct(
        "Keys",
        [(f"f{i}", object, None) for i in range(len(names))],
        rename={f"f{i}": name for i, name in enumerate(names)},
    )
    decode = msgspec.json.Decoder(struct).decode
    astuple = msgspec.structs.astuple

    def read(raw: msgspec.Raw) -> dict[str, t.Any] | None:
        try:
            values = astuple(decode(raw))
        except msgspec.ValidationError:
            return None
        return {k: v for k, v in zip(names, values, strict=True) if v is not None}

    return read
