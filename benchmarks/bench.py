"""The performance benchmark of the tap (``make bench``): prints figures, asserts nothing.

    .venv/bin/python -m benchmarks.bench [--quick] [--only fanout,identity,memory,cpu]

Sections (each prints a table; the run ends with one ``BENCH {...}`` JSON line of every figure):

* ``fanout``: a per-study stream (``study_notes``) against the fake tenant with 200 ms + [0, 40) ms
  of latency and a 10 requests/s server limit, the tap at ``max_requests_per_second=10`` and
  ``max_parallel_requests`` = 1 (the SDK's way), the tap's default, and 8. ``floor`` =
  requests / 10 s, the least time the rate limit allows; ``wall/floor`` near 1 means the run is
  bound by the tenant's limit, not by latency. 429s are counted by the tenant.
* ``identity``: the records (as a set per stream) and the final STATE of parallel runs equal those
  of a sequential run of the same tenant (``plan`` profile, so streams carry bookmarks; several
  per-study and per-patient streams; latency jitter so that answers complete out of order). The
  fan-out runs are compared the same way.
* ``memory``: peak RSS of the tap on a per-study fan-out at N and 10 x N partitions (no latency).
* ``cpu``: no latency, no rate limit: records/s of the tap alone into /dev/null (a large top-level
  stream, and a fan-out stream), and through target-postgres into an embedded PostgreSQL.
* ``schema``: the large top-level stream into /dev/null with ``data`` described by its API model
  (the schemas from the OpenAPI document) and as one opaque object (the schema before them), runs
  interleaved, both profiles; and once flattened (the SDK's per-record path).

Timing: ``wall`` is elapsed time; ``cpu`` is user + system CPU seconds of that child process alone
(``os.wait4``), so it does not depend on what else the (shared) machine runs. Records/s "per CPU
second" is the one-core figure. Machine load averages are printed with each section.

The fake tenant runs in this process (a server thread); the tap (and target-postgres) run as
child processes, exactly as Meltano runs them.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from cc_sandbox import Sandbox

ROOT = Path(__file__).resolve().parents[1]
TAP = [sys.executable, "-m", "tap_clinical_conductor"]
#: The tap's entry point, plus its peak RSS written at exit. ``ru_maxrss`` of a child is no good
#: here: Linux folds the image the child was forked from (this process, holding a fake tenant of
#: up to GBs) into it at exec. ``VmHWM`` belongs to the tap's own address space.
TAP_MEASURED = [
    sys.executable,
    "-c",
    "import atexit, os, runpy, sys\n"
    "def _hwm():\n"
    "    with open('/proc/self/status') as f:\n"
    "        kb = next(line.split()[1] for line in f if line.startswith('VmHWM:'))\n"
    "    with open(os.environ['CC_BENCH_HWM'], 'w') as out:\n"
    "        out.write(kb)\n"
    "atexit.register(_hwm)\n"
    "sys.argv[0] = 'tap-clinical-conductor'\n"
    "runpy.run_module('tap_clinical_conductor', run_name='__main__', alter_sys=True)\n",
]
API_KEY = "bench-key"
SEED = 7
#: Studies at sandbox scale 1.0 (cc_sandbox/README.md, "Row counts").
STUDIES_AT_SCALE_1 = 157_270
FANOUT_STREAM = "study_notes"
IDENTITY_STREAMS = ("study_notes", "study_documents", "queries", "patient_allergies")
CPU_TOP_STREAM = "patient_visits"
CPU_FANOUT_STREAM = "study_documents"
CPU_REPEATS = 3
SECTIONS = ("fanout", "identity", "memory", "cpu", "schema")
#: ``data`` as the tap described it before the schemas from the OpenAPI document.
OPAQUE_DATA = {"type": "object", "description": "The API object as Clinical Conductor returned it."}
#: max_requests_per_second for "no rate limit" (the setting must be > 0). An integer: the tap
#: crashes on a JSON float there (Decimal * float in RateLimiter; reported to the lead).
NO_LIMIT = 1_000_000


@dataclass(frozen=True)
class Sizes:
    """Tenant sizes of a run (scales of the fake tenant)."""

    fanout_scale: float
    identity_scale: float
    memory_scales: tuple[float, float]
    cpu_scale: float
    extra_parallel: tuple[int, ...] = (8,)


FULL = Sizes(
    fanout_scale=0.013,  # 2,045 studies
    identity_scale=0.002,  # 315 studies, 306 patients
    memory_scales=(0.013, 0.13),  # 2,045 and 20,445 studies
    cpu_scale=0.13,  # 298k patient visits (the 0.13 tenant is already there for memory)
)
QUICK = Sizes(
    fanout_scale=0.0005,  # 79 studies
    identity_scale=0.0007,
    memory_scales=(0.00065, 0.0065),  # 102 and 1,022 studies
    cpu_scale=0.0065,  # ~15k patient visits
)


def studies_at(scale: float) -> int:
    """Studies the fake tenant generates at ``scale``."""
    return max(5, round(STUDIES_AT_SCALE_1 * scale))


# ------------------------------------------------------------------------------ child processes


@dataclass
class Usage:
    """Resources of one finished child process (its own, from ``wait4``)."""

    wall: float
    user: float
    sys: float
    returncode: int
    maxrss_mb: float = 0.0

    @property
    def cpu(self) -> float:
        """User + system CPU seconds."""
        return self.user + self.sys


def _wait(proc: subprocess.Popen, start: float, timeout: float) -> Usage:
    timer = threading.Timer(timeout, proc.kill)
    timer.start()
    try:
        _, status, ru = os.wait4(proc.pid, 0)
    finally:
        timer.cancel()
    proc.returncode = os.waitstatus_to_exitcode(status)
    return Usage(
        time.perf_counter() - start,
        ru.ru_utime,
        ru.ru_stime,
        proc.returncode,
    )


@dataclass
class TapRun:
    """One run of the tap (and maybe target-postgres)."""

    label: str
    tap: Usage
    out: Path | None
    err: Path
    requests: int = 0
    throttled: int = 0
    records: int = 0
    target: Usage | None = None
    wall: float = 0.0

    def progress(self) -> str:
        """The tap's last fan-out progress line, if any."""
        lines = [
            line
            for line in self.err.read_text(errors="replace").splitlines()
            if "partitions" in line
        ]
        return lines[-1].split(" | ")[-1].strip() if lines else ""

    def check(self) -> None:
        """Fail loudly (with the tap's last log lines) when a child failed."""
        for name, usage in (("tap", self.tap), ("target-postgres", self.target)):
            if usage is not None and usage.returncode != 0:
                tail = "\n".join(self.err.read_text(errors="replace").splitlines()[-30:])
                raise RuntimeError(f"{self.label}: {name} exited {usage.returncode}\n{tail}")


