"""Bad-data injection: ``Sandbox.corrupt`` breaks what is served, not what filters see."""

from __future__ import annotations

import json

import pytest

from cc_sandbox import Sandbox
from cc_sandbox.model import HUGE_BYTES

KEY = "test-key"


@pytest.fixture
def plan() -> Sandbox:
    with Sandbox(scale=0.0003, profile="plan", api_key=KEY, seed=5) as sandbox:
        yield sandbox


def _get(sb: Sandbox, http, path: str, **params) -> tuple[bytes, object]:
    response = http.get(sb.base_url + path, params=params, timeout=10)
    assert response.status_code == 200, response.text[:300]
    return response.content, response.json()


def _by_rid(sb: Sandbox, name: str) -> dict[int, dict]:
    rows = sb.tenant.table(name).rows
    return {r.rid: d["data"] for r, d in zip(rows, sb.truth(name), strict=True)}


def test_no_id_and_null_id_and_string_id(plan, http):
    [a] = plan.corrupt("patients", "no_id", ids=[plan.tenant.table("patients").rows[1].rid])
    [b] = plan.corrupt("patients", "null_id", ids=[plan.tenant.table("patients").rows[2].rid])
    [c] = plan.corrupt("patients", "string_id", ids=[plan.tenant.table("patients").rows[3].rid])
    truth = _by_rid(plan, "patients")
    assert "id" not in truth[a]
    assert truth[b]["id"] is None
    assert truth[c]["id"] == str(c)
    # Served as truth says, and filters/orderby still work on the stored ids.
    _, page = _get(plan, http, "/api/v1/patients/odata", **{"$orderby": "id", "$top": "1000"})
    served = {json.dumps(p, sort_keys=True) for p in page}
    assert served == {json.dumps(t, sort_keys=True) for t in truth.values()}
    _, after = _get(plan, http, "/api/v1/patients/odata", **{"$filter": f"id gt {b}"})
    assert [p["id"] for p in after][0] == str(c)
    assert plan.tenant.corrupted("patients") == {a: "no_id", b: "null_id", c: "string_id"}
    plan.corrupt("patients", "none", ids=[a, b, c])
    assert all(isinstance(t["data"]["id"], int) for t in plan.truth("patients"))


def test_nul_chars_inside_nested_strings(plan, http):
    rid = plan.tenant.table("subjects").rows[0].rid
    plan.corrupt("subjects", "nul_chars", ids=[rid])
    body, _ = _get(plan, http, "/api/v1/subjects/odata", **{"$top": "1000"})
    assert b"\\u0000" in body
    record = _by_rid(plan, "subjects")[rid]
    nested = [v for v in record.values() if isinstance(v, dict)]
    assert nested and any("\x00" in s for s in nested[0].values() if isinstance(s, str))
    top = [v for v in record.values() if isinstance(v, str) and "\x00" in v]
    assert len(top) == 1


def test_huge_and_bad_timestamp(plan, http):
    rows = plan.tenant.table("studies").rows
    plan.corrupt("studies", "huge", ids=[rows[0].rid])
    plan.corrupt("studies", "bad_timestamp", ids=[rows[1].rid])
    truth = _by_rid(plan, "studies")
    assert len(json.dumps(truth[rows[0].rid])) > HUGE_BYTES
    assert truth[rows[1].rid]["modifiedDate"] == "31/12/2025 23:59:60 (local)"
    # The stored change instant still drives $filter: the record is found by its real time.
    since = plan.tenant.render("studies", rows[1])[0]["modifiedDate"]
    query = {"$filter": f"modifiedDate ge datetimeoffset'{since}'"}
    _, page = _get(plan, http, "/api/v1/studies/odata", **query)
    assert rows[1].rid in [p["id"] for p in page]


def test_corruption_survives_update_and_can_be_scheduled(plan):
    rid = plan.tenant.table("patients").rows[0].rid
    plan.corrupt("patients", "null_id", ids=[rid])
    plan.update("patients", ids=[rid])
    assert _by_rid(plan, "patients")[rid]["id"] is None
    plan.schedule(after_requests=0, action="corrupt", endpoint="staff", kind="no_id", n=2)
    plan.app.next_request()
    assert len(plan.tenant.corrupted("staff")) == 2
    with pytest.raises(ValueError):
        plan.corrupt("patients", "sideways")
