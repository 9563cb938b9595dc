"""What a Clinical Conductor response holds: its page of records, whatever the body's shape.

CC answers with a bare array, an ASP.NET ``PageResult`` or OData v4 JSON, in any key casing (and
``/instance/details`` with a lone object). ``parse_body`` accepts them all and keeps the records
undecoded; ``envelope_decoder`` is the one description of those shapes, shared with the typed
page decoder of ``records.PageEncoder``.
"""

from __future__ import annotations

import re
import types
import typing as t

import msgspec

from tap_clinical_conductor.errors import RequestFailed

#: A UTF-16 surrogate escape that is not half of a pair (JSON allows it, nothing downstream does).
_LONE_SURROGATE = re.compile(
    rb"\\u[dD][89abAB][0-9a-fA-F]{2}(?!\\u[dD][c-fC-F])"
    rb"|(?<!\\u[dD][89abAB][0-9a-fA-F]{2})\\u[dD][c-fC-F][0-9a-fA-F]{2}"
)
_ANY = msgspec.json.Decoder()
_TOP = msgspec.json.Decoder(dict[str, msgspec.Raw])
_RAW_LIST = msgspec.json.Decoder(list[msgspec.Raw])
#: (records, next link, count) keys of the enveloped shapes, lower case.
_SHAPES = (("items", "nextpagelink", "count"), ("value", "@odata.nextlink", "@odata.count"))


def envelope_decoder(record: type) -> msgspec.json.Decoder[t.Any]:
    """A decoder of every shape CC uses in one pass, with records decoded as ``record``.

    A bare array, or an object of scalars and the records' list. A nested value beside the records
    does not fit (``parse_body`` then takes a second pass).
    """
    # Built at run time from `record` (a struct type made per stream), so spelt as values.
    records = types.GenericAlias(list, (record,))
    scalars = str | int | float | bool | None
    envelope = types.GenericAlias(dict, (str, records | scalars))
    shape: t.Any = records | envelope
    return msgspec.json.Decoder(shape)


_FLAT = envelope_decoder(msgspec.Raw)


class Page:
    """One response's records.

    Records stay undecoded (``msgspec.Raw``, slices of the body) until somebody asks: a stream
    reads only the few fields it needs and passes the rest through byte for byte, which is most of
    what makes the tap fast. ``items`` decodes them all on first use.

    Attributes:
        raw: The records' JSON, undecoded.
        body: The response body, when its records sit in a bare array or in a list under
            ``items_key`` of an object of scalars: a typed decoder can then read the keys of
            every record in one pass over it. ``None`` otherwise.
        items_key: The key of the records' list in ``body`` (``None`` for a bare array).
        next_link: The server's link to the next page, if it gave one.
        count: The total the server reported (``$count=true``), if any.
        has_nul: Whether the body contains an escaped NUL character somewhere.
        lone: Whether the body was one object, not a list of records nor an envelope of one:
            the shape of ``/instance/details``, and of the errors CC answers with HTTP 200.
    """

    __slots__ = ("_items", "body", "count", "has_nul", "items_key", "lone", "next_link", "raw")

    def __init__(
        self,
        items: list[t.Any] | None = None,
        next_link: str | None = None,
        count: int | None = None,
        has_nul: bool = False,
        *,
        raw: list[msgspec.Raw] | None = None,
        body: bytes | None = None,
        items_key: str | None = None,
        lone: bool = False,
    ) -> None:
        self._items = items
        self.lone = lone
        self.raw = raw
        self.body = body
        self.items_key = items_key
        self.next_link = next_link
        self.count = count
        self.has_nul = has_nul

    @property
    def items(self) -> list[t.Any]:
        """The records as Python objects."""
        if self._items is None:
            self._items = [_ANY.decode(r) for r in self.raw or ()]
        return self._items

    def item(self, index: int) -> object:
        """One record as a Python object, without decoding the others."""
        if self._items is not None:
            return self._items[index]
        return _ANY.decode((self.raw or [])[index])

    def without_first(self) -> Page:
        """The page without its first record (an overlap already read)."""
        return Page(
            self._items[1:] if self._items is not None else None,
            self.next_link,
            self.count,
            self.has_nul,
            raw=(self.raw or [])[1:] if self.raw is not None else None,
        )

    def __len__(self) -> int:
        return len(self._items) if self._items is not None else len(self.raw or ())

    def __repr__(self) -> str:
        return f"Page({len(self)} records, next_link={self.next_link!r}, count={self.count!r})"


