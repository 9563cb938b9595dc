"""The asset checks against real tables: staleness in a test `sync_freshness`, row-count drops.

The relation follows the contract of issue 14's mart (``instance_id``, ``stream``,
``staleness_bound_hours``, ``run_started_at``); the check reads the newest row of each tenant and
stream and fails when one is above its tenant's ``max_staleness_hours``.
"""

from __future__ import annotations

import pytest

LIMIT_A, LIMIT_B = 24, 72


@pytest.fixture(scope="module")
def defs(tenant_env, settings_for, monkeypatch_module):
    from orchestration.definitions import build_definitions

    monkeypatch_module.setenv("CC_TEST_KEY", "unused")
    tenants = [
        {
            "instance_id": iid,
            "api_url": "https://unused.example/CCSWeb",
            "api_key_env": "CC_TEST_KEY",
            "max_staleness_hours": limit,
        }
        for iid, limit in (("site-a", LIMIT_A), ("site-b", LIMIT_B))
    ]
    return build_definitions(settings_for(tenants))


def evaluate(defs) -> dict[str, object]:
    """Run the freshness job; the staleness_bound evaluation of each staging table."""
    from dagster import DagsterInstance

    result = defs.resolve_job_def("freshness_checks").execute_in_process(
        instance=DagsterInstance.ephemeral()
    )
    assert result.success
    return {e.asset_key.path[-1]: e for e in result.get_asset_check_evaluations()}


def test_passes_and_says_so_before_the_mart_exists(defs):
    evaluations = evaluate(defs)
    studies = evaluations["dim_studies_staging"]
    assert studies.passed
    assert studies.metadata["sync_freshness"].value == "not built yet"
    assert all(e.passed for e in evaluations.values())


def test_fails_when_a_tenant_crosses_its_threshold(defs, warehouse_server, schema):
    mart = f'"{schema}_analytics"."sync_freshness"'
    with warehouse_server.connect() as conn:
        conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}_analytics"')
        conn.execute(
            f"CREATE TABLE {mart} (instance_id text, stream text, "
            "staleness_bound_hours numeric, run_started_at timestamptz)"
        )
        # Yesterday site-a's studies were 30 h stale (over 24); today's run brought them to 20 h.
        # site-b's 60 h is within its own 72 h.
        conn.execute(
            f"INSERT INTO {mart} VALUES "
            "('site-a', 'studies', 30, now() - interval '1 day'), "
            "('site-a', 'studies', 20, now()), "
            "('site-b', 'studies', 60, now()), "
            "('site-a', 'study_notes', 23.9, now())"
        )
    evaluations = evaluate(defs)
    assert evaluations["dim_studies_staging"].passed, evaluations["dim_studies_staging"]
    assert evaluations["fact_study_documents_staging"].passed  # study_notes' table

    with warehouse_server.connect() as conn:
        # The next run of site-a leaves studies at 24.5 h: over its 24 h limit.
        conn.execute(
            f"INSERT INTO {mart} VALUES ('site-a', 'studies', 24.5, now() + interval '1 hour')"
        )
    evaluations = evaluate(defs)
    studies = evaluations["dim_studies_staging"]
    assert not studies.passed
    assert "site-a: 24.5 h > 24 h" in studies.description
    assert "site-b" not in studies.description
    assert studies.metadata["site-b"].value == 60
    # Other streams are unaffected.
    assert evaluations["fact_study_documents_staging"].passed


def test_row_count_drop_of_any_tenant_fails(warehouse_server, schema):
    """The row-count check compares every tenant: one tenant's load that marks another tenant's
    rows deleted (a table-wide ACTIVATE_VERSION) fails it."""
    from orchestration.checks import RowCountVerdict, rows_by_tenant

    table = f'"{schema}"."dim_things_staging"'
    with warehouse_server.connect() as conn:
        conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
        assert rows_by_tenant(conn, schema, "dim_things_staging") is None
        conn.execute(
            f"CREATE TABLE {table} (instance_id text, id int, _sdc_deleted_at timestamptz)"
        )
        conn.execute(
            f"INSERT INTO {table} "
            "SELECT 'site-a', g, NULL::timestamptz FROM generate_series(1, 10) g UNION ALL "
            "SELECT 'site-b', g, NULL::timestamptz FROM generate_series(1, 4) g"
        )
        before = rows_by_tenant(conn, schema, "dim_things_staging")
        # site-b's run: 2 new rows of its own, and 4 of site-a's marked deleted (40%).
        conn.execute(f"INSERT INTO {table} VALUES ('site-b', 5, NULL), ('site-b', 6, NULL)")
        conn.execute(
            f"UPDATE {table} SET _sdc_deleted_at = now() WHERE instance_id = 'site-a' AND id <= 4"
        )
        mild = rows_by_tenant(conn, schema, "dim_things_staging")
        # Then all of site-a's rows.
        conn.execute(f"UPDATE {table} SET _sdc_deleted_at = now() WHERE instance_id = 'site-a'")
        after = rows_by_tenant(conn, schema, "dim_things_staging")
    assert before == {"site-a": 10, "site-b": 4}
    ok = RowCountVerdict("site-b", before, mild, 0.5)
    assert ok.passed, ok.describe()
    assert ok.describe() == "site-b: 4 -> 6 rows (0% dropped)"
    bad = RowCountVerdict("site-b", before, after, 0.5)
    assert not bad.passed
    assert bad.failing == ["site-a"]
    assert bad.describe() == "site-a: 10 -> 0 rows (100% dropped) (limit 50%, run of site-b)"
    assert RowCountVerdict("site-c", {}, after, 0.5).describe() == "site-c: first load, 0 rows"