class Runner:
    """Runs the tap against one fake tenant, with a discovered catalog."""

    def __init__(self, work: Path) -> None:
        self.work = work
        self._catalog: dict | None = None
        self._n = 0

    def config(self, sandbox: Sandbox, **settings: object) -> dict:
        """Tap config for ``sandbox`` plus ``settings``."""
        return {
            "api_url": sandbox.base_url,
            "api_key": API_KEY,
            "tenant_timezone": "America/New_York",
            **settings,
        }

    def catalog(
        self, sandbox: Sandbox, streams: tuple[str, ...], *, opaque_data: bool = False
    ) -> Path:
        """A catalog selecting exactly ``streams`` (discovery runs once).

        ``opaque_data``: ``data`` declared as one object without properties; the tap takes a
        stream's schema from the catalog, so the same code runs with either.
        """
        if self._catalog is None:
            cfg = self.work / "discover.json"
            cfg.write_text(json.dumps(self.config(sandbox)))
            proc = subprocess.run(
                [*TAP, "--config", str(cfg), "--discover"],
                capture_output=True,
                check=True,
                text=True,
            )
            self._catalog = json.loads(proc.stdout)
        catalog = json.loads(json.dumps(self._catalog))
        for entry in catalog["streams"]:
            for md in entry["metadata"]:
                if md["breadcrumb"] == []:
                    md["metadata"]["selected"] = entry["tap_stream_id"] in streams
            if opaque_data:
                entry["schema"]["properties"]["data"] = dict(OPAQUE_DATA)
                entry["metadata"] = [m for m in entry["metadata"] if len(m["breadcrumb"]) <= 2]
        variant = "-opaque" if opaque_data else ""
        path = self.work / f"catalog-{'-'.join(streams)}{variant}.json"
        path.write_text(json.dumps(catalog))
        return path

    def run(
        self,
        label: str,
        sandbox: Sandbox,
        streams: tuple[str, ...],
        *,
        keep_output: bool = True,
        target: tuple[list[str], dict] | None = None,
        timeout: float = 7200,
        opaque_data: bool = False,
        **settings: object,
    ) -> TapRun:
        """Run the tap once; stdout to a file (or /dev/null, or into target-postgres)."""
        self._n += 1
        stem = self.work / f"{self._n:02d}-{re.sub(r'[^A-Za-z0-9_.=-]+', '_', label)}"
        cfg = stem.with_suffix(".config.json")
        cfg.write_text(json.dumps(self.config(sandbox, **settings)))
        catalog = self.catalog(sandbox, streams, opaque_data=opaque_data)
        args = [*TAP_MEASURED, "--config", str(cfg), "--catalog", str(catalog)]
        hwm = stem.with_suffix(".hwm")
        out = stem.with_suffix(".out") if keep_output and target is None else None
        err = stem.with_suffix(".err")
        sandbox.reset_stats()
        # An unbuffered stdout (-u) would cost a write per record: measure the normal case.
        env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
        env["CC_BENCH_HWM"] = str(hwm)
        with contextlib.ExitStack() as stack:
            errf = stack.enter_context(err.open("wb"))
            outf = stack.enter_context(out.open("wb")) if out else subprocess.DEVNULL
            start = time.perf_counter()
            if target is None:
                tap = subprocess.Popen(args, stdout=outf, stderr=errf, env=env)
                run = TapRun(label, _wait(tap, start, timeout), out, err)
            else:
                target_args, target_config = target
                tcfg = stem.with_suffix(".target.json")
                tcfg.write_text(json.dumps(target_config))
                tap = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=errf, env=env)
                tgt = subprocess.Popen(
                    [*target_args, "--config", str(tcfg)],
                    stdin=tap.stdout,
                    stdout=subprocess.DEVNULL,
                    stderr=errf,
                    env={k: v for k, v in env.items() if k != "CC_BENCH_HWM"},
                )
                assert tap.stdout is not None
                tap.stdout.close()
                run = TapRun(label, _wait(tap, start, timeout), None, err)
                run.target = _wait(tgt, start, timeout)
            run.wall = time.perf_counter() - start
        stats = sandbox.stats()
        run.requests = int(stats["requests"])
        run.throttled = int(stats["throttled_429"])
        run.check()
        run.tap.maxrss_mb = int(hwm.read_text()) / 1024
        if out is not None:
            run.records = count_records(out)
        return run


