"""`meltano run tap-clinical-conductor target-postgres dbt-postgres:build` into PostgreSQL, checked
against the tenant.

1. A first run (no state) loads every default stream: each staging table equals the sandbox's
   truth (keys, count, data); dbt builds the marts, which equal the truth too (row counts and typed
   values, naive datetimes read in the dev environment's America/New_York).
2. The tenant changes; a second run (the `daily` job: load, then dbt build) loads only what changed
   (the sandbox's counters and the warehouse's _sdc_received_at show it), the tables and the marts
   equal the new truth, and each changed study has a second version in its Type 2 history.
3. `meltano state get` shows the bookmarks.
4. `meltano state clear` and a run (load only) reload everything, with no duplicate key.
5. The `weekly-full` job reloads everything without touching the daily bookmarks, and its dbt
   build leaves marts equal to the truth and the history without new versions.
"""

from __future__ import annotations

import datetime as dt
import json
import sys
from pathlib import Path

import pytest

from cc_dev.meltano_runner import DAILY_STATE_ID
from cc_dev.warehouse import (
    compare_all,
    default_streams,
    duplicate_keys,
    rows_written_since,
    table_counts,
)

sys.path.insert(0, str(Path(__file__).parents[1] / "transform"))
from mart_checks import check_marts  # noqa: E402

#: The dev environment's tenant time zone (meltano.yml: the tap's and dbt-postgres' settings).
DEV_TZ = "America/New_York"

#: Top-level streams that read by change field in the `plan` profile (bookmarked, filtered).
INCREMENTAL_TOP = ("studies", "patients", "patient_visits", "appointments", "elements", "staff")


def mutate(sb) -> None:
    """Changes a day brings: updates, new records (also under unchanged parents), a late write."""
    sb.advance_clock(seconds=3600)
    sb.update("studies", n=3)
    sb.update("patients", n=4, same_timestamp=True)
    sb.update("patient_visits", n=5)
    sb.update("appointments", n=3)
    sb.insert("subjects", n=2, under="old")
    sb.insert("study_notes", n=2, under="old")
    sb.insert("patient_visit_elements", n=2, under="old")
    sb.update("studies", n=2, backdate_seconds=600)  # late write, inside the lookback


