"""``make orchestrate``: the Dagster UI over two fake tenants and the embedded PostgreSQL.

Starts two fake tenants (cc_sandbox, scale 0.001), the embedded PostgreSQL of ``make demo``
(``.pgdata``), writes their tenants file and a Dagster home under ``.dagster/`` (SQLite storage,
the instance settings of ``orchestration/dagster.yaml``), and runs ``dagster dev`` on this code
location until Ctrl-C. The API keys exist only in this process's environment.

The helpers that start and query ``dagster dev`` are shared with the tests.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
HOME = ROOT / ".dagster"
INSTANCE_YAML = Path(__file__).with_name("dagster.yaml")
#: The two fake tenants: instance id, seed, time zone.
DEV_TENANTS = (("site-a", 7, "America/New_York"), ("site-b", 8, "America/Chicago"))


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def write_home(home: Path) -> Path:
    """A Dagster home with this project's instance settings; returns its path."""
    home.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(INSTANCE_YAML, home / "dagster.yaml")
    return home


def write_tenants(path: Path, tenants: list[dict[str, Any]], **sections: Any) -> Path:
    """A tenants file (see ``tenants.example.yml``)."""
    path.write_text(yaml.safe_dump({**sections, "tenants": tenants}, sort_keys=False))
    return path


def start_dagster_dev(
    home: Path, env: Mapping[str, str], port: int, log: Path
) -> subprocess.Popen[bytes]:
    """``dagster dev`` on this code location, in its own process group (see :func:`stop`)."""
    dagster = Path(sys.executable).with_name("dagster")
    with open(log, "ab") as out:
        return subprocess.Popen(
            [
                str(dagster),
                "dev",
                "-m",
                "orchestration.definitions",
                "-h",
                "127.0.0.1",
                "-p",
                str(port),
            ],
            cwd=ROOT,
            env={**env, "DAGSTER_HOME": str(home)},
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def stop(proc: subprocess.Popen[bytes], timeout: float = 30) -> None:
    """Stop ``dagster dev`` and its webserver, daemon and code server (its process group)."""
    if proc.poll() is not None:
        return
    os.killpg(proc.pid, signal.SIGINT)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def graphql(url: str, query: str, variables: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """One GraphQL request to the webserver; the ``data`` of the answer."""
    body = json.dumps({"query": query, "variables": dict(variables or {})}).encode()
    request = urllib.request.Request(
        f"{url}/graphql", data=body, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        answer = json.load(response)
    if answer.get("errors"):
        raise RuntimeError(f"GraphQL errors: {answer['errors']}")
    return answer["data"]


LAUNCH_MUTATION = """
mutation Launch($params: ExecutionParams!) {
  launchRun(executionParams: $params) {
    __typename
    ... on LaunchRunSuccess { run { runId } }
    ... on PythonError { message }
    ... on RunConfigValidationInvalid { errors { message } }
    ... on InvalidSubsetError { message }
  }
}
"""
LOCATIONS_QUERY = """{ workspaceOrError { ... on Workspace { locationEntries { name } } } }"""


def launch(
    url: str, tenant: str, job: str = "daily", asset_keys: list[list[str]] | None = None
) -> str:
    """Launch ``job`` for one tenant (partition) through the webserver; the run id."""
    location = graphql(url, LOCATIONS_QUERY)["workspaceOrError"]["locationEntries"][0]["name"]
    selector: dict[str, Any] = {
        "repositoryLocationName": location,
        "repositoryName": "__repository__",
        "jobName": job,
    }
    if asset_keys:
        selector["assetSelection"] = [{"path": k} for k in asset_keys]
    params = {
        "selector": selector,
        "executionMetadata": {"tags": [{"key": "dagster/partition", "value": tenant}]},
        "runConfigData": {},
    }
    answer = graphql(url, LAUNCH_MUTATION, {"params": params})["launchRun"]
    if answer["__typename"] != "LaunchRunSuccess":
        raise RuntimeError(f"launching {job} for {tenant} failed: {answer}")
    return answer["run"]["runId"]


LOCATION_QUERY = """
{ workspaceOrError { __typename ... on Workspace { locationEntries {
    name loadStatus locationOrLoadError { __typename ... on PythonError { message } } } } } }
"""


def wait_ready(url: str, proc: subprocess.Popen[bytes], timeout: float = 180) -> None:
    """Until the webserver answers and the code location is loaded (raises on a load error)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"dagster dev exited with {proc.returncode}")
        try:
            entries = graphql(url, LOCATION_QUERY)["workspaceOrError"]["locationEntries"]
        except (urllib.error.URLError, OSError, RuntimeError, KeyError):
            time.sleep(1)
            continue
        if entries and all(e["loadStatus"] == "LOADED" for e in entries):
            errors = [e["locationOrLoadError"] for e in entries]
            failed = [e for e in errors if e and e["__typename"] == "PythonError"]
            if failed:
                raise RuntimeError(f"the code location did not load: {failed[0]['message']}")
            return
        time.sleep(1)
    raise TimeoutError(f"dagster dev at {url} not ready after {timeout:.0f} s")


@contextlib.contextmanager
def stack(
    home: Path,
    *,
    port: int,
    scale: float = 0.001,
    schema: str = "public",
    dbt_schema: str = "analytics",
) -> Iterator[tuple[str, list[dict[str, Any]], str, subprocess.Popen[bytes]]]:
    """The two fake tenants, the embedded PostgreSQL and ``dagster dev`` on ``port``.

    Yields the UI's URL, the tenants, where the warehouse is and the ``dagster dev`` process;
    stops everything at the end.
    """
    from cc_dev.pg import postgres
    from cc_sandbox import Sandbox

    write_home(home)
    env = dict(os.environ)
    tenants = []
    with contextlib.ExitStack() as stop_all:
        for instance_id, seed, tz in DEV_TENANTS:
            key = secrets.token_hex(8)
            var = f"CC_KEY_{instance_id.upper().replace('-', '_')}"
            env[var] = key
            sb = Sandbox(scale=scale, profile="plan", api_key=key, seed=seed, tenant_timezone=tz)
            stop_all.enter_context(sb)
            tenants.append(
                {
                    "instance_id": instance_id,
                    "api_url": sb.base_url,
                    "api_key_env": var,
                    "timezone": tz,
                }
            )
        pg = stop_all.enter_context(postgres())
        tenants_file = write_tenants(
            home / "tenants.yml",
            tenants,
            warehouse={"staging_schema": schema, "dbt_schema": dbt_schema},
            meltano={"environment": "dev"},
            retries={"max_retries": 2, "delay_seconds": 10},
        )
        env.update(
            CC_TENANTS_FILE=str(tenants_file),
            TARGET_POSTGRES_SQLALCHEMY_URL=pg.url,
            # Meltano's state of these runs stays apart from `make demo`'s.
            MELTANO_DATABASE_URI=f"sqlite:///{home / 'meltano.db'}",
        )
        url = f"http://127.0.0.1:{port}"
        proc = start_dagster_dev(home, env, port, home / "dagster-dev.log")
        try:
            wait_ready(url, proc)
            where = f"{pg.describe()}, staging schema {schema}, marts {dbt_schema}"
            yield url, tenants, where, proc
        finally:
            stop(proc)


def main(argv: list[str] | None = None) -> int:
    """Run the UI on the dev defaults until interrupted."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--port", type=int, default=int(os.environ.get("DAGSTER_PORT", 3000)))
    parser.add_argument("--scale", type=float, default=0.001)
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    started = time.monotonic()
    try:
        with stack(HOME, port=args.port, scale=args.scale) as (url, tenants, warehouse, proc):
            listed = ", ".join(f"{t['instance_id']} {t['api_url']}" for t in tenants)
            print(f"fake tenants: {listed}")
            print(f"warehouse:    {warehouse}")
            print(
                f"Dagster UI:   {url}   (ready in {time.monotonic() - started:.0f} s; "
                f"log {HOME / 'dagster-dev.log'}; Ctrl-C stops)"
            )
            print(
                "Materialise a tenant: Jobs > daily > Materialize all, partition site-a or site-b.",
                flush=True,
            )
            return proc.wait()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