def count_records(path: Path) -> int:
    """RECORD messages in a Singer output file."""
    n = 0
    with path.open("rb") as f:
        for line in f:
            if line.startswith(b'{"type":"RECORD"'):
                n += 1
    return n


def read_singer(path: Path) -> tuple[dict[str, set[str]], dict]:
    """Records as a set of canonical JSON per stream, and the final STATE value."""
    records: dict[str, set[str]] = {}
    state: dict = {}
    with path.open("rb") as f:
        for line in f:
            message = json.loads(line)
            kind = message["type"]
            if kind == "RECORD":
                records.setdefault(message["stream"], set()).add(
                    json.dumps(message["record"], sort_keys=True)
                )
            elif kind == "STATE":
                state = message["value"]
    return records, state


def compare(reference: Path, other: Path) -> dict:
    """Whether ``other`` has the same records per stream and final state as ``reference``."""
    ref_records, ref_state = read_singer(reference)
    records, state = read_singer(other)
    differences = {
        stream: {
            "missing": len(ref_records.get(stream, set()) - records.get(stream, set())),
            "extra": len(records.get(stream, set()) - ref_records.get(stream, set())),
        }
        for stream in sorted(set(ref_records) | set(records))
        if ref_records.get(stream) != records.get(stream)
    }
    return {
        "records_identical": not differences,
        "state_identical": ref_state == state,
        "identical": not differences and ref_state == state,
        "records_per_stream": {s: len(v) for s, v in sorted(ref_records.items())},
        "differences": differences,
    }


# ------------------------------------------------------------------------------ fake tenants


class Tenants:
    """One fake tenant at a time (the large ones take GBs), regenerated when the size changes."""

    def __init__(self) -> None:
        self.sandbox: Sandbox | None = None
        self.key: tuple | None = None
        self.generation_seconds: dict[str, float] = {}

    def get(self, scale: float, profile: str = "spec", **settings: object) -> Sandbox:
        """The tenant at ``scale``/``profile``, configured with ``settings`` (rest default)."""
        key = (scale, profile)
        if self.key != key:
            self.close()
            start = time.perf_counter()
            self.sandbox = Sandbox(scale=scale, profile=profile, api_key=API_KEY, seed=SEED)
            self.sandbox.start()
            took = time.perf_counter() - start
            self.generation_seconds[f"{profile}@{scale}"] = round(took, 1)
            self.key = key
            print(f"  (fake tenant {profile} scale {scale}: generated in {took:.1f} s)", flush=True)
        assert self.sandbox is not None
        base = {"rate_limit": None, "latency_ms": 0.0, "jitter_ms": 0.0}
        self.sandbox.configure(**{**base, **settings})
        return self.sandbox

    def close(self) -> None:
        """Stop and drop the current tenant."""
        if self.sandbox is not None:
            self.sandbox.stop()
            self.sandbox = None
            self.key = None
            gc.collect()


