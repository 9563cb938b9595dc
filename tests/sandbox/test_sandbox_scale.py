"""The lazy tenant: determinism, columns against records, activity shares, days, change log.

Small scales only: the full-size figures come from ``benchmarks/bench_sandbox.py``.
"""

from __future__ import annotations

import email.utils
import json
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
import requests

from cc_sandbox import Sandbox, Tenant
from cc_sandbox import activity as act
from cc_sandbox import days as days_mod
from cc_sandbox import endpoints as ep
from cc_sandbox.app import App, Config
from cc_sandbox.odata import parse_query

KEY = "test-key"
#: Endpoints with their own rows (no twins, no 404/501).
DATA = [e.name for e in ep.TABLES]


def served(tenant: Tenant, name: str) -> list[bytes]:
    return [tenant.render(ep.BY_NAME[name].source, row)[1] for row in tenant.table(name).rows]


def test_same_seed_same_bytes_whatever_the_order_of_reading() -> None:
    a = Tenant(scale=0.0005, seed=5)
    b = Tenant(scale=0.0005, seed=5)
    for name in ("patient_visits", "subjects", "study_documents", "patient_visit_elements"):
        rows_b = list(b.table(name).rows)
        backwards = [b.render(name, row)[1] for row in reversed(rows_b)][::-1]
        assert served(a, name) == backwards, name
    assert a.truth("studies") == b.truth("studies")
    other = Tenant(scale=0.0005, seed=6)
    assert served(other, "studies") != served(a, "studies")


def test_previews_built_at_start_are_those_a_first_read_builds(
        monkeypatch: pytest.MonkeyPatch) -> None:
    built = Tenant(scale=0.0005, seed=5)
    assert len(built.previews.pinned) > len(built.table("subjects"))  # subjects' and studies'
    monkeypatch.setattr(Tenant, "_pin_subjects", lambda self: None)
    lazy = Tenant(scale=0.0005, seed=5)
    assert not lazy.previews.pinned
    for name in ("patient_visits", "appointments", "subject_statuses", "subjects"):
        assert served(built, name) == served(lazy, name), name


def test_small_scales_keep_their_row_counts() -> None:
    tenant = Tenant(scale=0.001)
    counts = {name: len(tenant.table(name)) for name in DATA}
    assert counts["studies"] == 157 and counts["patients"] == 153
    assert counts["patient_visits"] == 2297 and counts["patient_visit_elements"] == 2091
    assert counts["appointments"] == 861 and counts["subjects"] == 89
    assert counts["study_documents"] == round(3.0 * 157)
    assert counts["system_study_statuses"] == 8


# --------------------------------------------------------------------- columns vs records

@pytest.fixture(scope="module")
def app() -> App:
    return App(Tenant(scale=0.001, seed=3), Config())


QUERIES = [
    ("patient_visits", {"$filter": "status eq 'Pending'", "$orderby": "targetDueDate desc,id"}),
    ("patient_visits", {"$filter": "(status eq 'Started' or status eq 'Pending') and "
                                   "maxDueDate ge 2025-12-20T00:00:00", "$orderby": "id"}),
    ("patient_visits", {"$filter": "not (status ne 'Completed') and id gt 1500",
                        "$orderby": "minDueDate,id desc"}),
    ("patient_visits", {"$filter": "study/id le 80 and subject/Id ne null", "$orderby": "id"}),
    ("studies", {"$filter": "lastUpdatedOn ge 2025-10-01T00:00:00 or status eq 'Enrolling'",
                 "$orderby": "lastUpdatedOn desc,id"}),
    ("studies", {"$filter": "status lt 'F' and createdOn lt 2024-01-01T00:00:00",
                 "$orderby": "status,id"}),
    ("subject_statuses", {"$orderby": "eventDate,status"}),
    ("subject_statuses", {"$filter": "eventDate gt 2024-06-01T12:00:00",
                          "$orderby": "status desc"}),
    ("appointments", {"$filter": "plannedStart ge 2025-12-01T00:00:00 and status eq 'Pending'",
                      "$orderby": "plannedStart"}),
    ("subjects_top", {"$filter": "study/id gt 40", "$orderby": "study/id desc,id"}),
]