class Pipeline:
    """The module's sequence of runs, each done once and remembered."""

    def __init__(self, sb, meltano, pg, schema, dbt_schema):
        self.sb, self.meltano, self.pg, self.schema = sb, meltano, pg, schema
        self.dbt_schema = dbt_schema
        self.runs: dict[str, dict] = {}
        #: The studies as the tenant served them before the changes of the incremental run.
        self.studies_before: dict[int, dict] = {}

    def _run(self, name: str, *blocks: str) -> dict:
        if name not in self.runs:
            self.sb.reset_stats()
            since = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
            result = self.meltano("run", *blocks)
            assert result.returncode == 0, (
                f"meltano run {' '.join(blocks)} failed:\n{result.tail()}"
            )
            with self.pg.connect() as conn:
                written = rows_written_since(conn, self.schema, since)
                counts = table_counts(conn, self.schema)
            self.runs[name] = {
                "stats": self.sb.stats(),
                "written": written,
                "counts": counts,
                "seconds": result.seconds,
            }
        return self.runs[name]

    def first(self) -> dict:
        return self._run("first", "tap-clinical-conductor", "target-postgres", "dbt-postgres:build")

    def incremental(self) -> dict:
        self.first()
        if "incremental" not in self.runs:
            self.studies_before = {r["data"]["id"]: r["data"] for r in self.sb.truth("studies")}
            mutate(self.sb)
        return self._run("incremental", "daily")

    def state_get(self) -> dict:
        self.incremental()
        result = self.meltano("state", "get", DAILY_STATE_ID)
        assert result.returncode == 0, result.tail()
        text = result.output[result.output.index("{") :]
        return json.loads(text[: text.rindex("}") + 1])

    def reload_after_clear(self) -> dict:
        self.incremental()
        if "reload" not in self.runs:
            cleared = self.meltano("state", "clear", "--force", DAILY_STATE_ID)
            assert cleared.returncode == 0, cleared.tail()
        return self._run("reload", "tap-clinical-conductor", "target-postgres")

    def weekly_full(self) -> dict:
        self.reload_after_clear()
        return self._run("weekly-full", "weekly-full")

    def assert_equal_to_truth(self) -> None:
        with self.pg.connect() as conn:
            results = compare_all(conn, self.schema, self.sb)
        bad = [
            f"{r.table}: expected {r.expected}, loaded {r.loaded}; {r.problems}"
            for r in results
            if not r.ok
        ]
        assert not bad, "staging tables differ from the tenant:\n" + "\n".join(bad)

    def assert_marts_equal_to_truth(self) -> None:
        with self.pg.connect() as conn:
            problems = check_marts(conn, self.sb.truth, tz=DEV_TZ, schema=self.dbt_schema)
        assert not problems, "marts differ from the tenant:\n" + "\n".join(problems[:40])

    def study_versions(self) -> dict[int, tuple[int, int]]:
        """study id -> (versions, current versions) in the Type 2 history."""
        with self.pg.connect() as conn:
            rows = conn.execute(
                f"select study_id, count(*), count(*) filter (where is_current) "
                f"from {self.dbt_schema}.dim_studies_history group by study_id"
            ).fetchall()
        return {sid: (n, current) for sid, n, current in rows}

    def assert_no_duplicate_keys(self) -> None:
        with self.pg.connect() as conn:
            dups = {
                e.staging_table: n
                for e in default_streams()
                if (n := duplicate_keys(conn, self.schema, e))
            }
        assert not dups, dups


@pytest.fixture(scope="module")
def pipeline(sandbox, meltano, warehouse_server, e2e_schema, dbt_schema) -> Pipeline:
    return Pipeline(sandbox, meltano, warehouse_server, e2e_schema, dbt_schema)


def test_first_run_loads_every_staging_table_equal_to_the_tenant(pipeline):
    run = pipeline.first()
    expected_tables = {e.staging_table for e in default_streams()}
    # Every default stream has its table (the job plan's names), endpoints that are 404/501 on
    # CC 8.5 included (empty).
    missing = expected_tables - set(run["counts"])
    assert not missing, f"no staging table for {sorted(missing)}"
    assert run["counts"]["fact_study_documents_staging"] > 0  # study_notes, as the plan says
    pipeline.assert_equal_to_truth()
    pipeline.assert_no_duplicate_keys()


def test_first_run_builds_marts_equal_to_the_tenant(pipeline):
    pipeline.first()
    pipeline.assert_marts_equal_to_truth()
    # One version per study in the history, all current.
    versions = pipeline.study_versions()
    assert len(versions) == len(pipeline.sb.truth("studies"))
    assert set(versions.values()) == {(1, 1)}


def test_staging_tables_have_record_columns_data_jsonb_and_sdc_metadata(pipeline):
    pipeline.first()
    with pipeline.pg.connect() as conn:
        cols = dict(
            conn.execute(
                "SELECT column_name, data_type FROM information_schema.columns "
                "WHERE table_schema = %s AND table_name = 'fact_study_documents_staging'",
                (pipeline.schema,),
            ).fetchall()
        )
        pk = conn.execute(
            "SELECT array_agg(a.attname::text ORDER BY k.ord) FROM pg_index i "
            "CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY k(attnum, ord) "
            "JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum "
            "WHERE i.indrelid = %s::regclass AND i.indisprimary",
            (f'"{pipeline.schema}".fact_study_documents_staging',),
        ).fetchone()[0]
    assert cols["data"] == "jsonb"
    assert {"instance_id", "studyId", "id", "modifiedDate"} <= cols.keys()
    assert {
        "_sdc_extracted_at",
        "_sdc_received_at",
        "_sdc_batched_at",
        "_sdc_deleted_at",
    } <= cols.keys()
    assert pk == ["instance_id", "studyId", "id"]


