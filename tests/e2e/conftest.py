"""End-to-end fixtures: the fake tenant, a warehouse schema, and meltano runs against both.

One pipeline per test module: ``meltano run`` into PostgreSQL, then mutations and more runs.
Steps are memoised, so a single test can be run alone (``pytest tests/e2e/test_pipeline.py -k
state_clear``) and runs the steps it depends on first. Isolation from the demo and from a
developer's own state: a system database (``MELTANO_DATABASE_URI``) and a warehouse schema per
session. Meltano's run directories (``.meltano/run``) are shared: do not run the e2e tests and
``make demo`` at the same time.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

import pytest

from cc_dev.meltano_runner import Meltano


def pytest_collection_modifyitems(items):
    here = Path(__file__).parent
    for item in items:
        if item.path.is_relative_to(here) and item.path.name != "test_meltano_project.py":
            item.add_marker(pytest.mark.e2e)


@pytest.fixture(scope="session")
def e2e_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("e2e")


@pytest.fixture(scope="module")
def api_key() -> str:
    return secrets.token_hex(8)


@pytest.fixture(scope="module")
def sandbox(api_key):
    """The fake tenant. Profile ``plan`` (modifiedDate on every entity, as the job plan assumes)
    by default, so that incremental runs are visible; CC_E2E_PROFILE=spec for CC 8.5's spec."""
    from cc_sandbox import Sandbox

    profile = os.environ.get("CC_E2E_PROFILE", "plan")
    with Sandbox(scale=0.001, profile=profile, api_key=api_key, seed=7) as sb:
        yield sb


@pytest.fixture(scope="module")
def e2e_schema(warehouse_server):
    """Schema of the staging tables; dbt builds in ``<schema>_analytics`` (+ ``_staging``,
    ``_snapshots``). All are dropped at the end unless CC_E2E_KEEP_SCHEMA is set."""
    schema = f"e2e_{secrets.token_hex(4)}"
    yield schema
    if not os.environ.get("CC_E2E_KEEP_SCHEMA"):
        dbt = dbt_schema_of(schema)
        with warehouse_server.connect() as conn:
            for name in (schema, dbt, f"{dbt}_staging", f"{dbt}_snapshots"):
                conn.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')


def dbt_schema_of(e2e_schema: str) -> str:
    """Where dbt puts the marts of a test module (DBT_POSTGRES_SCHEMA)."""
    return f"{e2e_schema}_analytics"


@pytest.fixture(scope="module")
def dbt_schema(e2e_schema) -> str:
    return dbt_schema_of(e2e_schema)


def e2e_runner(
    api_url: str,
    api_key: str,
    warehouse_server,
    e2e_schema: str,
    e2e_dir: Path,
    logs_name: str,
    **extra_env: str,
) -> Meltano:
    """A Meltano project run against ``api_url`` into the module's schema.

    dbt (the jobs' dbt-postgres:build) puts its marts in a schema of the module, and its target
    and log folders outside transform/, so a demo or a dbt run by hand is not disturbed.
    """
    logs = e2e_dir / f"logs-{logs_name}"
    logs.mkdir(exist_ok=True)
    dbt_work = e2e_dir / f"dbt-{e2e_schema}"
    return Meltano(
        api_url=api_url,
        api_key=api_key,
        database_url=warehouse_server.url,
        schema=e2e_schema,
        system_db=e2e_dir / f"meltano-{e2e_schema}.db",
        log_dir=logs,
        extra_env={
            "DBT_POSTGRES_SCHEMA": dbt_schema_of(e2e_schema),
            "DBT_TARGET_PATH": str(dbt_work / "target"),
            "DBT_LOG_PATH": str(dbt_work / "logs"),
            **extra_env,
        },
    )


@pytest.fixture(scope="module")
def make_runner():
    """``e2e_runner`` for modules that run several projects (e.g. one per tenant)."""
    return e2e_runner


@pytest.fixture(scope="module")
def meltano(sandbox, api_key, warehouse_server, e2e_schema, e2e_dir, request) -> Meltano:
    runner = e2e_runner(
        sandbox.base_url,
        api_key,
        warehouse_server,
        e2e_schema,
        e2e_dir,
        request.module.__name__.rsplit(".", 1)[-1],
    )
    installed = runner.install()
    assert installed.returncode == 0, installed.tail()
    return runner