# ------------------------------------------------------------------------------ output helpers


def load() -> list[float]:
    """The 1/5/15-minute load averages."""
    return [round(x, 2) for x in os.getloadavg()]


def table(headers: list[str], rows: list[list[object]]) -> None:
    """Print an aligned table."""
    cells = [headers] + [[_fmt(c) for c in row] for row in rows]
    widths = [max(len(str(r[i])) for r in cells) for i in range(len(headers))]
    for n, row in enumerate(cells):
        print("  " + "  ".join(str(c).rjust(w) for c, w in zip(row, widths, strict=True)))
        if n == 0:
            print("  " + "  ".join("-" * w for w in widths))


def _fmt(value: object) -> str:
    if isinstance(value, float):
        return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.2f}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return str(value)


def heading(title: str) -> None:
    """Print a section heading with the machine load."""
    print(f"\n== {title}  (load average {' '.join(map(str, load()))})", flush=True)


def default_parallel() -> int:
    """``max_parallel_requests``'s default, from the tap's settings schema."""
    from tap_clinical_conductor.settings import default

    return int(default("max_parallel_requests"))


# ------------------------------------------------------------------------------ sections


def bench_fanout(runner: Runner, tenants: Tenants, sizes: Sizes, results: dict) -> None:
    """Per-study fan-out at 200 ms latency and 10 requests/s: SDK-style sequential vs parallel."""
    rate = 10
    default = default_parallel()
    levels = [1, default, *[p for p in sizes.extra_parallel if p not in (1, default)]]
    heading(
        f"fan-out: {FANOUT_STREAM} over {studies_at(sizes.fanout_scale):,} studies, "
        f"latency 200 ms + [0, 40) ms, tenant limit {rate}/s, tap max_requests_per_second={rate}"
    )
    sandbox = tenants.get(sizes.fanout_scale, rate_limit=rate, latency_ms=200, jitter_ms=40)
    rows, figures, outputs = [], {}, {}
    for parallel in levels:
        run = runner.run(
            f"fanout-p{parallel}",
            sandbox,
            (FANOUT_STREAM,),
            max_requests_per_second=rate,
            max_parallel_requests=parallel,
        )
        floor = run.requests / rate
        note = (
            "SDK default (sequential)"
            if parallel == 1
            else ("tap default" if parallel == default else "")
        )
        fig = {
            "max_parallel_requests": parallel,
            "partitions": studies_at(sizes.fanout_scale),
            "wall_s": round(run.wall, 2),
            "tap_cpu_s": round(run.tap.cpu, 2),
            "requests": run.requests,
            "throttled_429": run.throttled,
            "records": run.records,
            "floor_s": round(floor, 2),
            "wall_over_floor": round(run.wall / floor, 3),
            "requests_per_s": round(run.requests / run.wall, 2),
            "tap_progress": run.progress(),
        }
        figures[f"p{parallel}"] = fig
        outputs[parallel] = run.out
        rows.append(
            [
                parallel,
                run.wall,
                run.tap.cpu,
                run.requests,
                run.throttled,
                run.records,
                floor,
                f"{run.wall / floor:.3f}",
                f"{run.requests / run.wall:.2f}",
                note,
            ]
        )
        print(f"  {run.label}: {fig['tap_progress']}", flush=True)
    table(
        [
            "parallel",
            "wall s",
            "tap cpu s",
            "requests",
            "429s",
            "records",
            "floor s",
            "wall/floor",
            "req/s",
            "",
        ],
        rows,
    )
    print("  wall = elapsed time of the tap process (start-up included); floor = requests / 10")
    identical = {}
    for parallel in levels[1:]:
        cmp = compare(outputs[1], outputs[parallel])
        identical[f"p{parallel}_vs_p1"] = cmp["identical"]
        print(
            f"  p{parallel} vs p1: records identical {cmp['records_identical']}, final state "
            f"identical {cmp['state_identical']} {cmp['differences'] or ''}"
        )
    results["fanout"] = {
        "stream": FANOUT_STREAM,
        "latency_ms": 200,
        "jitter_ms": 40,
        "rate_limit": rate,
        "default_parallel": default,
        "runs": figures,
        "identical_to_sequential": identical,
        "load_after": load(),
    }


