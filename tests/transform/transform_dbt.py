"""Run the dbt project in ``transform/`` against a given PostgreSQL, without Meltano.

Used by ``test_dbt_models.py``; also handy by hand::

    python tests/transform/transform_dbt.py build --socket-dir /path/to/pgdata

dbt is looked up in this order: ``$DBT_BIN``; the Meltano utility's venv
(``.meltano/utilities/dbt-postgres/venv/bin/dbt``); ``dbt`` on PATH; otherwise it is installed
once with uv into ``$TMPDIR/cc-transform-dbt`` (same pins as ``transform.meltano.yml``).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PROJECT_DIR = ROOT / "transform"
PROFILES_DIR = PROJECT_DIR / "profiles" / "postgres"
DBT_REQUIREMENTS = ("meltano-dbt-ext~=0.3", "dbt-core~=1.11.0", "dbt-postgres~=1.9")


def find_dbt() -> str:
    """Path of a dbt executable with the postgres adapter (installs one if none is found)."""
    candidates = [
        os.environ.get("DBT_BIN"),
        str(ROOT / ".meltano" / "utilities" / "dbt-postgres" / "venv" / "bin" / "dbt"),
        shutil.which("dbt"),
    ]
    for c in candidates:
        if c and Path(c).exists():
            return c
    venv = Path(tempfile.gettempdir()) / "cc-transform-dbt"
    dbt = venv / "bin" / "dbt"
    if not dbt.exists():
        uv = shutil.which("uv") or str(Path(sys.executable).parent / "uv")
        subprocess.run([uv, "venv", "-q", "--python", sys.executable, str(venv)], check=True)
        subprocess.run(
            [
                uv,
                "pip",
                "install",
                "-q",
                "--python",
                str(venv / "bin" / "python"),
                *DBT_REQUIREMENTS,
            ],
            check=True,
        )
    return str(dbt)


def dbt_env(
    socket_dir: str | None = None, work_dir: str | None = None, **extra: str
) -> dict[str, str]:
    """Environment for dbt: connection, project, and target/log paths outside the repo."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DBT_", "CC_"))}
    env.update(
        DBT_PROJECT_DIR=str(PROJECT_DIR),
        DBT_PROFILES_DIR=str(PROFILES_DIR),
        DBT_SEND_ANONYMOUS_USAGE_STATS="false",
    )
    if socket_dir:
        env.update(
            DBT_POSTGRES_HOST=socket_dir,
            DBT_POSTGRES_USER="postgres",
            DBT_POSTGRES_DBNAME="postgres",
        )
    if work_dir:
        env.update(
            DBT_TARGET_PATH=str(Path(work_dir) / "target"),
            DBT_LOG_PATH=str(Path(work_dir) / "logs"),
        )
    env.update(extra)
    return env


def run_dbt(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Run ``dbt <args>`` in the project; raise with dbt's output if it fails."""
    proc = subprocess.run(
        [find_dbt(), *args], cwd=PROJECT_DIR, env=env, capture_output=True, text=True, check=False
    )
    if proc.returncode != 0:
        raise RuntimeError(
            f"dbt {' '.join(args)} failed ({proc.returncode}):\n"
            f"{proc.stdout[-8000:]}\n{proc.stderr[-4000:]}"
        )
    return proc


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("args", nargs="+", help="dbt arguments, e.g. build")
    parser.add_argument(
        "--socket-dir", help="unix socket directory of the server (else: profile defaults)"
    )
    ns = parser.parse_args()
    print(run_dbt(*ns.args, env=dbt_env(ns.socket_dir)).stdout)