def test_second_run_is_incremental_and_equal_to_the_changed_tenant(pipeline):
    first, second = pipeline.first(), pipeline.incremental()
    pipeline.assert_equal_to_truth()
    pipeline.assert_no_duplicate_keys()
    s1, s2 = first["stats"], second["stats"]
    # The tenant sent far less: streams were filtered on their change field. (The request count
    # stays about the same with the default child_scope=all_parents: every study and patient
    # visit is still asked for its children, with a filter; see the demo for changed_parents.)
    assert s2["bytes"] < 0.5 * s1["bytes"], (s1["bytes"], s2["bytes"])
    assert s2["requests"] < 1.1 * s1["requests"], (s1["requests"], s2["requests"])
    # ...and the warehouse rewrote only the changed rows of those streams (plus the lookback).
    for stream in INCREMENTAL_TOP:
        table = f"dim_{stream}_staging"
        total, rewritten = second["counts"][table], second["written"][table]
        if pipeline.sb.tenant.profile == "plan" or stream == "studies":
            assert rewritten < max(10, total // 2), (table, rewritten, total)


def test_daily_job_rebuilds_marts_and_keeps_the_history_of_changed_studies(pipeline):
    pipeline.incremental()
    pipeline.assert_marts_equal_to_truth()
    now = {r["data"]["id"]: r["data"] for r in pipeline.sb.truth("studies")}
    changed = {sid for sid, data in now.items() if pipeline.studies_before.get(sid) != data}
    assert changed, "mutate() changed no study"
    versions = pipeline.study_versions()
    # A study updated in the tenant between the runs: 2 versions, 1 current; the others: 1.
    assert {sid: versions.get(sid) for sid in changed} == {sid: (2, 1) for sid in changed}
    assert {v for sid, v in versions.items() if sid not in changed} == {(1, 1)}
    with pipeline.pg.connect() as conn:
        closed = conn.execute(
            f"select count(*) from {pipeline.dbt_schema}.dim_studies_history "
            "where not is_current and valid_to > valid_from"
        ).fetchone()[0]
    assert closed == len(changed)


def test_state_get_shows_a_bookmark_per_incremental_stream(pipeline):
    state = pipeline.state_get()
    bookmarks = state["singer_state"]["bookmarks"]
    assert bookmarks["studies"]["replication_key"]
    assert bookmarks["studies"]["replication_key_value"]
    if pipeline.sb.tenant.profile == "plan":
        for stream in INCREMENTAL_TOP:
            assert bookmarks[stream].get("replication_key_value"), (stream, bookmarks[stream])


def test_state_clear_then_run_reloads_fully_without_duplicate_keys(pipeline):
    first, reload = pipeline.first(), pipeline.reload_after_clear()
    pipeline.assert_equal_to_truth()
    pipeline.assert_no_duplicate_keys()
    assert reload["stats"]["bytes"] >= 0.9 * first["stats"]["bytes"]
    for stream in INCREMENTAL_TOP:
        table = f"dim_{stream}_staging"
        assert reload["written"][table] == reload["counts"][table], table  # every row rewritten


def test_weekly_full_job_reloads_everything_and_keeps_daily_bookmarks(pipeline):
    before = pipeline.state_get()
    versions_before = pipeline.study_versions()
    run = pipeline.weekly_full()
    pipeline.assert_equal_to_truth()
    pipeline.assert_no_duplicate_keys()
    assert run["written"]["dim_patients_staging"] == run["counts"]["dim_patients_staging"]
    assert pipeline.state_get() == before
    # Its dbt build: marts equal to the truth; reloading unchanged records adds no version.
    pipeline.assert_marts_equal_to_truth()
    assert pipeline.study_versions() == versions_before