def select_both(app: App, name: str, params: dict[str, str], pid: int | None = None,
                fast: Any = App._select_columns) -> tuple[Any, Any, Any, list[Any]]:
    """The query, its rows, its selection by ``fast`` (asserted taken), and by records."""
    spec = ep.BY_NAME[name]
    query = parse_query(params, app._typer(name), app.datetime_form, app.tenant.tz)
    rows = app.tenant.rows_for(name, pid)
    assert rows is not None
    quick = fast(app, spec, rows, query)
    assert quick is not None, "expected the faster path"
    return query, rows, quick, app._select_records(spec, rows, query)


@pytest.mark.parametrize(("name", "params"), QUERIES)
def test_columns_agree_with_records(app: App, name: str, params: dict[str, str]) -> None:
    _, rows, by_columns, by_records = select_both(app, name, params)
    assert [r.rid for r in by_columns] == [r.rid for r in by_records]
    assert 0 < len(by_records) < len(rows) or "$filter" not in params


ID_ORDER = [
    ("patient_visits", False, {"$filter": "id gt 1200", "$orderby": "id", "$top": "100"}),
    ("patient_visits", False, {"$filter": "id gt 1200 and status eq 'Pending'", "$top": "40",
                               "$skip": "7"}),
    ("patient_visits", False, {"$filter": "(id ge 300 and id lt 900) or id eq 1700.5 or "
                                          "id le 20", "$orderby": "id", "$count": "true"}),
    ("patient_visits", False, {"$filter": "not (id gt 50) and status ne 'Completed'",
                               "$top": "1000"}),
    ("patient_visits", False, {"$filter": "id gt 99999999999999999999", "$orderby": "id"}),
    ("patient_visits", False, {"$orderby": "id", "$top": "30", "$skip": "2000"}),
    ("study_documents", True, {"$filter": "id gt 0", "$orderby": "id", "$top": "2"}),
]


@pytest.mark.parametrize(("name", "per_parent", "params"), ID_ORDER)
def test_pages_in_id_order_agree_with_records(app: App, name: str, per_parent: bool,
                                              params: dict[str, str]) -> None:
    pid = None
    if per_parent:  # the parent with the most rows
        pid = int(np.bincount(app.tenant.table(name).snap.cols["parent"]).argmax())
    query, _, fast, slow = select_both(app, name, params, pid, App._select_in_id_order)
    page = slice(query.skip, query.skip + query.top)
    assert [r.rid for r in fast[page]] == [r.rid for r in slow[page]]
    # as many rows as the answer's NextPageLink and Count need
    want = len(slow) if query.count else min(len(slow), query.skip + query.top + 1)
    assert len(fast) == want
    assert [r.rid for r in fast] == [r.rid for r in slow[:want]]


def test_plan_profile_change_field_columns_match_served_spellings() -> None:
    tenant = Tenant(scale=0.0005, profile="plan")
    app = App(tenant, Config())
    cut = sorted(r["data"]["modifiedDate"] for r in tenant.truth("patients"))[40]
    for op in ("ge", "gt", "le"):
        query = parse_query({"$filter": f"modifiedDate {op} datetimeoffset'{cut}'",
                             "$orderby": "modifiedDate"}, app._typer("patients"),
                            app.datetime_form, tenant.tz)
        rows = tenant.rows_for("patients", None)
        assert rows is not None
        by_columns = app._select_columns(ep.BY_NAME["patients"], rows, query)
        assert by_columns is not None
        assert [r.rid for r in by_columns] == [
            r.rid for r in app._select_records(ep.BY_NAME["patients"], rows, query)]


