"""The OData parser and evaluator, without a server."""

from __future__ import annotations

import pytest

from cc_sandbox.odata import (
    DATETIME_FORMS,
    ODataError,
    compile_filter,
    parse_orderby,
    parse_query,
    sort_rows,
)

TYPES = {
    "id": "int",
    "name": "str",
    "budget": "num",
    "active": "bool",
    "when": "dt",
    "uid": "uuid",
    "study": "@StudyPreviewModel",
    "study/id": "int",
    "study/name": "str",
}
ROWS = [
    {"id": 1, "name": "Alpha", "budget": 10.5, "active": True, "when": "2024-01-15T10:00:00",
     "study": {"id": 7, "name": "S7"}, "uid": "AB-1"},
    {"id": 2, "name": "O'Brien", "budget": 99.0, "active": False, "when": "2024-01-15T11:00:00",
     "study": {"id": 8, "name": "S8"}, "uid": "ab-2"},
    {"id": 3, "name": None, "budget": 50.0, "active": True, "when": None, "study": None,
     "uid": "ab-3"},
]
NY = "America/New_York"


def ids(text: str, form: str = "naive", tz: str = NY) -> list[int]:
    predicate = compile_filter(text, TYPES.get, form, tz)
    return [row["id"] for row in ROWS if predicate(row)]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("id eq 2", [2]),
        ("id ne 2", [1, 3]),
        ("id gt 1 and id lt 3", [2]),
        ("id ge 2", [2, 3]),
        ("id le 1 or id eq 3", [1, 3]),
        ("(id eq 1 or id eq 2) and active eq true", [1]),
        ("id eq 1 or (id eq 2 and active eq true)", [1]),
        ("not (id eq 1)", [2, 3]),
        ("budget gt 10.6", [2, 3]),
        ("name eq 'O''Brien'", [2]),
        ("name eq null", [3]),
        ("name ne null", [1, 2]),
        ("study/id eq 8", [2]),
        ("study/name lt 'S8'", [1]),
        ("2 lt id", [3]),
        ("uid eq guid'AB-2'", [2]),
    ],
)
def test_filter_operators_and_logic(text: str, expected: list[int]) -> None:
    assert ids(text) == expected


def test_naive_literal_is_tenant_local() -> None:
    # 10:00 and 11:00 New York are 15:00 and 16:00 UTC.
    assert ids("when gt 2024-01-15T10:30:00") == [2]
    assert ids("when ge 2024-01-15T10:00:00") == [1, 2]
    assert ids("when gt 2024-01-15T10:30:00", tz="UTC") == [2]
    assert ids("when lt 2024-01-15T15:30:00", tz="UTC") == [1, 2]


def test_offset_literals_compare_instants() -> None:
    assert ids("when gt datetimeoffset'2024-01-15T15:30:00Z'", "datetimeoffset") == [2]
    assert ids("when le datetimeoffset'2024-01-15T10:00:00-05:00'", "datetimeoffset") == [1]
    assert ids("when gt 2024-01-15T15:30:00Z", "offset") == [2]
    assert ids("when eq datetime'2024-01-15T11:00:00'", "datetime") == [2]


@pytest.mark.parametrize("accepted", list(DATETIME_FORMS))
@pytest.mark.parametrize("literal", list(DATETIME_FORMS.values()) + ["'2025-12-24T00:00:00'"])
def test_exactly_one_datetime_form_is_accepted(accepted: str, literal: str) -> None:
    text = f"when gt {literal}"
    if literal == DATETIME_FORMS[accepted]:
        compile_filter(text, TYPES.get, accepted, NY)
    else:
        with pytest.raises(ODataError, match="not valid"):
            compile_filter(text, TYPES.get, accepted, NY)


def test_datetimeoffset_needs_an_offset_and_date_alone_is_rejected() -> None:
    with pytest.raises(ODataError, match="Unrecognized datetime literal"):
        compile_filter("when gt datetimeoffset'2025-12-24T00:00:00'", TYPES.get,
                       "datetimeoffset", NY)
    with pytest.raises(ODataError, match="Unrecognized datetime literal"):
        compile_filter("when gt 2025-12-24", TYPES.get, "naive", NY)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("nope eq 1", "Could not find a property named 'nope'"),
        ("id eq 'x'", "incompatible types"),
        ("name eq 3", "incompatible types"),
        ("active eq 1", "incompatible types"),
        ("study eq 1", "incompatible types"),
        ("id eq", "Expression expected"),
        ("id eq 1 and", "Expression expected"),
        ("(id eq 1", "Expression expected"),
        ("id like 1", "Unknown operator"),
        ("id eq 1 id", "Syntax error"),
        ("id eq #", "Syntax error"),
    ],
)
def test_filter_errors(text: str, message: str) -> None:
    with pytest.raises(ODataError, match=message):
        compile_filter(text, TYPES.get, "naive", NY)


def test_orderby_several_keys_and_nulls_first() -> None:
    pairs = [(row["id"], row) for row in ROWS]
    keys = parse_orderby("active desc, budget asc", TYPES.get)
    assert [p[0] for p in sort_rows(pairs, keys, TYPES.get, NY)] == [1, 3, 2]
    keys = parse_orderby("when", TYPES.get)
    assert [p[0] for p in sort_rows(pairs, keys, TYPES.get, NY)] == [3, 1, 2]
    keys = parse_orderby("study/id desc", TYPES.get)
    assert [p[0] for p in sort_rows(pairs, keys, TYPES.get, NY)] == [2, 1, 3]


@pytest.mark.parametrize("text", ["nope", "id up", "study", "id asc desc", ""])
def test_orderby_errors(text: str) -> None:
    with pytest.raises(ODataError):
        parse_orderby(text, TYPES.get)


def test_query_options() -> None:
    query = parse_query({}, TYPES.get, "naive", NY)
    assert (query.top, query.skip, query.count, query.predicate) == (50, 0, False, None)
    query = parse_query({"$top": "5000", "$skip": "20", "$count": "true"}, TYPES.get, "naive", NY)
    assert (query.top, query.skip, query.count) == (1000, 20, True)
    ignored = parse_query({"$filter": "nope eq 1"}, TYPES.get, "naive", NY, ignore_filter=True)
    assert ignored.predicate is None
    for bad in ({"$top": "-1"}, {"$skip": "x"}):
        with pytest.raises(ODataError, match="non-negative"):
            parse_query(bad, TYPES.get, "naive", NY)
