"""Run ``meltano`` against the fake tenant and a warehouse: shared by the demo and the e2e tests.

The project's ``dev`` environment is used with the addresses of the running sandbox and PostgreSQL
passed the way a user passes them (``TAP_CLINICAL_CONDUCTOR_*``, ``TARGET_POSTGRES_*``,
``DBT_POSTGRES_*``), so the same meltano.yml serves the demo, the tests and production.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from cc_dev import project_root
from cc_dev.pg import Postgres

#: Meltano's state ID of the daily pipeline in the dev environment.
DAILY_STATE_ID = "dev:tap-clinical-conductor-to-target-postgres"


def bin_dir() -> Path:
    """The virtualenv's bin folder (meltano, uv)."""
    return Path(sys.executable).parent


def plugins_installed(root: Path | None = None) -> bool:
    """Whether ``meltano install`` has put the tap, the target and dbt in place."""
    root = root or project_root()
    return all(
        (root / ".meltano" / kind / name / "venv" / "bin" / executable).exists()
        for kind, name, executable in (
            ("extractors", "tap-clinical-conductor", "tap-clinical-conductor"),
            ("loaders", "target-postgres", "target-postgres"),
            ("utilities", "dbt-postgres", "dbt_invoker"),
        )
    )


#: Lines of a failed run that name its cause, and the fix to print with each (``None``: the line
#: carries its own, as the tap's fatal line does). Meltano ends a run whose loader died on its own
#: ``BrokenPipeError``, far below the cause: the demo prints the cause last.
CAUSES: tuple[tuple[re.Pattern[str], str | None], ...] = (
    (
        re.compile(r"target-postgres (?:\w+\.)*OperationalError: (?P<cause>.+)"),
        "The warehouse (PostgreSQL) is down or unreachable: start it (`make pg-start` for the "
        "embedded one) or check TARGET_POSTGRES_SQLALCHEMY_URL / TARGET_POSTGRES_HOST, then run "
        "again (the bookmarks only moved as far as the rows loaded).",
    ),
    (re.compile(r"\[error\s*\] tap-clinical-conductor (?P<cause>\S.+)"), None),
    (re.compile(r"\[error\s*\] dbt-postgres (?P<cause>\S.+)"), "See the dbt lines above."),
)


def failure_cause(output: str) -> str | None:
    """The last line of a failed run's output that names why it failed, with its fix."""
    lines = output.splitlines()[::-1]
    for pattern, fix in CAUSES:
        for line in lines:
            found = pattern.search(line)
            if found:
                cause = found["cause"].strip()
                return f"{cause} {fix}" if fix else cause
    return None


@dataclass
class MeltanoResult:
    """One meltano command."""

    args: list[str]
    returncode: int
    output: str
    seconds: float

    def tail(self, lines: int = 60) -> str:
        """The end of the output, for an assertion message."""
        return "\n".join(self.output.splitlines()[-lines:])

    def cause(self) -> str | None:
        """Why the run failed, and the fix (``failure_cause``)."""
        return failure_cause(self.output)


class Meltano:
    """Runs meltano commands in the project with a fixed environment."""

    def __init__(
        self,
        *,
        api_url: str,
        api_key: str,
        database_url: str,
        schema: str | None = None,
        system_db: Path | None = None,
        extra_env: dict[str, str] | None = None,
        log_dir: Path | None = None,
    ) -> None:
        self.root = project_root()
        # The caller's own tap and dbt settings (a DBT_POSTGRES_HOST, a CC_TENANT_TIMEZONE) would
        # send the run elsewhere: only the dev environment and the values below apply.
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("TAP_CLINICAL_CONDUCTOR_", "DBT_", "CC_"))
        }
        env.update(
            PATH=f"{bin_dir()}{os.pathsep}{env.get('PATH', '')}",
            MELTANO_ENVIRONMENT="dev",
            UV_COMPILE_BYTECODE="1",
            MELTANO_CLI_DISABLE_VERSION_CHECK="true",
            TAP_CLINICAL_CONDUCTOR_API_URL=api_url,
            TAP_CLINICAL_CONDUCTOR_API_KEY=api_key,
            TARGET_POSTGRES_SQLALCHEMY_URL=database_url,
        )
        # dbt (the jobs' dbt-postgres:build) builds in the server the loader loads into.
        env.update(Postgres(database_url, embedded=False).dbt_env())
        if schema:
            env["TARGET_POSTGRES_DEFAULT_TARGET_SCHEMA"] = schema
        if system_db:
            env["MELTANO_DATABASE_URI"] = f"sqlite:///{system_db}"
        env.update(extra_env or {})
        self.env = env
        self.log_dir = log_dir
        self._count = 0

    def __call__(
        self, *args: str, timeout: float = 1800, env: dict[str, str] | None = None
    ) -> MeltanoResult:
        """Run ``meltano ARGS`` in the project; output goes to the result (and a log file).

        ``env``: variables for this run only (e.g. a setting of one run).
        """
        cmd = [str(bin_dir() / "meltano"), *args]
        start = time.perf_counter()
        proc = subprocess.run(
            cmd,
            cwd=self.root,
            env={**self.env, **(env or {})},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=timeout,
            check=False,
        )
        result = MeltanoResult(
            list(args), proc.returncode, proc.stdout, time.perf_counter() - start
        )
        if self.log_dir:
            self._count += 1
            name = f"{self._count:02d}-{'-'.join(a.strip('-') for a in args)[:60]}.log"
            (self.log_dir / name).write_text(proc.stdout)
        return result

    def install(self) -> MeltanoResult:
        """``meltano install`` (only when the plugins are missing)."""
        if plugins_installed(self.root):
            return MeltanoResult(["install"], 0, "already installed", 0.0)
        return self("install")
