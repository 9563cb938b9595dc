"""Fixtures of the Dagster tests: fake tenants, a warehouse schema, a tenants file, Meltano's state.

Every test module gets its own staging schema (``orch_<hex>``, marts in ``<schema>_analytics``),
its own Meltano system database (state) and its own dbt target folder, so it never touches the
demo's warehouse or state. Tenants load few streams at scale 0.001 to keep the runs short.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("dagster", reason="the orchestration extra is not installed (make test does)")

from orchestration import dev  # noqa: E402
from orchestration.tenants import Settings, load  # noqa: E402

#: Streams the tests load: the marts dim_sites, dim_studies and dim_staff (+ their snapshots).
STREAMS = ["sites.*", "studies.*", "staff.*"]


def pytest_collection_modifyitems(items):
    here = Path(__file__).parent
    for item in items:
        if item.path.is_relative_to(here) and item.path.name != "test_tenants.py":
            item.add_marker(pytest.mark.e2e)


@pytest.fixture(scope="module")
def orch_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("orchestration")


@pytest.fixture(scope="module")
def schema(warehouse_server) -> Iterator[str]:
    name = f"orch_{secrets.token_hex(4)}"
    yield name
    with warehouse_server.connect() as conn:
        for s in (
            name,
            f"{name}_analytics",
            f"{name}_analytics_staging",
            f"{name}_analytics_snapshots",
        ):
            conn.execute(f'DROP SCHEMA IF EXISTS "{s}" CASCADE')


@pytest.fixture(scope="session")
def dbt_target(tmp_path_factory) -> Path:
    """dbt's manifest and artifacts: parsed once per session."""
    return tmp_path_factory.mktemp("dbt-target")


@pytest.fixture(scope="module")
def tenant_env(monkeypatch_module, warehouse_server, orch_dir, dbt_target) -> dict[str, str]:
    """Process environment of the runs: warehouse, Meltano state database, dbt target folder."""
    env = {
        "TARGET_POSTGRES_SQLALCHEMY_URL": warehouse_server.url,
        "MELTANO_DATABASE_URI": f"sqlite:///{orch_dir / 'meltano.db'}",
        "CC_DBT_TARGET_PATH": str(dbt_target),
    }
    for k, v in env.items():
        monkeypatch_module.setenv(k, v)
    return env


@pytest.fixture(scope="module")
def monkeypatch_module() -> Iterator[pytest.MonkeyPatch]:
    with pytest.MonkeyPatch.context() as mp:
        yield mp


def _tenant_entry(instance_id: str, sandbox, key_env: str, **extra) -> dict:
    """A tenant of the tests: a fake tenant, few streams, no schedule."""
    return {
        "instance_id": instance_id,
        "api_url": sandbox.base_url,
        "api_key_env": key_env,
        "timezone": "America/New_York",
        "select": STREAMS,
        "schedule": {"daily": None, "weekly_full": None},
        **extra,
    }


@pytest.fixture(scope="session")
def tenant_entry():
    return _tenant_entry


@pytest.fixture(scope="module")
def settings_for(orch_dir, schema):
    """Writes the module's tenants file (its schemas, Meltano's dev environment) and loads it."""

    def write(tenants: list[dict], **sections) -> Settings:
        return _settings(orch_dir, schema, tenants, **sections)

    return write


def _settings(orch_dir: Path, schema: str, tenants: list[dict], **sections) -> Settings:
    path = dev.write_tenants(
        orch_dir / "tenants.yml",
        tenants,
        warehouse={"staging_schema": schema, "dbt_schema": f"{schema}_analytics"},
        meltano={"environment": "dev"},
        **sections,
    )
    os.environ["CC_TENANTS_FILE"] = str(path)
    return load(path)
