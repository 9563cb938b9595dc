"""The sandbox over HTTP: shapes, routing, auth, OData, truth, stats."""

from __future__ import annotations

import json

import pytest
import requests

from cc_sandbox import Sandbox, Tenant
from tap_clinical_conductor.catalogue import CATALOGUE

KEY = "test-key"  # the key conftest.py gives every sandbox

PLAN_404 = ("screenings", "enrollments", "randomizations", "withdrawals",
            "concomitant_medications")


def api(sb: Sandbox, path: str) -> str:
    return f"{sb.base_url}/api/v1/{path}"


def first_id(sb: Sandbox, name: str) -> int:
    return sb.truth(name)[0]["data"]["id"]


def test_shapes_per_spec(sb: Sandbox, http: requests.Session) -> None:
    studies = http.get(api(sb, "studies/odata")).json()
    assert isinstance(studies, list) and len(studies) == 50  # default $top
    page = http.get(api(sb, "subjects/odata"), params={"$top": 10, "$count": "true"}).json()
    assert set(page) == {"Items", "NextPageLink", "Count"}
    assert len(page["Items"]) == 10 and page["Count"] == len(sb.truth("subjects"))
    assert "$skip=10" in page["NextPageLink"] and page["NextPageLink"].startswith("http://")
    assert http.get(api(sb, "subjects/odata"), params={"$top": 5}).json()["Count"] is None
    study = sb.truth("subjects")[0]["parent"]["studyId"]
    per_study = http.get(api(sb, f"studies/{study}/subjects/odata")).json()
    assert per_study["NextPageLink"] is None
    assert all(item["study"]["id"] == study for item in per_study["Items"])
    visit = sb.truth("patient_visit_elements")[0]["parent"]["patientVisitId"]
    elements = http.get(api(sb, f"patient-visits/{visit}/elements"), params={"$top": 1}).json()
    expected = [r["data"] for r in sb.truth("patient_visit_elements")
                if r["parent"]["patientVisitId"] == visit]
    assert elements == expected  # non-OData: whole list, $top ignored
    sites = http.get(api(sb, "sites"), params={"$top": 1, "$skip": 2}).json()
    assert len(sites) == len(sb.truth("sites"))
    details = http.get(api(sb, "instance/details")).json()
    assert isinstance(details, dict) and "instanceUID" in details


def test_odata4_shape_override(fresh: Sandbox, http: requests.Session) -> None:
    fresh.configure(overrides={"patients": {"shape": "odata4"}})
    body = http.get(api(fresh, "patients/odata"), params={"$top": 3, "$count": "true"}).json()
    assert len(body["value"]) == 3
    assert body["@odata.count"] == len(fresh.truth("patients"))
    assert "$skip=3" in body["@odata.nextLink"]


def test_base_paths_and_case(sb: Sandbox, http: requests.Session) -> None:
    root = f"http://127.0.0.1:{sb.port}"
    for path in ("/api/v1/sites", "/CCSWEB/api/v1/sites", "/ccsweb/api/v1/Sites"):
        url = root + path
        assert http.get(url).status_code == 200, url


def test_auth(sb: Sandbox) -> None:
    for headers in ({}, {"CCAPIKey": "wrong"}, {"X-ApiKey": KEY}):
        reply = requests.get(api(sb, "studies/odata"), headers=headers)
        assert reply.status_code == 401
        assert reply.json() == {"Message": "Authorization has been denied for this request."}
        assert KEY not in reply.text


def test_custom_key_header() -> None:
    with Sandbox(scale=0.0001, api_key="k", api_key_header="X-ApiKey") as sb:
        assert requests.get(api(sb, "sites"), headers={"X-ApiKey": "k"}).status_code == 200
        assert requests.get(api(sb, "sites"), headers={"CCAPIKey": "k"}).status_code == 401


def test_not_found_and_not_implemented(sb: Sandbox, http: requests.Session) -> None:
    study = first_id(sb, "studies")
    for name in PLAN_404:
        path = name.replace("_", "-")
        reply = http.get(api(sb, f"studies/{study}/{path}/odata"))
        assert reply.status_code == 404, name
        assert "No HTTP resource was found" in reply.json()["Message"]
        assert sb.truth(name) == []
    for path in (f"studies/{study}/queries/odata", "visit-arms/odata", "users/odata", "nope",
                 f"studies/{10**9}/subjects/odata", "studies/abc/subjects/odata"):
        assert http.get(api(sb, path)).status_code == 404, path
    for path in ("engagements/odata", "monitor-queries/odata"):
        reply = http.get(api(sb, path))
        assert reply.status_code == 501
        assert reply.json() == {"Message": "The method or operation is not implemented."}