def bench_identity(runner: Runner, tenants: Tenants, sizes: Sizes, results: dict) -> None:
    """Parallel runs emit the same records and final state as a sequential one."""
    default = default_parallel()
    heading(
        f"identity: {', '.join(IDENTITY_STREAMS)} (plan profile, scale {sizes.identity_scale}, "
        f"latency 2 ms + [0, 30) ms, no rate limit)"
    )
    sandbox = tenants.get(sizes.identity_scale, "plan", latency_ms=2, jitter_ms=30)
    runs = {}
    for parallel in sorted({1, default, 8}):
        runs[parallel] = runner.run(
            f"identity-p{parallel}",
            sandbox,
            IDENTITY_STREAMS,
            max_requests_per_second=NO_LIMIT,
            max_parallel_requests=parallel,
        )
    rows, figures = [], {}
    for parallel, run in runs.items():
        if parallel == 1:
            continue
        cmp = compare(runs[1].out, run.out)  # type: ignore[arg-type]
        figures[f"p{parallel}_vs_p1"] = cmp
        rows.append(
            [
                f"p{parallel} vs p1",
                cmp["records_identical"],
                cmp["state_identical"],
                sum(cmp["records_per_stream"].values()),
                f"{runs[1].wall:.1f} / {run.wall:.1f}",
                json.dumps(cmp["differences"]) if cmp["differences"] else "",
            ]
        )
    table(["runs", "same records", "same final state", "records", "wall s (seq / par)", ""], rows)
    _, state = read_singer(runs[1].out)  # type: ignore[arg-type]
    bookmarks = {k: v.get("replication_key_value") for k, v in state.get("bookmarks", {}).items()}
    print(f"  final bookmarks of the sequential run: {bookmarks}")
    results["identity"] = {
        "streams": list(IDENTITY_STREAMS),
        "records_per_stream": figures[next(iter(figures))]["records_per_stream"],
        "comparisons": {k: v["identical"] for k, v in figures.items()},
        "identical": all(v["identical"] for v in figures.values()),
        "load_after": load(),
    }


def bench_memory(runner: Runner, tenants: Tenants, sizes: Sizes, results: dict) -> None:
    """Peak RSS of the tap on a per-study fan-out at N and 10 x N partitions."""
    heading(f"memory: peak RSS of the tap, {FANOUT_STREAM}, no latency, no rate limit")
    rows, figures = [], {}
    for scale in sizes.memory_scales:
        sandbox = tenants.get(scale)
        partitions = studies_at(scale)
        run = runner.run(
            f"memory-{partitions}",
            sandbox,
            (FANOUT_STREAM,),
            max_requests_per_second=NO_LIMIT,
        )
        figures[str(partitions)] = {
            "partitions": partitions,
            "peak_rss_mb": round(run.tap.maxrss_mb, 1),
            "records": run.records,
            "requests": run.requests,
            "wall_s": round(run.wall, 2),
            "tap_cpu_s": round(run.tap.cpu, 2),
        }
        rows.append(
            [
                partitions,
                run.tap.maxrss_mb,
                run.records,
                run.requests,
                run.wall,
                run.tap.cpu,
                f"{run.requests / run.tap.cpu:,.0f}",
            ]
        )
    table(
        [
            "partitions",
            "peak RSS MB",
            "records",
            "requests",
            "wall s",
            "tap cpu s",
            "requests / cpu s",
        ],
        rows,
    )
    small, large = (figures[str(studies_at(s))] for s in sizes.memory_scales)
    ratio = large["peak_rss_mb"] / small["peak_rss_mb"]
    print(f"  peak RSS {large['partitions']:,} / {small['partitions']:,} partitions = {ratio:.3f}")
    results["memory"] = {
        "stream": FANOUT_STREAM,
        "runs": figures,
        "rss_ratio_large_over_small": round(ratio, 3),
        "load_after": load(),
    }


def _target_postgres() -> Path | None:
    path = ROOT / ".meltano/loaders/target-postgres/venv/bin/target-postgres"
    return path if path.exists() else None