def test_unknown_to_columns_falls_back_to_records(app: App) -> None:
    query = parse_query({"$filter": "sequence gt 100", "$orderby": "visitName"},
                        app._typer("patient_visits"), app.datetime_form, app.tenant.tz)
    rows = app.tenant.rows_for("patient_visits", None)
    assert rows is not None
    assert app._select_columns(ep.BY_NAME["patient_visits"], rows, query) is None


@pytest.fixture(scope="module")
def sb() -> Iterator[Sandbox]:
    """Scale 0.01, as the issue asks (1,573 studies, 22,973 patient visits, 106,317 rows in
    all), after three simulated days.
    """
    with Sandbox(scale=0.01, api_key=KEY, seed=9) as sandbox:
        sandbox.advance_day(3)
        yield sandbox


def test_keyset_skip_and_count_over_http_after_days(sb: Sandbox) -> None:
    url = f"{sb.base_url}/api/v1/patient-visits/odata"
    truth = [r["data"] for r in sb.truth("patient_visits")]
    pending = sorted((r for r in truth if r["status"] == "Pending"), key=lambda r: r["id"])
    with requests.Session() as http:
        http.headers["CCAPIKey"] = KEY
        keyset: list[dict[str, Any]] = []
        last = 0
        while True:
            page = http.get(url, params={"$filter": f"status eq 'Pending' and id gt {last}",
                                         "$orderby": "id", "$top": 50}).json()["Items"]
            if not page:
                break
            keyset += page
            last = page[-1]["id"]
        skipped: list[dict[str, Any]] = []
        while True:
            body = http.get(url, params={"$filter": "status eq 'Pending'", "$orderby": "id",
                                         "$top": 70, "$skip": len(skipped),
                                         "$count": "true"}).json()
            assert body["Count"] == len(pending)
            skipped += body["Items"]
            if not body["NextPageLink"]:
                break
    assert keyset == pending and skipped == pending and len(pending) > 50


def test_every_endpoint_serves_its_truth_after_days(sb: Sandbox) -> None:
    app = sb.app
    for spec in ep.ENDPOINTS:
        if spec.status != 200 or spec.shape == ep.OBJECT:
            continue
        truth = sb.truth(spec.name)
        got: list[tuple[dict[str, Any], Any]] = []
        parents: list[int | None] = [None]
        if spec.parent and not spec.same_as:
            parents = sorted({r["parent"][spec.parent[1]] for r in truth})
        for pid in parents:
            key = spec.parent[1] if pid is not None and spec.parent else None
            skip = 0
            while True:
                params = {"$top": "1000", "$skip": str(skip),
                          "$orderby": spec.id_field or "status"} if spec.odata else {}
                answer = app.answer(spec, pid, params, "http://x")
                assert answer.status == 200, spec.name
                body = json.loads(answer.body)
                items = body["Items"] if isinstance(body, dict) else body
                got += [({key: pid} if key else {}, item) for item in items]
                skip += 1000
                if not spec.odata or len(items) < 1000:
                    break
        expected = [(r["parent"], r["data"]) for r in truth]
        if spec.odata and spec.id_field:
            expected.sort(key=lambda pair: pair[1][spec.id_field])
        assert sorted(map(json.dumps, (g for g in got))) == sorted(
            map(json.dumps, expected)), spec.name


def test_date_header_admin_day_changes_and_stats_per_day(sb: Sandbox) -> None:
    base = f"http://127.0.0.1:{sb.port}/_sandbox"
    with requests.Session() as http:
        http.headers["CCAPIKey"] = KEY
        before = http.get(f"{sb.base_url}/api/v1/studies/odata").headers["Date"]
        reply = http.post(f"{base}/day", json={"days": 1}).json()
        after = http.get(f"{sb.base_url}/api/v1/studies/odata")
    day = reply["day"]
    assert after.headers["Date"] != before
    stamp = email.utils.parsedate_to_datetime(after.headers["Date"])
    assert stamp.strftime("%Y-%m-%dT%H:%M:%SZ") == reply["clock"]
    changes = requests.get(f"{base}/changes", params={"day": day}).json()["changes"]
    assert changes == sb.changes(day) and changes
    assert {c["kind"] for c in changes} <= {"insert", "update", "delete"}
    by_day = requests.get(f"{base}/stats").json()["by_day"]
    assert by_day[str(day)]["studies"] >= 1