def test_every_catalogue_path_is_served(sb: Sandbox, http: requests.Session) -> None:
    parents = {"{studyId}": first_id(sb, "studies"), "{patientId}": first_id(sb, "patients"),
               "{patientVisitId}": first_id(sb, "patient_visits")}
    for endpoint in CATALOGUE:
        path = endpoint.path
        for template, value in parents.items():
            path = path.replace(template, str(value))
        status = http.get(f"{sb.base_url}{path}").status_code
        expected = 404 if endpoint.name in PLAN_404 else 200
        expected = 501 if endpoint.name in ("engagements", "monitor_queries") else expected
        assert status == expected, endpoint.name
        if expected == 200:
            assert sb.truth(endpoint.name), f"{endpoint.name} has no rows"


def test_paging_serves_exactly_the_truth(sb: Sandbox, http: requests.Session) -> None:
    rows: list[dict] = []
    url: str | None = api(sb, "patient-visits/odata?$orderby=id&$top=1000")
    while url:
        page = http.get(url).json()
        rows += page["Items"]
        url = page["NextPageLink"]
    truth = [r["data"] for r in sb.truth("patient_visits")]
    assert rows == sorted(truth, key=lambda r: r["id"]) and len(rows) > 1000
    skipped = http.get(api(sb, "studies/odata"), params={"$skip": 10, "$top": 5}).json()
    assert skipped == [r["data"] for r in sb.truth("studies")][10:15]  # insertion order


