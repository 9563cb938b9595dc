"""Run the tap as a real process and read what it wrote; compare with the sandbox's truth."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from tap_clinical_conductor import completeness, selection
from tap_clinical_conductor.catalogue import BY_NAME
from tap_clinical_conductor.records import BadRecord, record_key

TAP = [sys.executable, "-m", "tap_clinical_conductor"]


@dataclass
class TapRun:
    """What one run of the tap wrote."""

    returncode: int
    stdout: str
    stderr: str
    records: dict[str, list[dict]] = field(default_factory=dict)
    states: list[dict] = field(default_factory=list)
    activated: set[str] = field(default_factory=set)
    schemas: dict[str, dict] = field(default_factory=dict)
    #: The run's proven complete reads (``cc_complete_reads`` records).
    complete: list[dict] = field(default_factory=list)
    #: The run's coverage records (``cc_sync_coverage``), by stream.
    coverage: dict[str, dict] = field(default_factory=dict)

    @property
    def complete_streams(self) -> set[str]:
        """Streams with a proven complete read of the whole stream."""
        return {c["stream"] for c in self.complete if c["parent_id"] is None}

    def complete_parents(self, stream: str) -> set[int]:
        """Parents of ``stream`` with a proven complete read of their own."""
        return {c["parent_id"] for c in self.complete if c["stream"] == stream} - {None}

    @property
    def state(self) -> dict:
        return self.states[-1] if self.states else {}

    def keys(self, stream: str) -> list[tuple]:
        return [key_of(stream, r) for r in self.records.get(stream, [])]


def key_of(stream: str, record: dict) -> tuple:
    endpoint = BY_NAME[stream]
    if endpoint.parent_key:
        return (record[endpoint.parent_key], record["id"])
    return (record["id"],)


def catalog_selecting(config: dict, streams: set[str] | None, tmp: Path) -> Path:
    """Discover, then select exactly ``streams`` (or the defaults when ``None``)."""
    run = run_tap(config, discover=True)
    assert run.returncode == 0, run.stderr[-2000:]
    catalog = json.loads(run.stdout)
    if streams is not None:
        for entry in catalog["streams"]:
            for md in entry["metadata"]:
                if md["breadcrumb"] == []:
                    md["metadata"]["selected"] = entry["tap_stream_id"] in streams
    path = tmp / f"catalog-{len(list(tmp.iterdir()))}.json"
    path.write_text(json.dumps(catalog))
    return path


def run_tap(
    config: dict,
    *,
    state: dict | None = None,
    catalog: Path | None = None,
    discover: bool = False,
    timeout: float = 600,
    env: dict[str, str] | None = None,
) -> TapRun:
    """Run ``tap-clinical-conductor`` in a subprocess and parse its Singer output."""
    with tempfile.TemporaryDirectory() as tmp:
        config_path = Path(tmp, "config.json")
        config_path.write_text(json.dumps(config))
        args = [*TAP, "--config", str(config_path)]
        if discover:
            args.append("--discover")
        if state is not None:
            state_path = Path(tmp, "state.json")
            state_path.write_text(json.dumps(state))
            args += ["--state", str(state_path)]
        if catalog is not None:
            args += ["--catalog", str(catalog)]
        proc = subprocess.run(
            args,
            capture_output=True,
            text=True,
            timeout=timeout,
            env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
            check=False,
        )
    run = TapRun(proc.returncode, proc.stdout, proc.stderr)
    if discover:
        return run
    for line in proc.stdout.splitlines():
        message = json.loads(line)
        kind = message["type"]
        if kind == "RECORD" and message["stream"] == completeness.STREAM:
            run.complete.append(message["record"])
        elif kind == "RECORD" and message["stream"] == selection.COVERAGE_STREAM:
            run.coverage[message["record"]["stream"]] = message["record"]
        elif kind == "RECORD":
            run.records.setdefault(message["stream"], []).append(message["record"])
        elif kind == "STATE":
            run.states.append(message["value"])
        elif kind == "ACTIVATE_VERSION":
            run.activated.add(message["stream"])
        elif kind == "SCHEMA":
            run.schemas[message["stream"]] = message["schema"]
    return run


def truth_by_key(sandbox, stream: str) -> dict[tuple, dict]:
    """The sandbox's current rows of ``stream``, keyed the way the tap keys them."""
    endpoint = BY_NAME[stream]
    out = {}
    for row in sandbox.truth(stream):
        try:
            data = row["data"] if isinstance(row["data"], dict) else {"value": row["data"]}
            out[record_key(endpoint, row["parent"], row["data"])] = data
        except BadRecord:
            continue
    return out


class Warehouse:
    """Output of successive runs merged by key, as target-postgres and the dbt staging layer
    would (upsert; a proven complete read of a stream, or of one parent, retires the rows of its
    scope that it did not return)."""

    def __init__(self) -> None:
        self.tables: dict[str, dict[tuple, dict]] = {}

    def apply(self, run: TapRun) -> None:
        streams = set(run.records) | {c["stream"] for c in run.complete}
        for stream in streams:
            table = self.tables.setdefault(stream, {})
            fresh = {key_of(stream, r): r["data"] for r in run.records.get(stream, [])}
            lower = {
                c["parent_id"]: c["lower_bound"] for c in run.complete if c["stream"] == stream
            }
            assert all(v is None for v in lower.values()), "windowed reads: not modelled here"
            if stream in run.complete_streams:
                table.clear()
            else:
                parents = run.complete_parents(stream)
                for key in [k for k in table if k[0] in parents and len(k) == 2]:
                    del table[key]
            table.update(fresh)

    def diff(self, sandbox, stream: str) -> str:
        """Empty when the table equals the truth; else a short description."""
        truth = truth_by_key(sandbox, stream)
        table = self.tables.get(stream, {})
        missing = truth.keys() - table.keys()
        extra = table.keys() - truth.keys()
        changed = [k for k in truth.keys() & table.keys() if truth[k] != table[k]]
        if not (missing or extra or changed):
            return ""
        return (
            f"{stream}: {len(missing)} missing (e.g. {sorted(missing)[:3]}), "
            f"{len(extra)} extra (e.g. {sorted(extra)[:3]}), {len(changed)} changed "
            f"(e.g. {changed[:3]})"
        )