# ------------------------------------------------------------------------------- change log

def _keyed(tenant: Tenant) -> dict[tuple[str, Any], tuple[dict[str, Any], str]]:
    out = {}
    for name in DATA:
        spec = ep.BY_NAME[name]
        if not spec.id_field or spec.shape == ep.OBJECT:
            continue
        for r in tenant.truth(name):
            out[(name, r["data"][spec.id_field])] = (r["parent"], json.dumps(r["data"]))
    return out


@pytest.fixture
def busy(monkeypatch: pytest.MonkeyPatch) -> Tenant:
    """A tiny tenant whose days are as busy as a larger one's (the log must match any volume)."""
    monkeypatch.setattr(days_mod, "DAY_VOLUME", {k: v * 20 for k, v in days_mod.DAY_VOLUME.items()})
    return Tenant(scale=0.0005, seed=4)


def test_change_log_is_exactly_the_difference_of_two_days(busy: Tenant) -> None:
    for _ in range(2):
        before = _keyed(busy)
        statuses_before = len(busy.table("subject_statuses"))
        summary = busy.advance_day(late_share=0.3)
        after = _keyed(busy)
        log = busy.changes_of(summary["day"])
        logged = {(c["endpoint"], c["id"], c["kind"]) for c in log
                  if ep.BY_NAME[c["endpoint"]].id_field}
        diff = {(k[0], k[1], "insert") for k in after.keys() - before.keys()}
        diff |= {(k[0], k[1], "delete") for k in before.keys() - after.keys()}
        diff |= {(k[0], k[1], "update") for k in before.keys() & after.keys()
                 if before[k] != after[k]}
        assert logged == diff and len(diff) > 30
        inserted = [c for c in log if c["endpoint"] == "subject_statuses"]
        assert len(busy.table("subject_statuses")) - statuses_before == len(inserted)
        keys = {(r["data"]["subject"]["Id"], r["data"]["status"], r["data"]["eventDate"])
                for r in busy.truth("subject_statuses")}
        assert inserted and {tuple(c["key"]) for c in inserted} <= keys
        for c in log:
            if c["kind"] == "insert" and c["parent"]:
                assert after[(c["endpoint"], c["id"])][0] == c["parent"]


def test_late_changes_leave_every_parent_field_alone(busy: Tenant) -> None:
    before = {name: {r["data"]["id"]: r["data"] for r in busy.truth(name)}
              for name in ("studies", "patient_visits")}
    busy.advance_day(late_share=0.5)
    late = [c for c in busy.changes_of(busy.day) if c["signal"] == "none"]
    assert late and all(c["signalled"] is False for c in late)
    studies = {r["data"]["id"]: r["data"] for r in busy.truth("studies")}
    visits = {r["data"]["id"]: r["data"] for r in busy.truth("patient_visits")}
    for c in late:
        if "studyId" in c["parent"]:
            sid = c["parent"]["studyId"]
            assert studies[sid] == before["studies"][sid]
            assert studies[sid]["status"] not in [s[0] for s in act.STUDY_STATUSES if s[1]]
        else:
            vid = c["parent"]["patientVisitId"]
            assert visits[vid] == before["patient_visits"][vid]
            assert visits[vid]["status"] == "Completed"


