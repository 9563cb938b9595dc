"""The OData subset CC answers: ``$filter``, ``$orderby``, ``$top``, ``$skip``, ``$count``.

``$filter`` takes ``eq ne gt ge lt le``, ``and``/``or``/``not`` and parentheses over numbers,
strings, booleans, ``null`` and datetimes, on properties and nested properties (``study/id``).
A server accepts exactly one datetime literal form (:data:`DATETIME_FORMS`); any other datetime
literal is answered with 400, as a live tenant does when a client guesses the form wrong.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from cc_sandbox.timefmt import ISO_RE, parse_instant

DEFAULT_TOP = 50
MAX_TOP = 1000

#: Datetime literal forms a server can be configured to accept, with an example each.
DATETIME_FORMS: dict[str, str] = {
    "naive": "2025-12-24T00:00:00",  # tenant-local
    "offset": "2025-12-24T00:00:00Z",  # any offset
    "datetime": "datetime'2025-12-24T00:00:00'",  # OData v3, tenant-local
    "datetimeoffset": "datetimeoffset'2025-12-24T00:00:00Z'",  # OData v3, with an offset
}

#: Returns a property's type code (see ``schemas.py``), or ``None`` when there is no such property.
Typer = Callable[[str], "str | None"]
#: Returns a property's values over the rows a query reads, with their null mask, or ``None``
#: when the property is not held as a column.
Columns = Callable[[str], "tuple[np.ndarray, np.ndarray] | None"]
Mask = Callable[[Columns], "np.ndarray | None"]
#: ``(low, low included, high, high included)``.
Span = tuple[float, bool, float, bool]
_INF = float("inf")


class Predicate:
    """A compiled ``$filter``: a test of one served record, and the same test over columns.

    ``mask`` gives a boolean array, or ``None`` when a property it needs is not a column (the
    caller then tests records one by one). Both agree on every row.
    """

    def __init__(self, test: Callable[[dict[str, Any]], bool], mask: Mask,
                 spans: dict[str, Span] | None = None) -> None:
        self.test = test
        self.mask = mask
        #: Per numeric property, an interval that holds its value on every row that passes
        #: (``id gt 500`` and anything: ``(500, False, inf, False)``); keyset pages use it to
        #: start at the right place instead of testing the whole table.
        self.spans = spans or {}

    def __call__(self, doc: dict[str, Any]) -> bool:
        return self.test(doc)

_OPS: dict[str, tuple[Callable[[Any, Any], bool], str]] = {
    "eq": (operator.eq, "Equal"),
    "ne": (operator.ne, "NotEqual"),
    "gt": (operator.gt, "GreaterThan"),
    "ge": (operator.ge, "GreaterThanOrEqual"),
    "lt": (operator.lt, "LessThan"),
    "le": (operator.le, "LessThanOrEqual"),
}

_TOKEN_RE = re.compile(
    r"""
    (?P<ws>\s+)
    | (?P<paren>[()])
    | (?P<prefixed>(?:datetimeoffset|datetime|guid)'[^']*')
    | (?P<string>'(?:[^']|'')*')
    | (?P<dt>\d{4}-\d{2}-\d{2}T[0-9:.]+(?:Z|[+-]\d{2}:\d{2})?)
    | (?P<date>\d{4}-\d{2}-\d{2})
    | (?P<number>-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?[mMdDfFlL]?)
    | (?P<name>[A-Za-z_][A-Za-z0-9_]*(?:/[A-Za-z_][A-Za-z0-9_]*)*)
    """,
    re.VERBOSE,
)


class ODataError(ValueError):
    """A query option the server cannot accept; the server answers 400 with this message."""


@dataclass(frozen=True)
class Literal:
    """A constant in a ``$filter``.

    Attributes:
        kind: ``num``, ``str``, ``bool``, ``null``, ``dt`` (in the accepted form) or ``guid``.
        value: The Python value; POSIX seconds for ``dt``.
        edm: The EDM type name used in error messages.
    """

    kind: str
    value: Any
    edm: str


@dataclass(frozen=True)
class Prop:
    """A property path in a ``$filter`` (``study/id``)."""

    path: str


@dataclass
class Query:
    """Parsed query options of one request."""

    top: int = DEFAULT_TOP
    skip: int = 0
    count: bool = False
    filter_text: str = ""
    orderby_text: str = ""
    predicate: Predicate | None = None
    orderby: list[tuple[str, bool]] = field(default_factory=list)


def _edm(code: str) -> str:
    if code in ("int",):
        return "Edm.Int32"
    if code == "long":
        return "Edm.Int64"
    if code == "num":
        return "Edm.Double"
    if code == "bool":
        return "Edm.Boolean"
    if code == "dt":
        return "Edm.DateTimeOffset"
    if code == "uuid":
        return "Edm.Guid"
    if code.startswith(("@", "[")):
        return "Complex"
    return "Edm.String"


class _Parser:
    """Recursive-descent parser from ``$filter`` text to a predicate over served records."""

    def __init__(
        self, text: str, typer: Typer, form: str, tz: str, literal_tz: str | None = None
    ) -> None:
        self.text = text
        self.typer = typer
        self.form = form
        self.tz = tz
        self.literal_tz = literal_tz or tz  # a faulty server reads literals in another zone
        self.tokens = self._tokenize(text)
        self.pos = 0

    def _tokenize(self, text: str) -> list[tuple[str, str, int]]:
        tokens: list[tuple[str, str, int]] = []
        at = 0
        while at < len(text):
            match = _TOKEN_RE.match(text, at)
            if match is None:
                raise ODataError(
                    f"The query specified in the URI is not valid. Syntax error at position {at} "
                    f"in '{text}'."
                )
            kind = match.lastgroup or ""
            if kind != "ws":
                tokens.append((kind, match.group(), at))
            at = match.end()
        return tokens

    def _peek(self) -> tuple[str, str, int] | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def _take(self) -> tuple[str, str, int]:
        token = self._peek()
        if token is None:
            raise ODataError(
                f"The query specified in the URI is not valid. Expression expected at position "
                f"{len(self.text)} in '{self.text}'."
            )
        self.pos += 1
        return token

    def _at_word(self, word: str) -> bool:
        token = self._peek()
        return token is not None and token[0] == "name" and token[1] == word

    def parse(self) -> Predicate:
        predicate = self._or()
        extra = self._peek()
        if extra is not None:
            raise ODataError(
                f"The query specified in the URI is not valid. Syntax error: character "
                f"'{extra[1]}' at position {extra[2]} in '{self.text}'."
            )
        return predicate

    def _or(self) -> Predicate:
        left = self._and()
        while self._at_word("or"):
            self.pos += 1
            right = self._and()
            left = _either(left, right)
        return left

    def _and(self) -> Predicate:
        left = self._unary()
        while self._at_word("and"):
            self.pos += 1
            right = self._unary()
            left = _both(left, right)
        return left

    def _unary(self) -> Predicate:
        if self._at_word("not"):
            self.pos += 1
            inner = self._unary()

            def negate(cols: Columns) -> np.ndarray | None:
                mask = inner.mask(cols)
                return None if mask is None else ~mask

            return Predicate(lambda doc: not inner(doc), negate)
        token = self._peek()
        if token is not None and token[1] == "(":
            self.pos += 1
            inner = self._or()
            close = self._take()
            if close[1] != ")":
                raise ODataError(
                    f"The query specified in the URI is not valid. ')' or operator expected at "
                    f"position {close[2]} in '{self.text}'."
                )
            return inner
        return self._comparison()

    def _comparison(self) -> Predicate:
        left = self._operand()
        op_token = self._take()
        if op_token[1] not in _OPS:
            raise ODataError(
                f"The query specified in the URI is not valid. Unknown operator '{op_token[1]}' "
                f"at position {op_token[2]} in '{self.text}'."
            )
        right = self._operand()
        return self._compile(left, op_token[1], right)

    def _operand(self) -> Prop | Literal:
        kind, text, at = self._take()
        if kind == "name":
            if text in ("true", "false"):
                return Literal("bool", text == "true", "Edm.Boolean")
            if text == "null":
                return Literal("null", None, "null")
            return Prop(text)
        if kind == "number":
            raw = text.rstrip("mMdDfFlL")
            value: float | int = float(raw) if any(c in raw for c in ".eE") else int(raw)
            return Literal("num", value, "Edm.Double" if isinstance(value, float) else "Edm.Int32")
        if kind == "string":
            return Literal("str", text[1:-1].replace("''", "'"), "Edm.String")
        if kind == "prefixed" and text.startswith("guid'"):
            return Literal("guid", text[5:-1].lower(), "Edm.Guid")
        if kind in ("prefixed", "dt", "date"):
            return self._datetime(text, at)
        raise ODataError(
            f"The query specified in the URI is not valid. Expression expected at position {at} "
            f"in '{self.text}'."
        )

    def _datetime(self, text: str, at: int) -> Literal:
        # Exactly one literal form is accepted: a client that guesses wrong must see a 400.
        if text.startswith("datetimeoffset'"):
            form, inner = "datetimeoffset", text[15:-1]
        elif text.startswith("datetime'"):
            form, inner = "datetime", text[9:-1]
        else:
            match = ISO_RE.match(text)
            form, inner = ("offset" if match and match.group(8) else "naive"), text
        match = ISO_RE.match(inner)
        has_offset = bool(match and match.group(8))
        wrong_offset = (form == "datetimeoffset" and not has_offset) or (
            form == "datetime" and has_offset
        )
        if form != self.form or match is None or wrong_offset:
            raise ODataError(
                f"The query specified in the URI is not valid. Unrecognized datetime literal "
                f"'{text}' at position {at} in '{self.text}'."
            )
        instant = parse_instant(inner, self.literal_tz)
        return Literal("dt", instant, "Edm.DateTimeOffset")

    def _compile(self, left: Prop | Literal, op: str, right: Prop | Literal) -> Predicate:
        if isinstance(left, Literal) and isinstance(right, Prop):
            flipped = {"gt": "lt", "ge": "le", "lt": "gt", "le": "ge"}.get(op, op)
            return self._compile(right, flipped, left)
        if not isinstance(left, Prop) or not isinstance(right, Literal):
            raise ODataError(
                f"The query specified in the URI is not valid. Only comparisons of a property "
                f"with a constant are supported: '{self.text}'."
            )
        code = self.typer(left.path)
        if code is None:
            name = left.path.rsplit("/", 1)[-1]
            raise ODataError(
                f"The query specified in the URI is not valid. Could not find a property named "
                f"'{name}' on type 'ClinicalConductor.Model'."
            )
        getter = _getter(left.path)
        func, op_name = _OPS[op]
        path = left.path
        if right.kind == "null":
            if op == "eq":
                return Predicate(lambda doc: getter(doc) is None, _null_mask(path, True))
            if op == "ne":
                return Predicate(lambda doc: getter(doc) is not None, _null_mask(path, False))
            return Predicate(lambda doc: False, _null_mask(path, None))
        expected = {
            "int": ("num",),
            "long": ("num",),
            "num": ("num",),
            "bool": ("bool",),
            "dt": ("dt",),
            "uuid": ("guid", "str"),
        }.get(code, ("str",) if not code.startswith(("@", "[")) else ())
        if right.kind not in expected:
            raise ODataError(
                f"The query specified in the URI is not valid. A binary operator with "
                f"incompatible types was detected. Found operand types '{_edm(code)}' and "
                f"'{right.edm}' for operator kind '{op_name}'."
            )
        value = right.value

        def column_mask(cols: Columns) -> np.ndarray | None:
            got = cols(path)
            if got is None or code == "uuid":
                return None
            values, null = got
            with np.errstate(invalid="ignore"):
                hit = np.asarray(func(values, value), dtype=bool)
            return np.where(null, op == "ne", hit)

        if code == "dt":
            tz = self.tz

            def compare_dt(doc: dict[str, Any]) -> bool:
                raw = getter(doc)
                if raw is None:
                    return op == "ne"
                instant = parse_instant(raw, tz)
                return instant is not None and func(instant, value)

            return Predicate(compare_dt, column_mask)
        if code == "uuid":
            value = str(value).lower()

            def compare_uuid(doc: dict[str, Any]) -> bool:
                raw = getter(doc)
                return func(raw.lower(), value) if raw is not None else op == "ne"

            return Predicate(compare_uuid, column_mask)

        def compare(doc: dict[str, Any]) -> bool:
            raw = getter(doc)
            if raw is None:
                return op == "ne"
            return bool(func(raw, value))

        span = _span(op, value) if right.kind == "num" else None
        return Predicate(compare, column_mask, {path: span} if span else None)


def _null_mask(path: str, is_null: bool | None) -> Mask:
    def mask(cols: Columns) -> np.ndarray | None:
        got = cols(path)
        if got is None:
            return None
        null = got[1]
        if is_null is None:
            return np.zeros(len(null), dtype=bool)
        return null.copy() if is_null else ~null

    return mask


def _combine(left: Predicate, right: Predicate, both: bool) -> Mask:
    def mask(cols: Columns) -> np.ndarray | None:
        a = left.mask(cols)
        b = right.mask(cols) if a is not None else None
        if a is None or b is None:
            return None
        return (a & b) if both else (a | b)

    return mask


def _either(left: Predicate, right: Predicate) -> Predicate:
    spans = {}
    for path in left.spans.keys() & right.spans.keys():  # the hull of the two
        a, b = left.spans[path], right.spans[path]
        low = min((a[0], not a[1]), (b[0], not b[1]))
        high = max((a[2], a[3]), (b[2], b[3]))
        spans[path] = (low[0], not low[1], high[0], high[1])
    return Predicate(lambda doc: left(doc) or right(doc), _combine(left, right, False), spans)


def _both(left: Predicate, right: Predicate) -> Predicate:
    spans = dict(left.spans)
    for path, b in right.spans.items():  # the intersection
        a = spans.get(path, (-_INF, False, _INF, False))
        low = max((a[0], not a[1]), (b[0], not b[1]))
        high = min((a[2], a[3]), (b[2], b[3]))
        spans[path] = (low[0], not low[1], high[0], high[1])
    return Predicate(lambda doc: left(doc) and right(doc), _combine(left, right, True), spans)


def _span(op: str, value: float) -> Span | None:
    """The values of a property that can satisfy ``property op value``."""
    return {
        "eq": (value, True, value, True),
        "gt": (value, False, _INF, False),
        "ge": (value, True, _INF, False),
        "lt": (-_INF, False, value, False),
        "le": (-_INF, False, value, True),
    }.get(op)


def _getter(path: str) -> Callable[[dict[str, Any]], Any]:
    """A function reading ``study/id`` from a record (``None`` along a null)."""
    parts = path.split("/")
    if len(parts) == 1:
        key = parts[0]
        return lambda doc: doc.get(key)

    def get(doc: dict[str, Any]) -> Any:
        value: Any = doc
        for part in parts:
            if not isinstance(value, dict):
                return None
            value = value.get(part)
        return value

    return get


def compile_filter(
    text: str, typer: Typer, form: str = "naive", tz: str = "UTC", literal_tz: str | None = None
) -> Predicate:
    """Compile a ``$filter`` expression into a predicate over served records.

    Args:
        text: The ``$filter`` value.
        typer: Type code of a property path, ``None`` when the model has no such property.
        form: The one datetime literal form accepted (a key of :data:`DATETIME_FORMS`).
        tz: Tenant time zone: naive stored values and naive literals are local to it.
        literal_tz: Read naive literals in this zone instead (a fault: ``faults.literal_zone``).

    Raises:
        ODataError: On a syntax error, an unknown property, incompatible types or a datetime
            literal in any form but ``form``.
    """
    if form not in DATETIME_FORMS:
        raise ValueError(f"unknown datetime form {form!r}; expected one of {list(DATETIME_FORMS)}")
    return _Parser(text, typer, form, tz, literal_tz).parse()


def parse_orderby(text: str, typer: Typer) -> list[tuple[str, bool]]:
    """Parse ``$orderby`` into ``[(path, descending), ...]``.

    Raises:
        ODataError: On an unknown or non-primitive property, or a direction other than asc/desc.
    """
    keys: list[tuple[str, bool]] = []
    for item in text.split(","):
        words = item.split()
        if not words or len(words) > 2 or (len(words) == 2 and words[1] not in ("asc", "desc")):
            raise ODataError(
                f"The query specified in the URI is not valid. Syntax error in $orderby '{text}'."
            )
        code = typer(words[0])
        if code is None or code.startswith(("@", "[")):
            raise ODataError(
                f"The query specified in the URI is not valid. Could not find a property named "
                f"'{words[0]}' to order by, or it is not a primitive property."
            )
        keys.append((words[0], len(words) == 2 and words[1] == "desc"))
    return keys


def sort_rows(
    items: list[tuple[Any, dict[str, Any]]],
    keys: list[tuple[str, bool]],
    typer: Typer,
    tz: str,
) -> list[tuple[Any, dict[str, Any]]]:
    """Sort ``(row, record)`` pairs by ``keys``; nulls first ascending, as SQL Server does."""
    out = list(items)
    for path, descending in reversed(keys):  # stable sorts, least significant key first
        getter = _getter(path)
        is_dt = typer(path) == "dt"

        def key(pair: tuple[Any, dict[str, Any]], getter: Any = getter, is_dt: bool = is_dt) -> Any:
            raw = getter(pair[1])
            if is_dt and raw is not None:
                raw = parse_instant(raw, tz)
            return (0, 0) if raw is None else (1, raw)

        out.sort(key=key, reverse=descending)
    return out


def sort_positions(keys: list[tuple[str, bool]], cols: Columns) -> np.ndarray | None:
    """The order of rows by ``keys`` over columns (as :func:`sort_rows` orders records).

    Returns:
        Indexes into the columns, or ``None`` when a key is not a column. Stable: ties keep
        their order, descending keys included, as Python's sort does.
    """
    arrays: list[np.ndarray] = []
    for path, descending in keys:
        got = cols(path)
        if got is None:
            return None
        values, null = got
        if values.dtype == object:
            filled = np.where(null, "", values).astype(str)
            values = np.unique(filled, return_inverse=True)[1].astype(np.float64)
        else:
            values = np.where(null, 0, values).astype(np.float64)
        present = (~null).astype(np.float64)
        if descending:
            values, present = -values, -present
        arrays += [present, values]  # nulls first ascending, as SQL Server does
    # lexsort's last key is the primary one.
    return np.lexsort(arrays[::-1])


def _int_option(name: str, raw: str) -> int:
    try:
        value = int(raw)
    except ValueError:
        value = -1
    if value < 0:
        raise ODataError(
            f"The query specified in the URI is not valid. Invalid value '{raw}' for {name}: "
            f"a non-negative integer is expected."
        )
    return value


def parse_query(
    params: dict[str, str],
    typer: Typer,
    form: str,
    tz: str,
    *,
    ignore_filter: bool = False,
    literal_tz: str | None = None,
) -> Query:
    """Parse the OData options of one request.

    ``$top`` defaults to 50 and is cut to 1000; ``$count`` is true only for ``true``.

    Raises:
        ODataError: On any invalid option.
    """
    query = Query()
    if "$top" in params:
        query.top = min(_int_option("$top", params["$top"]), MAX_TOP)
    if "$skip" in params:
        query.skip = _int_option("$skip", params["$skip"])
    query.count = params.get("$count", "").lower() == "true"
    if params.get("$filter") and not ignore_filter:
        query.filter_text = params["$filter"]
        query.predicate = compile_filter(query.filter_text, typer, form, tz, literal_tz)
    if params.get("$orderby"):
        query.orderby_text = params["$orderby"]
        query.orderby = parse_orderby(query.orderby_text, typer)
    return query