def parse_body(body: bytes) -> Page:
    r"""Accept a bare array, an ASP.NET ``PageResult`` or OData v4 JSON, in any key casing.

    The records stay undecoded. A lone object (``/instance/details``) is a page of one. A body
    spread over several lines is compacted first: records pass through to the target as they
    are, and a line break inside one would split its Singer message.

    A lone UTF-16 surrogate escape (``\ud800``), which msgspec refuses and PostgreSQL cannot
    store, becomes U+FFFD: one odd character costs that character, not the run.

    Raises:
        msgspec.DecodeError: The body is not JSON (or is cut short).
        RequestFailed: The JSON is neither a list nor an object.
    """
    has_nul = b"\\u0000" in body
    if b"\n" in body or b"\r" in body:
        # JSON strings cannot hold raw line breaks: these are only whitespace between tokens.
        body = msgspec.json.format(body, indent=-1)
    try:
        top, one_pass = _decode_top(body)
    except msgspec.DecodeError:
        if not _LONE_SURROGATE.search(body):
            raise
        body = _LONE_SURROGATE.sub(rb"\\ufffd", body)
        top, one_pass = _decode_top(body)
    # Only a one-pass shape is left for a typed decoder to read again (`records.PageEncoder`).
    kept = body if one_pass else None
    if isinstance(top, list):
        return Page(raw=top, has_nul=has_nul, body=kept)
    keys = {k.lower(): k for k in top}
    for items_key, link_key, count_key in _SHAPES:
        records = top.get(keys.get(items_key, ""))
        if isinstance(records, list):
            link = top.get(keys.get(link_key, ""))
            count = top.get(keys.get(count_key, ""))
            return Page(
                raw=records,
                next_link=link if isinstance(link, str) else None,
                count=count if isinstance(count, int) and not isinstance(count, bool) else None,
                has_nul=has_nul,
                body=kept,
                items_key=keys[items_key],
            )
    return Page(raw=[msgspec.Raw(body)], has_nul=has_nul, lone=True)


#: Keys under which CC (ASP.NET) puts the text of an error object.
ERROR_KEYS = ("Message", "message", "error", "ExceptionMessage")


def error_text(payload: object) -> str | None:
    """The short text of an error object (``{"Message": ...}``), or ``None``."""
    if not isinstance(payload, dict):
        return None
    for key in ERROR_KEYS:
        value = payload.get(key)
        if isinstance(value, dict):
            value = value.get("message")
        if isinstance(value, str):
            return value[:200]
    return None


def error_message(page: Page) -> str | None:
    """The server's short error text, when a lone object looks like an error (``Message``)."""
    if not page.lone or len(page) != 1:
        return None
    return error_text(page.item(0))


def _decode_top(body: bytes) -> tuple[list[t.Any] | dict[str, t.Any], bool]:
    """The body as a list of undecoded records, or an object whose lists are such lists.

    One pass when the object around the records holds only scalars (every CC shape); a second
    pass per value when something nested sits beside the records. The flag says which.

    Raises:
        msgspec.DecodeError: The body is not JSON.
        RequestFailed: The JSON is neither a list nor an object.
    """
    try:
        return _FLAT.decode(body), True
    except msgspec.ValidationError:
        pass
    try:
        top = _TOP.decode(body)  # a list always fits `_FLAT`: this is an object, or neither
    except msgspec.ValidationError:
        raise RequestFailed("unexpected JSON: neither a list nor an object") from None
    return {
        key: _RAW_LIST.decode(value) if bytes(value).lstrip()[:1] == b"[" else _ANY.decode(value)
        for key, value in top.items()
    }, False
