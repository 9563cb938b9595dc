"""Two simulated days through `meltano run daily` with a request budget that does not cover every
parent (issue 14), checked against the tenant's change log.

A first run loads everything (no binding budget). Then, twice: the tenant lives one day
(`advance_day`: new studies, edits, visits completed, per-study lists changed, some changes late);
the `daily` job runs with a budget of about half the first run's requests. After each run every
signalled change of that day is in the warehouse (a deleted row retired), no row that still
exists is retired, the tap's coverage table has a row per stream and run, and the `sync_freshness`
mart shows the latest run of each stream with its staleness bound.
"""

from __future__ import annotations

import pytest

from cc_dev.warehouse import expected_rows, read_rows, table_exists
from tap_clinical_conductor.catalogue import BY_NAME
from tap_clinical_conductor.selection import COVERAGE_STREAM

#: Per-study and per-visit streams of the default selection that the sandbox serves.
PER_PARENT = (
    "study_documents",
    "queries",
    "study_actions",
    "study_milestones",
    "study_notes",
    "patient_visit_elements",
)


@pytest.fixture(scope="module")
def sandbox(api_key):
    """CC 8.5 as its spec says (no change field below studies), with the reference activity."""
    from cc_sandbox import Sandbox

    with Sandbox(scale=0.003, profile="spec", api_key=api_key, seed=11) as sb:
        yield sb


class Days:
    """The first load, then one `daily` run per simulated day, each done once."""

    def __init__(self, sb, meltano, pg, schema, dbt_schema):
        self.sb, self.meltano, self.pg = sb, meltano, pg
        self.schema, self.dbt_schema = schema, dbt_schema
        self.requests: list[int] = []

    def run(self, day: int, budget: int | None = None) -> None:
        while len(self.requests) <= day:
            n = len(self.requests)
            if n:
                self.sb.advance_day()
            self.sb.reset_stats()
            env = (
                {}
                if budget is None or not n
                else {"TAP_CLINICAL_CONDUCTOR_MAX_REQUESTS_PER_RUN": str(budget)}
            )
            result = self.meltano("run", "daily", env=env)
            assert result.returncode == 0, result.tail()
            self.requests.append(self.sb.stats()["requests"])

    def budget(self) -> int:
        self.run(0)
        return self.requests[0] // 2


@pytest.fixture(scope="module")
def days(sandbox, meltano, warehouse_server, e2e_schema, dbt_schema) -> Days:
    return Days(sandbox, meltano, warehouse_server, e2e_schema, dbt_schema)


@pytest.mark.parametrize("day", [1, 2])
def test_signalled_changes_reach_the_warehouse_under_a_budget(days, day):
    budget = days.budget()
    days.run(day, budget)
    assert days.requests[day] <= budget
    changes = [c for c in days.sb.changes(day) if c["signalled"] and c["endpoint"] in BY_NAME]
    assert any(c["endpoint"] in PER_PARENT for c in changes), "a day without per-parent changes"
    missed = []
    with days.pg.connect() as conn:
        for name in {c["endpoint"] for c in changes}:
            endpoint = BY_NAME[name]
            want = expected_rows(days.sb, endpoint)
            got = {
                (r[endpoint.parent_key], r["id"]) if endpoint.parent_key else (r["id"],): r["data"]
                for r in read_rows(conn, days.schema, endpoint)
            }
            for change in (c for c in changes if c["endpoint"] == name):
                key = _key(endpoint, change)
                if key is None:
                    continue
                if change["kind"] == "delete" and key in want:
                    continue  # deleted, then inserted again the same day
                if change["kind"] == "delete":
                    ok = key not in got
                else:
                    ok = key not in want or got.get(key) == want[key]
                if not ok:
                    missed.append((name, change["kind"], change["signal"], key))
            # No row that still exists is retired.
            assert want.keys() <= got.keys() or name in PER_PARENT, name
    assert not missed, missed[:10]


def _key(endpoint, change) -> tuple | None:
    if endpoint.parent_key is None:
        return (change["id"],) if isinstance(change.get("id"), int) else None
    parent = (change.get("parent") or {}).get(endpoint.parent_key)
    return (parent, change["id"]) if parent is not None else None


def test_no_row_that_still_exists_is_retired(days):
    days.run(2, days.budget())
    with days.pg.connect() as conn:
        for name in PER_PARENT:
            endpoint = BY_NAME[name]
            stored = {
                (r[endpoint.parent_key], r["id"])
                for r in read_rows(conn, days.schema, endpoint, live=False)
            }
            live = {
                (r[endpoint.parent_key], r["id"]) for r in read_rows(conn, days.schema, endpoint)
            }
            want = set(expected_rows(days.sb, endpoint))
            assert not (want & stored) - live, f"{name}: rows of the tenant retired"


def test_coverage_and_sync_freshness_show_every_run_and_stream(days):
    days.run(2, days.budget())
    with days.pg.connect() as conn:
        assert table_exists(conn, days.schema, COVERAGE_STREAM)
        runs = conn.execute(
            f'select count(distinct run_started_at) from "{days.schema}"."{COVERAGE_STREAM}"'
        ).fetchone()[0]
        assert runs == 3
        rows = conn.execute(
            f"select stream, parents_total, read_new + read_changed + read_live + read_sweep, "
            f"staleness_bound_hours, sweep_period_days, budget_stopped "
            f'from "{days.dbt_schema}".sync_freshness'
        ).fetchall()
    by_stream = {r[0]: r[1:] for r in rows}
    assert len(by_stream) == len(rows)  # one row per tenant and stream
    for name in PER_PARENT:
        total, read, staleness, period, stopped = by_stream[name]
        assert total and 0 < read <= total
        assert staleness is not None and period is not None
    assert any(by_stream[name][4] for name in PER_PARENT), "the budget never bound"
    assert by_stream["studies"][2] == 0  # top-level streams are read whole every run


def test_state_stays_small(days):
    days.run(2, days.budget())
    from cc_dev.meltano_runner import DAILY_STATE_ID

    result = days.meltano("state", "get", DAILY_STATE_ID)
    assert result.returncode == 0, result.tail()
    assert len(result.output) < 10_000