def bench_cpu(runner: Runner, tenants: Tenants, sizes: Sizes, results: dict) -> None:
    """Records/s with no latency and no rate limit: tap alone, and into PostgreSQL."""
    heading(f"cpu: no latency, no rate limit (tenant scale {sizes.cpu_scale})")
    print(
        f"  ({CPU_TOP_STREAM} served ignoring $filter: the tap pages it with $skip; "
        f"each /dev/null run {CPU_REPEATS} times, the median shown)"
    )
    spec = _cpu_tenant(tenants, sizes, "spec")
    # Start-up: a run whose only stream is one small request.
    base = runner.run(
        "cpu-startup", spec, ("sites",), keep_output=False, max_requests_per_second=NO_LIMIT
    )
    figures: dict = {
        "startup": {"wall_s": round(base.wall, 2), "tap_cpu_s": round(base.tap.cpu, 2)}
    }
    print(
        f"  start-up only (one request of sites): {base.wall:.2f} s wall, {base.tap.cpu:.2f} s CPU"
    )
    print("\n  spec profile: no change field on these streams (full table)")
    _devnull(runner, spec, "spec", (CPU_TOP_STREAM, CPU_FANOUT_STREAM), base, figures)
    _postgres(runner, spec, figures)
    plan = _cpu_tenant(tenants, sizes, "plan")
    print("\n  plan profile: every record has modifiedDate (parsed, normalised to UTC, bookmarked)")
    _devnull(runner, plan, "plan", (CPU_TOP_STREAM,), base, figures)
    print(
        "  rec/s cpu = records / CPU seconds of the tap process (one core); net = minus the "
        "start-up run's CPU"
    )
    results["cpu"] = {**figures, "load_after": load()}


def _cpu_tenant(tenants: Tenants, sizes: Sizes, profile: str) -> Sandbox:
    # The fake tenant filters and sorts the whole table for every new $filter, and keyset paging
    # (`id gt <last>`) makes every page a new one: O(rows) per page, minutes at 300k rows, which
    # would measure the fake tenant. Serving the large stream as an endpoint that ignores $filter
    # makes the tap page it with $skip (one query, cached: O(page)). The tap does the same work
    # per record either way; it sends one request more.
    return tenants.get(
        sizes.cpu_scale, profile, overrides={CPU_TOP_STREAM: {"ignores_filter": True}}
    )