def test_late_share_is_configurable(busy: Tenant) -> None:
    busy.advance_day(late_share=0.0)
    assert not [c for c in busy.changes_of(busy.day) if c["signal"] == "none"]
    busy.advance_day(late_share=1.0)
    children = [c for c in busy.changes_of(busy.day) if c["endpoint"] in days_mod.CHILD_LISTS]
    assert children and all(c["signal"] == "none" for c in children)


# ------------------------------------------------------------------------------- activity

def test_activity_shares_match_the_readme() -> None:
    tenant = Tenant(scale=0.01, seed=7)
    studies = tenant.table("studies").snap
    active = np.isin(studies.cols["status"], act.ACTIVE_CODES)
    assert abs(active.mean() - 0.08) < 0.02
    with_subjects = np.isin(studies.ids, tenant.table("subjects").snap.cols["parent"])
    assert abs(with_subjects.mean() - 0.07) < 0.02
    assert active[with_subjects].mean() > 0.9
    visits = tenant.table("patient_visits").snap
    shares = np.bincount(visits.cols["status"], minlength=4) / len(visits.ids)
    for got, want in zip(shares, act.VISIT_SHARES, strict=True):
        assert abs(got - want) < 0.01
    days_off = (visits.cols["targetDueDate"] - tenant.clock) / act.DAY
    pending = visits.cols["status"] == 1
    assert np.all((days_off[pending] > -11) & (days_off[pending] < 121))
    assert np.all(np.abs(days_off[visits.cols["status"] == 3]) < 8)
    assert days_off[visits.cols["status"] == 2].min() < -14 * 365
    for name in days_mod.CHILD_LISTS:
        parents = tenant.table(name).snap.cols["parent"]
        under_active = np.isin(parents, studies.ids[active]).mean()
        assert abs(under_active - act.UNDER_ACTIVE) < 0.1, name
    names = {r["data"]["name"] for r in tenant.truth("system_study_statuses")}
    assert {r["data"]["status"] for r in tenant.truth("studies")} <= names
    seen = set()
    for row in tenant.table("patient_visit_elements").rows[:300]:
        visit = tenant.table("patient_visits").by_id()[row.parent]
        doc, element = tenant.render("patient_visits", visit)[0], row.base
        seen.add(doc["status"])
        if doc["status"] in ("Pending", "Unknown"):
            assert element["completedOn"] is None
        elif doc["status"] == "Completed":
            assert doc["minDueDate"] <= element["completedOn"][:19] <= doc["maxDueDate"]
    assert {"Completed", "Pending"} <= seen
    for row in tenant.table("appointments").rows[:200]:
        visit = tenant.table("patient_visits").by_id()[row.links["patient_visits"]]
        planned = tenant.render("appointments", row)[0]["plannedStart"]
        target = tenant.render("patient_visits", visit)[0]["targetDueDate"]
        assert abs(np.datetime64(planned) - np.datetime64(target)) <= np.timedelta64(5, "h")


def test_activity_none_is_uniform_and_filters_the_same() -> None:
    tenant = Tenant(scale=0.002, activity="none")
    studies = tenant.table("studies").snap
    assert abs(np.isin(studies.cols["status"], act.ACTIVE_CODES).mean() - 0.5) < 0.1
    assert np.isin(studies.ids, tenant.table("subjects").snap.cols["parent"]).mean() > 0.3
    app = App(tenant, Config())
    query = parse_query({"$filter": "status eq 'Started'", "$orderby": "maxDueDate desc"},
                        app._typer("patient_visits"), app.datetime_form, tenant.tz)
    rows = tenant.rows_for("patient_visits", None)
    assert rows is not None
    by_columns = app._select_columns(ep.BY_NAME["patient_visits"], rows, query)
    assert by_columns is not None and len(by_columns) > len(rows) / 5
    assert [r.rid for r in by_columns] == [
        r.rid for r in app._select_records(ep.BY_NAME["patient_visits"], rows, query)]
    with pytest.raises(ValueError, match="activity"):
        Tenant(scale=0.0003, activity="busy")
