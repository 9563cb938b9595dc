"""How Dagster runs one tenant: the ``meltano run`` command line and its environment.

Dagster calls the Meltano project and does not replace it: a step here is exactly what a person
runs by hand (``meltano run --state-id-suffix=<instance_id> tap-clinical-conductor
target-postgres``), with the tenant's settings passed as the environment variables Meltano maps to
plugin settings. The suffix gives every tenant its own state id, so two tenants never share
bookmarks. This module builds the command and the environment and runs it; it has no Dagster
import (``definitions.py`` wraps it in an asset).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from orchestration.tenants import Settings, Tenant

ROOT = Path(__file__).resolve().parents[1]

#: The extractor of each Meltano job (meltano.yml ``jobs``); the loader is target-postgres.
EXTRACTORS = {
    "daily": "tap-clinical-conductor",
    "weekly_full": "tap-clinical-conductor--full-reload",
}
LOADER = "target-postgres"

# Variables that would send a run to another tenant or warehouse than the one configured here.
_SCRUBBED = ("TAP_CLINICAL_CONDUCTOR_", "TARGET_POSTGRES_", "MELTANO_RUN_")


def state_id(settings: Settings, tenant: Tenant, job: str) -> str:
    """Meltano's state id of a tenant's pipeline (``meltano state get`` takes it)."""
    return f"{settings.meltano_environment}:{EXTRACTORS[job]}-to-{LOADER}:{tenant.instance_id}"


def command(tenant: Tenant, job: str) -> list[str]:
    """``meltano run`` for one tenant and one job.

    The extract-load part of ``daily``/``weekly-full``: dbt runs as Dagster's dbt assets.
    """
    meltano = Path(sys.executable).with_name("meltano")
    return [
        str(meltano if meltano.exists() else "meltano"),
        "run",
        f"--state-id-suffix={tenant.instance_id}",
        EXTRACTORS[job],
        LOADER,
    ]


def environment(
    settings: Settings, tenant: Tenant, base: Mapping[str, str] | None = None
) -> dict[str, str]:
    """The environment of a tenant's ``meltano run``: the caller's, minus other tenants' settings.

    Raises:
        TenantsFileError: A variable the tenants file names (API key, warehouse URL) is not set.
    """
    base = os.environ if base is None else base
    env = {k: v for k, v in base.items() if not k.startswith(_SCRUBBED)}
    bin_dir = str(Path(sys.executable).parent)
    env.update(
        PATH=f"{bin_dir}{os.pathsep}{env.get('PATH', '')}",
        MELTANO_ENVIRONMENT=settings.meltano_environment,
        MELTANO_CLI_DISABLE_VERSION_CHECK="true",
        TAP_CLINICAL_CONDUCTOR_API_URL=tenant.api_url,
        TAP_CLINICAL_CONDUCTOR_API_KEY=tenant.api_key(),
        TAP_CLINICAL_CONDUCTOR_INSTANCE_ID=tenant.instance_id,
        TAP_CLINICAL_CONDUCTOR_TENANT_TIMEZONE=tenant.timezone,
        TARGET_POSTGRES_SQLALCHEMY_URL=settings.warehouse_url(),
        TARGET_POSTGRES_DEFAULT_TARGET_SCHEMA=settings.staging_schema,
        # target-postgres 0.8.1 applies ACTIVATE_VERSION to the whole table, whatever the
        # instance_id: one tenant's complete read would mark every other tenant's rows deleted
        # (issue 13). Tenants share the staging tables here, so the loader ignores it until
        # deletes are keyed on the tenant; deletions then arrive through that mechanism.
        TARGET_POSTGRES_ACTIVATE_VERSION="false",
    )
    for name, value in tenant.budgets.items():
        env[f"TAP_CLINICAL_CONDUCTOR_{name.upper()}"] = _setting_text(value)
    if tenant.select:
        env["TAP_CLINICAL_CONDUCTOR__SELECT"] = json.dumps(list(tenant.select))
    return env


def _setting_text(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


@dataclass
class RunResult:
    """A finished ``meltano run``."""

    returncode: int
    seconds: float
    tail: list[str]


def run(
    cmd: list[str],
    env: Mapping[str, str],
    *,
    on_line: Callable[[str], None] | None = None,
    tail_lines: int = 40,
    cwd: Path = ROOT,
) -> RunResult:
    """Run ``cmd`` in the Meltano project; every output line goes to ``on_line`` (default stdout).

    A secret never reaches the output through here: the key travels in the environment, and the tap
    and target never print it (README, "Errors, faults and bad data").
    """
    emit = on_line or (lambda line: print(line, flush=True))
    tail: deque[str] = deque(maxlen=tail_lines)
    start = time.monotonic()
    with subprocess.Popen(
        cmd,
        cwd=cwd,
        env=dict(env),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        bufsize=1,
    ) as proc:
        assert proc.stdout is not None
        try:
            for line in proc.stdout:
                line = line.rstrip("\n")
                tail.append(line)
                emit(line)
            returncode = proc.wait()
        except BaseException:
            # A terminated Dagster run interrupts the step: stop meltano too (it ends its plugins
            # and keeps the state of what was committed), rather than leave it running unowned.
            proc.terminate()
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
            raise
    return RunResult(returncode, time.monotonic() - start, list(tail))