def test_filter_and_orderby_over_http(sb: Sandbox, http: requests.Session) -> None:
    truth = [r["data"] for r in sb.truth("studies")]
    cut = sorted(r["lastUpdatedOn"] for r in truth)[len(truth) // 2][:19]
    params = {"$filter": f"lastUpdatedOn gt {cut} and id ge 0", "$orderby": "lastUpdatedOn desc,id",
              "$top": 1000}
    served = http.get(api(sb, "studies/odata"), params=params).json()
    expected = sorted((r for r in truth if r["lastUpdatedOn"][:19] > cut),
                      key=lambda r: r["lastUpdatedOn"], reverse=True)
    assert [r["id"] for r in served] == [r["id"] for r in expected]


@pytest.mark.parametrize("literal", ["2025-12-24T00:00:00Z", "datetime'2025-12-24T00:00:00'",
                                     "datetimeoffset'2025-12-24T00:00:00Z'", "'2025-12-24'"])
def test_wrong_datetime_format_is_400(sb: Sandbox, http: requests.Session, literal: str) -> None:
    reply = http.get(api(sb, "studies/odata"), params={"$filter": f"lastUpdatedOn gt {literal}"})
    assert reply.status_code == 400
    assert "not valid" in reply.json()["Message"]


def test_unknown_filter_property_is_400(sb: Sandbox, http: requests.Session) -> None:
    # The spec profile has no modifiedDate: a client guessing it must see the error.
    reply = http.get(api(sb, "patients/odata"),
                     params={"$filter": "modifiedDate gt 2025-12-24T00:00:00"})
    assert reply.status_code == 400 and "modifiedDate" in reply.json()["Message"]


def test_spec_profile_datetimes_and_change_fields(sb: Sandbox) -> None:
    study = sb.truth("studies")[0]["data"]
    assert {"lastUpdatedOn", "createdOn"} <= set(study) and "modifiedDate" not in study
    assert len(study["lastUpdatedOn"]) in (19, 27) and "Z" not in study["lastUpdatedOn"]
    assert not any("modifiedDate" in r["data"] or "lastUpdatedOn" in r["data"]
                   for r in sb.truth("patients"))


def test_plan_profile(plan_sb: Sandbox, http: requests.Session) -> None:
    for name in ("studies", "patients", "patient_visits", "subjects", "sites",
                 "patient_visit_elements"):
        assert all("modifiedDate" in r["data"] for r in plan_sb.truth(name)), name
    stamps = {r["data"]["modifiedDate"][19:] for r in plan_sb.truth("patient_visits")}
    assert "Z" in stamps and "+00:00" in stamps and any(len(s) > 6 for s in stamps)
    ok = http.get(api(plan_sb, "patients/odata"),
                  params={"$filter": "modifiedDate gt datetimeoffset'2024-01-01T00:00:00Z'",
                          "$top": 1000})
    assert ok.status_code == 200
    assert len(ok.json()) == sum(r["data"]["modifiedDate"] > "2024-01-01"
                                 for r in plan_sb.truth("patients"))
    naive = http.get(api(plan_sb, "patients/odata"),
                     params={"$filter": "modifiedDate gt 2024-01-01T00:00:00"})
    assert naive.status_code == 400


def test_truth_over_http_matches_python(sb: Sandbox) -> None:
    for name in ("subjects", "subjects_top", "patient_visit_elements", "system_lookup_lists"):
        assert requests.get(f"http://127.0.0.1:{sb.port}/_sandbox/truth/{name}").json() == (
            sb.truth(name))
    assert sb.truth("subjects")[0]["parent"].keys() == {"studyId"}
    assert sb.truth("subjects_top")[0]["parent"] == {}
    assert requests.get(f"http://127.0.0.1:{sb.port}/_sandbox/truth/nope").status_code == 404


def test_relationships_are_consistent(sb: Sandbox) -> None:
    studies = {r["data"]["id"]: r["data"] for r in sb.truth("studies")}
    subjects = {r["data"]["id"]: r for r in sb.truth("subjects")}
    patients = {r["data"]["id"] for r in sb.truth("patients")}
    for subject in subjects.values():
        assert subject["parent"]["studyId"] == subject["data"]["study"]["id"]
        assert studies[subject["data"]["study"]["id"]]["name"] == subject["data"]["study"]["name"]
        assert subject["data"]["patient"]["id"] in patients
    for visit in sb.truth("patient_visits"):
        subject = subjects[visit["data"]["subject"]["Id"]]
        assert visit["data"]["study"]["id"] == subject["data"]["study"]["id"]
    visits = {r["data"]["id"] for r in sb.truth("patient_visits")}
    assert all(r["parent"]["patientVisitId"] in visits for r in sb.truth("patient_visit_elements"))
    assert len(subjects) == 89 and len(visits) == 2297 and len(studies) == 157


def test_same_seed_same_data() -> None:
    one, two, other = Tenant(0.0002, seed=3), Tenant(0.0002, seed=3), Tenant(0.0002, seed=4)
    for name in ("studies", "subjects", "patient_visit_elements", "patient_allergies"):
        assert one.truth(name) == two.truth(name)
    assert one.truth("studies") != other.truth("studies")


def test_stats_and_reset(fresh: Sandbox, http: requests.Session) -> None:
    admin = f"http://127.0.0.1:{fresh.port}/_sandbox"
    fresh.reset_stats()
    http.get(api(fresh, "sites"))
    http.get(api(fresh, "sites"))
    requests.get(api(fresh, "sites"))
    http.get(api(fresh, "nowhere"))
    requests.get(f"{admin}/health")  # admin calls are not counted
    stats = requests.get(f"{admin}/stats").json()
    assert stats["requests"] == 4
    assert stats["by_endpoint"] == {"sites": {"200": 2, "401": 1}, "_unknown": {"404": 1}}
    assert stats["by_status"] == {"200": 2, "401": 1, "404": 1}
    assert stats["bytes"] > 0 and stats["throttled_429"] == 0 and stats["faults"] == {}
    assert stats == fresh.stats()
    requests.post(f"{admin}/stats/reset")
    assert fresh.stats()["requests"] == 0


def test_admin_api(fresh: Sandbox, http: requests.Session) -> None:
    admin = f"http://127.0.0.1:{fresh.port}/CCSWeb/_sandbox"
    health = requests.get(f"{admin}/health").json()
    assert health["status"] == "ok" and health["clock"] == "2026-01-01T00:00:00Z"
    assert requests.post(f"{admin}/clock/advance", json={"seconds": 60}).json() == {
        "clock": "2026-01-01T00:01:00Z"}
    ids = requests.post(f"{admin}/mutate", json={"action": "update", "endpoint": "studies",
                                                 "n": 2}).json()["ids"]
    changed = [r["data"] for r in fresh.truth("studies") if r["data"]["id"] in ids]
    assert [r["lastUpdatedOn"] for r in changed] == ["2025-12-31T19:01:00", "2025-12-31T19:01:01"]
    config = requests.post(f"{admin}/config", json={"latency_ms": 1}).json()
    assert config["latency_ms"] == 1 and "api_key" not in config
    bad = requests.post(f"{admin}/config", json={"nope": 1})
    assert bad.status_code == 400
    bad = requests.post(f"{admin}/mutate", json={"action": "explode", "endpoint": "studies"})
    assert bad.status_code == 400
    reply = requests.post(f"{admin}/schedule", json={"after_requests": 1, "action": "delete",
                                                     "endpoint": "sites", "n": 2})
    assert reply.json()["scheduled"] is True
    before = len(http.get(api(fresh, "sites")).json())
    assert len(http.get(api(fresh, "sites")).json()) == before - 2


def test_ignores_skip_and_filter_and_status_overrides(fresh: Sandbox, http: requests.Session):
    fresh.configure(overrides={"patients": {"ignores_skip": True, "ignores_filter": True},
                               "sites": {"status": 404}})
    first = http.get(api(fresh, "patients/odata"), params={"$top": 5}).json()
    again = http.get(api(fresh, "patients/odata"), params={"$top": 5, "$skip": 5,
                                                           "$filter": "id eq -1"}).json()
    assert first == again and len(first) == 5
    assert http.get(api(fresh, "sites")).status_code == 404 and fresh.truth("sites") == []


def test_change_field_override(fresh: Sandbox) -> None:
    fresh.configure(overrides={"patients": {"change_field": "modifiedOn"},
                               "studies": {"change_field": None}})
    assert all(len(r["data"]["modifiedOn"]) >= 19 for r in fresh.truth("patients"))
    assert not any("lastUpdatedOn" in r["data"] for r in fresh.truth("studies"))
    assert "modifiedOn" in json.dumps(fresh.truth("patients")[0])
