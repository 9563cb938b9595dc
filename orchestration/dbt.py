"""The dbt project in ``transform/`` as Dagster assets (dagster-dbt).

The ``orchestration`` extra installs dbt-core and dbt-postgres beside Dagster with the pins of the
Meltano utility (``dbt-core~=1.11.0``), so ``meltano run daily`` by hand and Dagster build the
marts with the same engine, and dagster-dbt has the adapter in process. The executable is that
venv's ``dbt``, else Meltano's (``DBT_EXECUTABLE`` overrides both). The manifest that gives
Dagster the lineage is parsed into ``.dagster/dbt-target`` (``CC_DBT_TARGET_PATH``), outside
``transform/``, whenever a file of the project is newer than it.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from dagster import AssetKey
from dagster_dbt import DagsterDbtTranslator, DagsterDbtTranslatorSettings, DbtProject

from cc_dev.pg import Postgres
from orchestration.tenants import Settings

ROOT = Path(__file__).resolve().parents[1]
PROJECT_DIR = ROOT / "transform"
PROFILES_DIR = PROJECT_DIR / "profiles" / "postgres"
MELTANO_DBT = ROOT / ".meltano" / "utilities" / "dbt-postgres" / "venv" / "bin" / "dbt"

#: Asset key prefix of the staging tables the Meltano step writes (dbt's sources).
STAGING_PREFIX = "staging"


def dbt_executable() -> str:
    """``$DBT_EXECUTABLE``, else this venv's dbt, else Meltano's, else ``dbt`` on PATH."""
    here = Path(sys.executable).with_name("dbt")
    for candidate in (
        os.environ.get("DBT_EXECUTABLE"),
        str(here),
        str(MELTANO_DBT),
        shutil.which("dbt"),
    ):
        if candidate and Path(candidate).exists():
            return candidate
    raise FileNotFoundError(
        "no dbt executable: install the orchestration extra (make orchestration-deps) or set "
        "DBT_EXECUTABLE"
    )


def target_path() -> Path:
    """Where the manifest and each invocation's artifacts go."""
    return Path(os.environ.get("CC_DBT_TARGET_PATH") or ROOT / ".dagster" / "dbt-target")


def _newest_source(project_dir: Path) -> float:
    skip = {"target", "logs", "dbt_packages"}
    newest = 0.0
    for path in project_dir.rglob("*"):
        if path.is_file() and not skip.intersection(path.relative_to(project_dir).parts):
            newest = max(newest, path.stat().st_mtime)
    return newest


def prepare_manifest(project_dir: Path = PROJECT_DIR) -> Path:
    """``dbt parse`` into :func:`target_path` if the manifest is missing or older than the project.

    A lock file keeps concurrent loaders of the code location (webserver, daemon, run workers) from
    parsing at the same time.
    """
    target = target_path()
    target.mkdir(parents=True, exist_ok=True)
    manifest = target / "manifest.json"
    with open(target / ".parse.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if manifest.exists() and manifest.stat().st_mtime >= _newest_source(project_dir):
            return manifest
        env = {k: v for k, v in os.environ.items() if not k.startswith("DBT_")}
        env.update(
            DBT_PROFILES_DIR=str(PROFILES_DIR),
            DBT_TARGET_PATH=str(target),
            DBT_LOG_PATH=str(target / "logs"),
            DBT_SEND_ANONYMOUS_USAGE_STATS="false",
        )
        proc = subprocess.run(
            [dbt_executable(), "parse", "--quiet"],
            cwd=project_dir,
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        if proc.returncode or not manifest.exists():
            raise RuntimeError(f"dbt parse failed in {project_dir}:\n{proc.stdout}\n{proc.stderr}")
    return manifest


def project() -> DbtProject:
    """The dbt project with its parsed manifest."""
    prepare_manifest()
    return DbtProject(project_dir=PROJECT_DIR, profiles_dir=PROFILES_DIR, target_path=target_path())


class Translator(DagsterDbtTranslator):
    """Sources are the Meltano step's staging tables; groups follow the dbt folders."""

    def __init__(self) -> None:
        super().__init__(DagsterDbtTranslatorSettings(enable_asset_checks=True))

    def get_asset_key(self, dbt_resource_props: Mapping[str, Any]) -> AssetKey:
        if dbt_resource_props["resource_type"] == "source":
            return AssetKey([STAGING_PREFIX, dbt_resource_props["name"]])
        return AssetKey([dbt_resource_props["name"]])

    def get_group_name(self, dbt_resource_props: Mapping[str, Any]) -> str | None:
        if dbt_resource_props["resource_type"] == "snapshot":
            return "snapshots"
        path = dbt_resource_props.get("fqn", [])
        return {"staging": "dbt_staging", "marts": "marts"}.get(path[1] if len(path) > 2 else "")


def environment(settings: Settings) -> dict[str, str]:
    """What the profile and the models read: connection, schemas, each tenant's time zone."""
    return {
        # The profile reads plain connection settings; the loader's URL is split into them.
        **Postgres(settings.warehouse_url(), embedded=False).dbt_env(),
        "DBT_POSTGRES_SCHEMA": settings.dbt_schema,
        "CC_SOURCE_SCHEMA": settings.staging_schema,
        "CC_TENANT_TIMEZONES": json.dumps({t.instance_id: t.timezone for t in settings.tenants}),
    }


@contextlib.contextmanager
def environ(values: Mapping[str, str]) -> Iterator[None]:
    """Set variables for the dbt invocations of a step (dagster-dbt passes ``os.environ``)."""
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