def _devnull(
    runner: Runner,
    sandbox: Sandbox,
    profile: str,
    streams: tuple[str, ...],
    base: TapRun,
    figures: dict,
) -> None:
    """Each stream alone into /dev/null, ``CPU_REPEATS`` times; the median run's figures."""
    rows = []
    for stream in streams:
        records = len(sandbox.truth(stream))
        runs = sorted(
            (
                runner.run(
                    f"cpu-{stream}-{profile}-devnull-{i}",
                    sandbox,
                    (stream,),
                    keep_output=False,
                    max_requests_per_second=NO_LIMIT,
                )
                for i in range(CPU_REPEATS)
            ),
            key=lambda r: r.tap.cpu,
        )
        run = runs[len(runs) // 2]
        net_cpu = max(run.tap.cpu - base.tap.cpu, 1e-6)
        fig = {
            "records": records,
            "requests": run.requests,
            "wall_s": round(run.wall, 2),
            "tap_cpu_s": round(run.tap.cpu, 2),
            "tap_cpu_s_all_runs": [round(r.tap.cpu, 2) for r in runs],
            "records_per_wall_s": round(records / run.wall),
            "records_per_cpu_s": round(records / run.tap.cpu),
            "records_per_cpu_s_net_of_startup": round(records / net_cpu),
            "peak_rss_mb": round(run.tap.maxrss_mb, 1),
        }
        suffix = "" if profile == "spec" else f"_{profile}"
        figures[f"{stream}{suffix}_devnull"] = fig
        rows.append(
            [
                f"{stream} -> /dev/null",
                records,
                run.requests,
                run.wall,
                run.tap.cpu,
                fig["records_per_wall_s"],
                fig["records_per_cpu_s"],
                fig["records_per_cpu_s_net_of_startup"],
            ]
        )
    table(
        [
            "run",
            "records",
            "requests",
            "wall s",
            "tap cpu s",
            "rec/s wall",
            "rec/s cpu",
            "rec/s cpu net",
        ],
        rows,
    )


def _postgres(runner: Runner, sandbox: Sandbox, figures: dict) -> None:
    """The large stream through target-postgres into the embedded PostgreSQL."""
    target = _target_postgres()
    if target is None:
        print("  target-postgres is not installed (`meltano install`): PostgreSQL run skipped")
        return
    from cc_dev.bench_target import SETTINGS
    from cc_dev.pg import postgres

    label, setting = SETTINGS[0]  # the loader setting the README recommends
    pgdir = Path(tempfile.gettempdir()) / f"cc-bench-pgdata-{os.getuid()}"
    schema = "bench_tap"
    records = len(sandbox.truth(CPU_TOP_STREAM))
    with postgres(pgdir) as pg:
        with pg.connect() as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        config = {
            "sqlalchemy_url": pg.url,
            "default_target_schema": schema,
            "add_record_metadata": True,
            "batch_size_rows": 10000,
            **setting,
        }
        run = runner.run(
            f"cpu-{CPU_TOP_STREAM}-postgres",
            sandbox,
            (CPU_TOP_STREAM,),
            target=([str(target)], config),
            max_requests_per_second=NO_LIMIT,
        )
        with pg.connect() as conn:
            loaded = conn.execute(f'SELECT count(*) FROM "{schema}".{CPU_TOP_STREAM}').fetchone()[0]
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        where = pg.describe()
    assert run.target is not None
    fig = {
        "records": records,
        "rows_loaded": loaded,
        "target_setting": label,
        "wall_s": round(run.wall, 2),
        "tap_cpu_s": round(run.tap.cpu, 2),
        "target_cpu_s": round(run.target.cpu, 2),
        "records_per_wall_s": round(records / run.wall),
    }
    figures[f"{CPU_TOP_STREAM}_postgres"] = fig
    print(f"\n  {CPU_TOP_STREAM} -> target-postgres ({label}) -> {where}")
    table(
        ["records", "rows loaded", "wall s", "tap cpu s", "target cpu s", "rec/s wall"],
        [[records, loaded, run.wall, run.tap.cpu, run.target.cpu, fig["records_per_wall_s"]]],
    )
    print("  (PostgreSQL's own CPU is not in either figure)")


def bench_schema(runner: Runner, tenants: Tenants, sizes: Sizes, results: dict) -> None:
    """Records/s with ``data`` typed from the spec vs one opaque object, side by side."""
    heading(f"schema: typed vs opaque data, no latency, no rate limit (scale {sizes.cpu_scale})")
    print(
        f"  ({CPU_TOP_STREAM} into /dev/null; the two schemas alternate, {CPU_REPEATS} runs each, "
        "the median shown; net = minus the start-up run of the same schema)"
    )
    figures: dict = {}
    rows = []
    variants = {"opaque": True, "typed": False}
    # Plan first: the cpu section leaves the plan tenant generated.
    for profile in ("plan", "spec"):
        sandbox = _cpu_tenant(tenants, sizes, profile)
        records = len(sandbox.truth(CPU_TOP_STREAM))
        runs: dict[str, list[TapRun]] = {v: [] for v in variants}
        base: dict[str, TapRun] = {}
        for variant, opaque in variants.items():
            base[variant] = runner.run(
                f"schema-startup-{profile}-{variant}",
                sandbox,
                ("sites",),
                keep_output=False,
                opaque_data=opaque,
                max_requests_per_second=NO_LIMIT,
            )
        for i in range(CPU_REPEATS):
            for variant, opaque in variants.items():
                runs[variant].append(
                    runner.run(
                        f"schema-{CPU_TOP_STREAM}-{profile}-{variant}-{i}",
                        sandbox,
                        (CPU_TOP_STREAM,),
                        keep_output=False,
                        opaque_data=opaque,
                        max_requests_per_second=NO_LIMIT,
                    )
                )
        for variant in variants:
            ordered = sorted(runs[variant], key=lambda r: r.tap.cpu)
            run = ordered[len(ordered) // 2]
            net = max(run.tap.cpu - base[variant].tap.cpu, 1e-6)
            figures[f"{profile}_{variant}"] = fig = {
                "records": records,
                "startup_cpu_s": round(base[variant].tap.cpu, 2),
                "tap_cpu_s_all_runs": [round(r.tap.cpu, 2) for r in ordered],
                "records_per_cpu_s": round(records / run.tap.cpu),
                "records_per_cpu_s_net_of_startup": round(records / net),
            }
            rows.append(
                [
                    f"{profile}, {variant} data",
                    records,
                    base[variant].tap.cpu,
                    run.tap.cpu,
                    fig["records_per_cpu_s"],
                    fig["records_per_cpu_s_net_of_startup"],
                ]
            )
        typed, opaque = figures[f"{profile}_typed"], figures[f"{profile}_opaque"]
        figures[f"{profile}_typed_over_opaque_net"] = round(
            typed["records_per_cpu_s_net_of_startup"] / opaque["records_per_cpu_s_net_of_startup"],
            3,
        )
    sandbox = _cpu_tenant(tenants, sizes, "spec")
    flat = runner.run(
        f"schema-{CPU_TOP_STREAM}-spec-flattened",
        sandbox,
        (CPU_TOP_STREAM,),
        keep_output=False,
        max_requests_per_second=NO_LIMIT,
        flattening_enabled=True,
        flattening_max_depth=1,
    )
    records = len(sandbox.truth(CPU_TOP_STREAM))
    net = max(flat.tap.cpu - figures["spec_typed"]["startup_cpu_s"], 1e-6)
    figures["spec_typed_flattened"] = {
        "records": records,
        "tap_cpu_s": round(flat.tap.cpu, 2),
        "records_per_cpu_s_net_of_startup": round(records / net),
    }
    rows.append(
        [
            "spec, typed, flattened",
            records,
            "",
            flat.tap.cpu,
            round(records / flat.tap.cpu),
            round(records / net),
        ]
    )
    table(["run", "records", "start-up cpu s", "tap cpu s", "rec/s cpu", "rec/s cpu net"], rows)
    print(
        "  typed / opaque (net rec/s): "
        + ", ".join(f"{p} {figures[f'{p}_typed_over_opaque_net']}" for p in ("spec", "plan"))
    )
    results["schema"] = {**figures, "load_after": load()}


# ------------------------------------------------------------------------------ main


def verdicts(results: dict) -> dict:
    """The issue's targets, met or not, for the sections that ran."""
    out = {}
    if "fanout" in results:
        runs = results["fanout"]["runs"]
        d = runs[f"p{results['fanout']['default_parallel']}"]
        out["fanout_wall_over_floor_le_1.15"] = d["wall_over_floor"] <= 1.15
        out["fanout_zero_429"] = d["throttled_429"] == 0
    if "cpu" in results:
        # Records per CPU second of the steady state: the fixed start-up (imports, discovery of
        # the catalogue, about a second) is a cost per run, not per record.
        for key in (f"{CPU_TOP_STREAM}_devnull", f"{CPU_TOP_STREAM}_plan_devnull"):
            if key in results["cpu"]:
                net = results["cpu"][key]["records_per_cpu_s_net_of_startup"]
                out[f"tap_ge_100k_records_per_cpu_s ({key})"] = net >= 100_000
    if "schema" in results:
        for profile in ("spec", "plan"):
            ratio = results["schema"][f"{profile}_typed_over_opaque_net"]
            out[f"typed_schema_within_5pct_of_opaque ({profile})"] = ratio >= 0.95
    if "memory" in results:
        out["rss_large_within_10pct_of_small"] = (
            results["memory"]["rss_ratio_large_over_small"] <= 1.10
        )
    identical = []
    if "identity" in results:
        identical.append(results["identity"]["identical"])
    if "fanout" in results:
        identical += list(results["fanout"]["identical_to_sequential"].values())
    if identical:
        out["identical_to_sequential"] = all(identical)
    return out


def main(argv: list[str] | None = None) -> int:
    """Run the selected sections and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small tenants: a smoke run (< 2 min)")
    parser.add_argument(
        "--only",
        default=",".join(SECTIONS),
        help=f"comma-separated sections ({','.join(SECTIONS)})",
    )
    parser.add_argument("--keep", action="store_true", help="keep the run files (printed path)")
    args = parser.parse_args(argv)
    chosen = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = set(chosen) - set(SECTIONS)
    if unknown:
        parser.error(f"unknown sections {sorted(unknown)}; choose from {', '.join(SECTIONS)}")
    sizes = QUICK if args.quick else FULL
    work = Path(tempfile.mkdtemp(prefix="cc-bench-"))
    started = time.perf_counter()
    results: dict = {
        "quick": args.quick,
        "sizes": asdict(sizes),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "load_before": load(),
        },
        "commit": _commit(),
    }
    print(
        f"tap-clinical-conductor benchmark ({'quick' if args.quick else 'full'}); "
        f"{os.cpu_count()} CPUs, load average {' '.join(map(str, load()))}; files in {work}"
    )
    tenants = Tenants()
    runner = Runner(work)
    # Ordered so that each fake tenant is generated once (memory's large one serves cpu too).
    order = [s for s in ("fanout", "memory", "cpu", "schema", "identity") if s in chosen]
    try:
        for section in order:
            globals()[f"bench_{section}"](runner, tenants, sizes, results)
    finally:
        tenants.close()
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    results["generation_seconds"] = tenants.generation_seconds
    results["machine"]["load_after"] = load()
    results["total_seconds"] = round(time.perf_counter() - started, 1)
    results["targets_met"] = verdicts(results)
    print("\n== targets")
    for name, met in results["targets_met"].items():
        print(f"  {name}: {'met' if met else 'NOT met'}")
    print("BENCH " + json.dumps(results, separators=(",", ":")), flush=True)
    return 0


def _commit() -> str:
    try:
        return subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return ""


if __name__ == "__main__":
    sys.exit(main())
