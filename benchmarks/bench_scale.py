"""Daily runs at scale (``make bench-scale``): the parent selection under a request budget.

    python -m benchmarks.bench_scale [--scale 0.1] [--days 14] [--skip-plan] [--plan-scale 1.0]

Prints figures, asserts nothing. Two parts (issue 14, "What to show"):

1. Plan at full size: a fake tenant at ``--plan-scale`` (1.0: the reference tenant, reference
   activity) in a subprocess; ``tap-clinical-conductor-plan --json`` with the ``daily`` job's
   budget (from meltano.yml, else 576,000 requests and 1,200 minutes) plans a steady day and
   writes the state it leaves (``--state-out``); the tenant moves on a day; the plan of that
   next day (``--state``) is the one shown: the requests of one run per stream and reason;
   hours at 5 and 8 requests a second. "Not the sweep" (top-level
   streams, parent listings, new, changed and live parents) is the issue's target figure.
2. Simulated days at ``--scale`` with the daily budgets scaled by ``--budget-scale`` (default:
   the scale). Day 0 is an unbudgeted full load; then each day the tenant moves on a day
   (``POST /_sandbox/day``), the tap runs (a subprocess, unthrottled, state from the previous
   run's last STATE message), its records are merged by key into an in-memory warehouse with
   the complete-read retire rule (``benchmarks.scale_warehouse``), and the warehouse is held
   against the day's change log and the tenant's truth. Time is requests / rate.

One table row per day, then a ``BENCH_SCALE {json}`` line. "stale d" is the largest
``staleness_bound_hours`` of ``cc_sync_coverage`` in days; "unread d" the days since the least
recently read parent (among parents with rows: a parent read with none leaves no record) was
read, as the benchmark saw it. Requests are the tenant's count (what
the API saw); peak RSS is the tap's own (``VmHWM`` at exit). Quick: ``--scale 0.01 --days 3
--skip-plan``.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
import typing as t
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlencode

from benchmarks.bench import TAP_MEASURED, Usage, _wait
from benchmarks.bench_sandbox import KEY, Server
from benchmarks.scale_warehouse import (
    LateChange,
    TableView,
    Warehouse,
    change_key,
    check_table,
    digest,
    staging_table,
    view,
    visible,
)
from cc_dev.warehouse import format_table
from tap_clinical_conductor.catalogue import BY_NAME
from tap_clinical_conductor.records import BadRecord, record_key

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
#: The daily job's budget when meltano.yml does not set one (issue 14: 20 h at 8 requests/s).
DAILY_REQUESTS = 576_000
DAILY_MINUTES = 1_200
RATES = (5, 8)
#: Issue 14's target for the part of a daily run at full size that is not the sweep.
NOT_SWEEP_TARGET = 150_000
COVERAGE = "cc_sync_coverage"
REASONS = ("listing", "new", "changed", "live", "sweep")
#: max_requests_per_second for "unthrottled" (an integer: see benchmarks.bench.NO_LIMIT).
UNTHROTTLED = 1_000_000
SEED = 7


def hours(requests: float, rate: float) -> float:
    """Hours ``requests`` take at ``rate`` requests a second."""
    return requests / rate / 3600


# ------------------------------------------------------------------------------------ budgets


def daily_budget(path: Path = ROOT / "meltano.yml") -> tuple[int, float, str]:
    """``max_requests_per_run`` and ``max_run_minutes`` of the ``daily`` job's extractor.

    Looked up in the extractor's ``config`` (following ``inherit_from``) and its settings'
    ``value``; the issue's figures where meltano.yml sets none. Returns them and where they came
    from.
    """
    import yaml

    doc = yaml.safe_load(path.read_text())
    extractors = {p["name"]: p for p in doc.get("plugins", {}).get("extractors", [])}
    job = next((j for j in doc.get("jobs", []) if j.get("name") == "daily"), None)
    tasks = job.get("tasks", []) if job else []
    words = [w for task in tasks for w in (task if isinstance(task, list) else [task])]
    names = [n for w in words for n in str(w).split() if n in extractors]
    found: dict[str, t.Any] = {}
    name: str | None = names[0] if names else None
    while name and name in extractors:
        plugin = extractors[name]
        for setting in ("max_requests_per_run", "max_run_minutes"):
            if setting in found:
                continue
            if plugin.get("config", {}).get(setting) is not None:
                found[setting] = plugin["config"][setting]
            for s in plugin.get("settings", []):
                if s.get("name") == setting and s.get("value") is not None:
                    found.setdefault(setting, s["value"])
        name = plugin.get("inherit_from")
    if "max_requests_per_run" in found:
        return (
            int(found["max_requests_per_run"]),
            float(found.get("max_run_minutes", DAILY_MINUTES)),
            f"meltano.yml (daily job: {names[0]})",
        )
    return DAILY_REQUESTS, DAILY_MINUTES, "issue 14's figures (meltano.yml sets no daily budget)"


# --------------------------------------------------------------------------------- the tenant


class Tenant(Server):
    """``cc-sandbox serve`` in a subprocess (not pinned), with the admin calls the bench uses."""

    def __init__(self, scale: float, seed: int, late_share: float | None) -> None:
        args = ("--seed", str(seed))
        if late_share is not None:
            args += ("--late-share", str(late_share))
        super().__init__(scale, pin=False, args=args)
        self.base_url = self.url.geturl()

    def truth(self, name: str) -> list[dict[str, t.Any]]:
        """``Sandbox.truth`` over HTTP (``KeyError`` for an endpoint it does not serve)."""
        rows = self.admin("GET", f"truth/{name}")
        if isinstance(rows, dict):  # {"Message": ...}
            raise KeyError(name)
        return t.cast(list[dict[str, t.Any]], rows)

    def items(self, path: str, params: dict[str, t.Any] | None = None) -> list[t.Any] | None:
        """Every row an API list serves (OData pages followed); ``None``: it answers 404."""
        out: list[t.Any] = []
        params = dict(params or {})
        while True:
            query = f"?{urlencode(params, safe='$')}" if params else ""
            self.conn.request("GET", f"{self.url.path}{path}{query}", headers={"CCAPIKey": KEY})
            reply = self.conn.getresponse()
            body = reply.read()
            if reply.status == 404:
                return None
            if reply.status != 200:
                raise RuntimeError(f"{path}: HTTP {reply.status} {body[:200]!r}")
            page = json.loads(body)
            items = page.get("Items", page.get("value", [])) if isinstance(page, dict) else page
            out.extend(items)
            if "$top" not in params or len(items) < params["$top"]:
                return out
            params["$skip"] = params.get("$skip", 0) + len(items)


class Truth:
    """The tenant's rows per staging table (data as digests), kept current from the change log.

    Day 0 (and ``--truth-every`` days) reads ``/_sandbox/truth`` whole: about 100 µs a row, too
    slow to repeat daily at scale 0.1. In between, the rows each day's change log names are read
    again from the API (its answers are the truth byte for byte): a per-parent stream's changed
    parents whole, a top-level row by id. The last day reads the truth whole again and counts
    the rows where the two disagree (``drift``, expected 0).
    """

    def __init__(self, tenant: Tenant, streams: list[str]) -> None:
        self.tenant = tenant
        self.streams = {staging_table(s): BY_NAME[s] for s in streams}
        self.tables: dict[str, dict[tuple[t.Any, ...], bytes]] = {}
        self.by_parent: dict[str, dict[t.Any, set[tuple[t.Any, ...]]]] = {}
        self.requests = 0

    def load(self) -> None:
        """Every table from ``/_sandbox/truth``."""
        for table in self.streams:
            self._load(table)

    def _load(self, table: str) -> None:
        endpoint = self.streams[table]
        self.tables[table] = {}
        self.by_parent[table] = collections.defaultdict(set)
        try:
            rows = self.tenant.truth(endpoint.name)
        except KeyError:  # an endpoint the tenant does not serve (404/501): no rows
            return
        for row in rows:
            self._put(table, row["parent"], row["data"])

    def drift(self) -> int:
        """Rows where the kept truth and ``/_sandbox/truth`` disagree; then the latter is kept."""
        kept = self.tables
        self.load()
        return sum(
            len(set(kept[table].items()) ^ set(rows.items())) for table, rows in self.tables.items()
        )

    def apply(self, changes: list[dict[str, t.Any]]) -> None:
        """Read again what ``changes`` touched."""
        parents: dict[str, set[t.Any]] = collections.defaultdict(set)
        ids: dict[str, set[t.Any]] = collections.defaultdict(set)
        whole: set[str] = set()
        for change in changes:
            table_key = change_key(change)
            if table_key is None or table_key[0] not in self.streams:
                continue
            table, key = table_key
            endpoint = self.streams[table]
            if endpoint.parent_key:
                parents[table].add(key[0])
            elif endpoint.id_from or not endpoint.odata:
                whole.add(table)
            elif change["kind"] == "delete":
                self.tables[table].pop(key, None)
            else:
                ids[table].add(key[0])
        for table in whole:
            self._load(table)
        for table, wanted in ids.items():
            endpoint = self.streams[table]
            for rid in wanted:
                items = self.tenant.items(endpoint.path, {
                    "$filter": f"{endpoint.id_field} eq {rid}", "$top": 1000})
                self.requests += 1
                self.tables[table].pop((rid,), None)
                for item in items or []:
                    self._put(table, {}, item)
        for table, changed in parents.items():
            endpoint = self.streams[table]
            assert endpoint.parent_key is not None
            for parent in changed:
                path = endpoint.path.replace("{" + endpoint.parent_key + "}", str(parent))
                items = self.tenant.items(path, {"$top": 1000, "$orderby": endpoint.id_field}
                                          if endpoint.odata else None)
                self.requests += 1
                for key in self.by_parent[table].pop(parent, set()):
                    self.tables[table].pop(key, None)
                for item in items or []:
                    self._put(table, {endpoint.parent_key: parent}, item)

    def _put(self, table: str, parent: dict[str, t.Any], item: t.Any) -> None:
        endpoint = self.streams[table]
        try:
            key = record_key(endpoint, parent, item)
        except BadRecord:  # the tap skips records it cannot key, as expected_rows does
            return
        # The tap's `data`: the API object (a bare string becomes {"value": ...}), as
        # cc_dev.warehouse.expected_rows has it for the e2e checks (`digest` drops NULs).
        self.tables[table][key] = digest(item if isinstance(item, dict) else {"value": item})
        if endpoint.parent_key:
            self.by_parent[table][key[0]].add(key)


# ------------------------------------------------------------------------------------ the tap


@dataclass
class RunOutput:
    """What one tap run wrote, beyond the rows merged into the warehouse."""

    records: int = 0
    state: dict[str, t.Any] | None = None
    coverage: list[dict[str, t.Any]] = field(default_factory=list)
    complete_reads: int = 0
    #: Per table: parents with at least one record this run.
    parents: dict[str, set[t.Any]] = field(default_factory=lambda: collections.defaultdict(set))
    #: Streams the run started (a SCHEMA message).
    streams: set[str] = field(default_factory=set)


def merge_output(path: Path, warehouse: Warehouse) -> RunOutput:
    """Merge a run's Singer output into ``warehouse``; what else it said."""
    out = RunOutput()
    with path.open("rb") as lines:
        for line in lines:
            message = json.loads(line)
            kind = message.get("type")
            if kind == "RECORD":
                stream = message["stream"]
                if stream == COVERAGE:
                    out.coverage.append(message["record"])
                    continue
                key = warehouse.record(stream, message["record"], message["time_extracted"])
                if key is None:
                    out.complete_reads += 1
                    continue
                out.records += 1
                if len(key) > 2:
                    out.parents[staging_table(stream)].add(key[1])
            elif kind == "SCHEMA":
                out.streams.add(message["stream"])
                warehouse.schema(message["stream"], message.get("key_properties") or [])
            elif kind == "STATE":
                out.state = message["value"]
    return out


@dataclass
class TapRun:
    """One run: the tap's usage, the tenant's request counts, the output file."""

    usage: Usage
    requests: int
    by_endpoint: dict[str, int]
    out: Path
    err: Path


def run_tap(
    work: Path,
    label: str,
    tenant: Tenant,
    config: dict[str, t.Any],
    catalog: Path,
    state: dict[str, t.Any] | None,
    timeout: float,
) -> TapRun:
    """The tap as a subprocess against ``tenant``; stdout to a file; fails loudly."""
    stem = work / label
    cfg = stem.with_suffix(".config.json")
    cfg.write_text(json.dumps(config))
    args = [*TAP_MEASURED, "--config", str(cfg), "--catalog", str(catalog)]
    if state is not None:
        state_file = stem.with_suffix(".state.json")
        state_file.write_text(json.dumps(state))
        args += ["--state", str(state_file)]
    out, err, hwm = stem.with_suffix(".out"), stem.with_suffix(".err"), stem.with_suffix(".hwm")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
    env["CC_BENCH_HWM"] = str(hwm)
    tenant.admin("POST", "stats/reset")
    with out.open("wb") as outf, err.open("wb") as errf:
        start = time.perf_counter()
        proc = subprocess.Popen(args, stdout=outf, stderr=errf, env=env)  # noqa: S603
        usage = _wait(proc, start, timeout)
    if usage.returncode != 0:
        tail = "\n".join(err.read_text(errors="replace").splitlines()[-30:])
        raise RuntimeError(f"{label}: the tap exited {usage.returncode}\n{tail}")
    usage.maxrss_mb = int(hwm.read_text()) / 1024
    stats = tenant.admin("GET", "stats")
    by_endpoint = {n: sum(v.values()) for n, v in stats["by_endpoint"].items()}
    return TapRun(usage, int(stats["requests"]), by_endpoint, out, err)


def discover(work: Path, config: dict[str, t.Any]) -> Path:
    """The tap's discovered catalog (its default selection: meltano.yml's ``select``)."""
    cfg = work / "discover.config.json"
    cfg.write_text(json.dumps(config))
    catalog = subprocess.run(  # noqa: S603
        [str(BIN / "tap-clinical-conductor"), "--config", str(cfg), "--discover"],
        capture_output=True,
        check=True,
        text=True,
    ).stdout
    path = work / "catalog.json"
    path.write_text(catalog)
    return path


def selected_streams(catalog: Path) -> list[str]:
    """Streams the catalog selects."""
    out = []
    for entry in json.loads(catalog.read_text())["streams"]:
        top = next(m for m in entry["metadata"] if m["breadcrumb"] == [])
        if top["metadata"].get("selected"):
            out.append(entry["tap_stream_id"])
    return out


# ----------------------------------------------------------------------------- part 1: plan


def plan(args: argparse.Namespace, budget: tuple[int, float, str]) -> dict[str, t.Any]:
    """The plan command at ``--plan-scale`` with the daily budget; prints and returns figures."""
    requests_budget, minutes, source = budget
    print(f"\n== Plan of one daily run at scale {args.plan_scale} ==")
    print(f"budget: max_requests_per_run {requests_budget:,}, max_run_minutes {minutes:g} "
          f"({source})")
    started = time.perf_counter()
    tenant = Tenant(args.plan_scale, args.seed, None)
    print(f"tenant up in {time.perf_counter() - started:.1f} s")
    try:
        with tempfile.TemporaryDirectory(prefix="cc-bench-scale-plan-") as tmp:
            cfg = Path(tmp) / "plan.config.json"
            cfg.write_text(json.dumps({
                "api_url": tenant.base_url,
                "api_key": KEY,
                "tenant_timezone": "America/New_York",
                "max_requests_per_second": 8,
                "max_requests_per_run": requests_budget,
                "max_run_minutes": round(minutes),
            }))
            # A steady day, then the next one planned from the state it leaves: the second sees
            # what a daily run sees (the visits that left Started overnight, the sweep's cursor).
            after = Path(tmp) / "after.json"
            started = time.perf_counter()
            first = _plan_command(cfg, args, "--state-out", str(after))
            print(f"day 1 (steady, no state): {_total(first):,} requests in "
                  f"{time.perf_counter() - started:.0f} s; the tenant moves on a day")
            tenant.admin("POST", "day")
            started = time.perf_counter()
            proc = _plan_command(cfg, args, "--state", str(after))
            seconds = time.perf_counter() - started
        tenant_rss = tenant.peak_rss_mb()
    finally:
        tenant.stop()
    rows = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    return plan_figures(rows, seconds, tenant_rss, budget)


def _plan_command(
    cfg: Path, args: argparse.Namespace, *extra: str
) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(  # noqa: S603
        [str(BIN / "tap-clinical-conductor-plan"), "--config", str(cfg), "--json", *extra],
        capture_output=True,
        text=True,
        timeout=args.plan_timeout,
        check=False,
    )
    if proc.returncode != 0:
        print(proc.stderr[-3000:], file=sys.stderr)
        raise RuntimeError(f"the plan command exited {proc.returncode}")
    return proc


def _total(proc: subprocess.CompletedProcess[str]) -> int:
    rows = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    return sum(int(r["requests"]) for r in rows)


def _size(row: dict[str, t.Any]) -> str:
    size = row.get("parents", row.get("rows"))
    return "" if size is None else f"{size:,}"


def plan_figures(
    rows: list[dict[str, t.Any]], seconds: float, tenant_rss: float, budget: tuple[int, float, str]
) -> dict[str, t.Any]:
    """Print the plan's table by stream and reason; its totals."""
    table = []
    totals = dict.fromkeys(REASONS, 0)
    top_level = 0
    unexplained = 0
    for row in rows:
        reasons = row.get("by_reason") or {}
        if "parents" not in row:  # one collection read (top-level, or subjects/visits' twins)
            top_level += row["requests"]
        elif reasons:
            for reason in REASONS:
                totals[reason] += reasons.get(reason, 0)
        else:
            unexplained += row["requests"]
        table.append((
            row["stream"], row.get("kind", ""), _size(row),
            *(f"{reasons[r]:,}" if r in reasons else "" for r in REASONS),
            f"{row['requests']:,}", row.get("sweep_period_days", ""),
            f"{hours(row['requests'], 5):.2f}", f"{hours(row['requests'], 8):.2f}",
        ))
    total = sum(r["requests"] for r in rows)
    # Everything but the sweep: collections, listings and signals, new, changed, live parents,
    # and the one probe of an endpoint that answers 404.
    not_sweep = total - totals["sweep"]
    table.append(("total", "", "", *(f"{totals[r]:,}" for r in REASONS), f"{total:,}", "",
                  f"{hours(total, 5):.2f}", f"{hours(total, 8):.2f}"))
    print(format_table(table, ("stream", "kind", "rows/parents", *REASONS, "requests",
                               "sweep days", "h@5", "h@8")))
    periods = [r["sweep_period_days"] for r in rows if r.get("sweep_period_days") is not None]
    figures = {
        "requests": total,
        "top_level": top_level,
        "by_reason": totals,
        "not_sweep": not_sweep,
        "not_sweep_target": NOT_SWEEP_TARGET,
        "hours_at_5": round(hours(total, 5), 2),
        "hours_at_8": round(hours(total, 8), 2),
        "not_sweep_hours_at_5": round(hours(not_sweep, 5), 2),
        "not_sweep_hours_at_8": round(hours(not_sweep, 8), 2),
        "max_sweep_period_days": max(periods) if periods else None,
        "budget_requests": budget[0],
        "budget_minutes": budget[1],
        "plan_seconds": round(seconds, 1),
        "tenant_peak_rss_mb": round(tenant_rss),
    }
    if unexplained:
        figures["requests_without_reason"] = unexplained
        print(f"note: {unexplained:,} per-parent requests come without by_reason (the plan "
              "command predates issue 14's interface)")
    print(f"not the sweep (collections {top_level:,} + listing, new, changed, live): "
          f"{not_sweep:,} requests = {hours(not_sweep, 8):.2f} h at 8/s, "
          f"{hours(not_sweep, 5):.2f} h at 5/s (target <= {NOT_SWEEP_TARGET:,}); "
          f"plan took {seconds:.0f} s")
    return figures


# ------------------------------------------------------------------------------ part 2: days


@dataclass
class Totals:
    """Figures over every simulated day."""

    signalled: int = 0
    signalled_visible: int = 0
    lost: set[tuple[str, t.Any]] = field(default_factory=set)
    falsely_retired: set[tuple[str, t.Any]] = field(default_factory=set)
    duplicates: int = 0
    wrong: int = 0
    max_staleness_days: float | None = None
    ignored_changes: int = 0
    #: Per per-parent table: the day each parent last had records read.
    last_read: dict[str, dict[t.Any, int]] = field(
        default_factory=lambda: collections.defaultdict(dict)
    )
    max_measured_staleness_days: int = 0
    invisible_examples: list[dict[str, t.Any]] = field(default_factory=list)
    #: Signalled changes not visible after their run, by (endpoint, signal).
    invisible: collections.Counter[str] = field(default_factory=collections.Counter)


def _coverage_by_stream(coverage: list[dict[str, t.Any]]) -> dict[str, dict[str, t.Any]]:
    return {c["stream"]: c for c in coverage}


def _max_staleness_days(coverage: list[dict[str, t.Any]]) -> float | None:
    values = [c["staleness_bound_hours"] for c in coverage
              if c.get("staleness_bound_hours") is not None]
    return max(values) / 24 if values else None


def days(args: argparse.Namespace, budget: tuple[int, float, str]) -> dict[str, t.Any]:
    """Day 0 (unbudgeted full load) and ``--days`` budgeted days; prints a row per day."""
    budget_scale = args.budget_scale if args.budget_scale is not None else args.scale
    max_requests = max(1, round(budget[0] * budget_scale))
    # An integer: the tap's setting is (minutes, rounded; at least one).
    max_minutes = max(1, round(budget[1] * budget_scale))
    print(f"\n== {args.days} simulated days at scale {args.scale}, budget "
          f"{max_requests:,} requests and {max_minutes:g} minutes per run "
          f"(daily budget x {budget_scale:g}) ==")
    work_ctx: t.ContextManager[str] = (
        contextlib.nullcontext(str(args.work)) if args.work
        else tempfile.TemporaryDirectory(prefix="cc-bench-scale-")
    )
    started = time.perf_counter()
    tenant = Tenant(args.scale, args.seed, args.late_share)
    print(f"tenant up in {time.perf_counter() - started:.1f} s: {tenant.base_url}")
    warehouse = Warehouse()
    totals = Totals()
    late: list[LateChange] = []
    rows: list[tuple[t.Any, ...]] = []
    per_day: list[dict[str, t.Any]] = []
    drift: list[int] = []
    try:
        with work_ctx as work_name:
            work = Path(work_name)
            work.mkdir(parents=True, exist_ok=True)
            base = {
                "api_url": tenant.base_url,
                "api_key": KEY,
                "tenant_timezone": "America/New_York",
                "max_requests_per_second": UNTHROTTLED,
                **dict(args.setting),
            }
            catalog = discover(work, base)
            streams = [s for s in selected_streams(catalog) if s in BY_NAME]
            truth = Truth(tenant, streams)
            state: dict[str, t.Any] | None = None
            for day in range(args.days + 1):
                changes: list[dict[str, t.Any]] = []
                if day:
                    tenant.admin("POST", "day")
                    changes = tenant.admin("GET", f"changes?day={day}")["changes"]
                config = dict(base)
                if day:
                    config.update(max_requests_per_run=max_requests, max_run_minutes=max_minutes)
                run = run_tap(work, f"day{day:02d}", tenant, config, catalog, state,
                              args.run_timeout)
                checking = time.perf_counter()
                out = merge_output(run.out, warehouse)
                merge_s = time.perf_counter() - checking
                state = out.state if out.state is not None else state
                started = time.perf_counter()
                if day == 0:
                    truth.load()
                else:
                    truth.apply(changes)
                    if day == args.days or (args.truth_every and day % args.truth_every == 0):
                        drift.append(truth.drift())
                truth_s = time.perf_counter() - started
                result = check_day(day, streams, warehouse, out, changes, truth.tables, late,
                                   totals)
                result["truth_s"] = round(truth_s, 1)
                result["merge_s"] = round(merge_s, 1)
                result["check_s"] = round(time.perf_counter() - checking - truth_s, 1)
                state_bytes = len(json.dumps(state or {}, separators=(",", ":")))
                result.update(
                    requests=run.requests,
                    within_budget=(run.requests <= max_requests) if day else None,
                    state_bytes=state_bytes,
                    tap_peak_rss_mb=round(run.usage.maxrss_mb, 1),
                    tap_cpu_s=round(run.usage.cpu, 1),
                    wall_s=round(run.usage.wall, 1),
                    records=out.records,
                    complete_reads=out.complete_reads,
                    by_endpoint=run.by_endpoint,
                )
                if not args.keep_output:
                    run.out.unlink()
                per_day.append(result)
                rows.append(_row(result))
                print("  ".join(f"{h} {v}" for h, v in zip(ROW_HEADERS, rows[-1], strict=True)),
                      flush=True)
            tenant_rss = tenant.peak_rss_mb()
    finally:
        tenant.stop()
    print()
    print(format_table(rows, ROW_HEADERS))
    if any(d["coverage"] for d in per_day):
        print("\nparents read by reason (per-parent streams, cc_sync_coverage):")
        print(format_table([_coverage_row(d) for d in per_day], COVERAGE_HEADERS))
    figures = day_figures(per_day, late, totals, max_requests, max_minutes, tenant_rss, args)
    figures["truth_drift"] = drift
    return figures


ROW_HEADERS = (
    "day", "requests", "h@5", "h@8", "signalled visible", "late pending", "stale d", "unread d",
    "lost", "false del", "dup keys", "del pending", "wrong", "state B", "tap RSS MB", "wall s",
    "truth s", "check s",
)


COVERAGE_HEADERS = (
    "day", "tap requests", "new", "changed", "live", "sweep", "unread new", "sweep period d",
    "sweep done", "budget stopped",
)


def _coverage_row(d: dict[str, t.Any]) -> tuple[t.Any, ...]:
    cov = [c for c in d["coverage"] if c.get("parents_total") is not None]

    def total(name: str) -> str:
        return f"{sum(c.get(name) or 0 for c in cov):,}"

    periods = [c["sweep_period_days"] for c in cov if c.get("sweep_period_days") is not None]
    done = [c["sweep_done_share"] for c in cov if c.get("sweep_done_share") is not None]
    return (
        d["day"], f"{sum(c.get('requests') or 0 for c in d['coverage']):,}", total("read_new"),
        total("read_changed"), total("read_live"), total("read_sweep"), total("unread_new"),
        f"{max(periods):.1f}" if periods else "-", f"{min(done):.2f}-{max(done):.2f}" if done
        else "-", ",".join(d["budget_stopped"]) or "-",
    )


def _row(r: dict[str, t.Any]) -> tuple[t.Any, ...]:
    stale = r["max_staleness_days"]
    return (
        r["day"], f"{r['requests']:,}", f"{hours(r['requests'], 5):.2f}",
        f"{hours(r['requests'], 8):.2f}",
        f"{r['signalled_visible']}/{r['signalled']}" if r["day"] else "-",
        r["late_pending"], "-" if stale is None else f"{stale:.2f}", r["measured_staleness_days"],
        r["lost"],
        r["falsely_retired"], r["duplicate_keys"], r["deletes_pending"], r["wrong"],
        f"{r['state_bytes']:,}", r["tap_peak_rss_mb"], r["wall_s"], r["truth_s"], r["check_s"],
    )


def check_day(
    day: int,
    streams: list[str],
    warehouse: Warehouse,
    out: RunOutput,
    changes: list[dict[str, t.Any]],
    truth: dict[str, dict[tuple[t.Any, ...], bytes]],
    late: list[LateChange],
    totals: Totals,
) -> dict[str, t.Any]:
    """The warehouse against the tenant after day ``day``'s run."""
    tables = {staging_table(s): s for s in streams}
    coverage = _coverage_by_stream(out.coverage)
    views: dict[str, TableView] = {table: view(warehouse, table) for table in tables}
    lost = falsely = duplicates = wrong = pending = 0
    for table, stream in tables.items():
        if BY_NAME[stream].parent_key:
            read_parents: set[t.Any] | None = out.parents.get(table, set())
        else:
            read = stream in out.streams and not coverage.get(stream, {}).get("budget_stopped")
            read_parents = None if read else set()
        result = check_table(table, views[table], truth[table], read_parents=read_parents)
        totals.lost.update((table, k) for k in result.lost)
        totals.falsely_retired.update((table, k) for k in result.falsely_retired)
        lost += len(result.lost)
        falsely += len(result.falsely_retired)
        duplicates += result.duplicates
        wrong += result.wrong
        pending += result.deletes_pending
    measured, unread = _measured_staleness(day, tables, out, truth, totals)
    signalled = seen = 0
    for change in changes:
        table_key = change_key(change)
        if table_key is None or table_key[0] not in tables:
            totals.ignored_changes += 1
            continue
        if change.get("signalled"):
            signalled += 1
            if visible(table_key, views, truth):
                seen += 1
            else:
                totals.invisible[f"{change['endpoint']}/{change['signal']}"] += 1
                if len(totals.invisible_examples) < 10:
                    totals.invisible_examples.append(change)
        elif change.get("signalled") is False:
            late.append(LateChange(day, table_key, tables[table_key[0]]))
    for change in late:
        if change.seen_day is None and visible(change.table_key, views, truth):
            change.seen_day = day
            change.period_days = coverage.get(change.stream, {}).get("sweep_period_days")
    staleness = _max_staleness_days(out.coverage)
    if staleness is not None:
        totals.max_staleness_days = max(totals.max_staleness_days or 0.0, staleness)
    totals.signalled += signalled
    totals.signalled_visible += seen
    totals.duplicates = max(totals.duplicates, duplicates)
    totals.wrong += wrong
    return {
        "day": day,
        "signalled": signalled,
        "signalled_visible": seen,
        "late_pending": sum(1 for c in late if c.seen_day is None),
        "max_staleness_days": staleness,
        "measured_staleness_days": measured,
        "parents_with_rows_never_read": unread,
        "lost": lost,
        "falsely_retired": falsely,
        "duplicate_keys": duplicates,
        "deletes_pending": pending,
        "wrong": wrong,
        "budget_stopped": sorted(c["stream"] for c in out.coverage if c.get("budget_stopped")),
        "coverage": out.coverage,
    }


def _measured_staleness(
    day: int,
    tables: dict[str, str],
    out: RunOutput,
    truth: dict[str, dict[tuple[t.Any, ...], bytes]],
    totals: Totals,
) -> tuple[int, int]:
    """Days since the least recently read parent was read, over parents with rows, and how
    many parents with rows were never read (a parent read with no rows leaves no trace)."""
    worst = unread = 0
    for table, stream in tables.items():
        if not BY_NAME[stream].parent_key:
            continue
        last = totals.last_read[table]
        for parent in out.parents.get(table, ()):
            last[parent] = day
        for parent in {k[0] for k in truth.get(table, {})}:
            if parent in last:
                worst = max(worst, day - last[parent])
            else:
                unread += 1
    totals.max_measured_staleness_days = max(totals.max_measured_staleness_days, worst)
    return worst, unread


def day_figures(
    per_day: list[dict[str, t.Any]],
    late: list[LateChange],
    totals: Totals,
    max_requests: int,
    max_minutes: int,
    tenant_rss: float,
    args: argparse.Namespace,
) -> dict[str, t.Any]:
    """The days' figures for the BENCH_SCALE line (and the notes printed under the table)."""
    budgeted = per_day[1:]
    last_day = per_day[-1]["day"]
    last_periods = {c["stream"]: c.get("sweep_period_days") for c in per_day[-1]["coverage"]}
    verdicts = [c.within(last_day, last_periods.get(c.stream)) for c in late]
    within = sum(1 for v in verdicts if v is True)
    decided = sum(1 for v in verdicts if v is not None)
    ages = [c.seen_day - c.day for c in late if c.seen_day is not None]
    requests = [d["requests"] for d in budgeted]
    initial = per_day[0]
    figures = {
        "scale": args.scale,
        "days": args.days,
        "seed": args.seed,
        "budget_requests": max_requests,
        "budget_minutes": round(max_minutes, 2),
        "initial_load": {
            "requests": initial["requests"],
            "hours_at_5": round(hours(initial["requests"], 5), 2),
            "hours_at_8": round(hours(initial["requests"], 8), 2),
            "records": initial["records"],
            "tap_peak_rss_mb": initial["tap_peak_rss_mb"],
            "wall_s": initial["wall_s"],
        },
        "requests_per_run": requests,
        "tap_counted_requests": [sum(c.get("requests") or 0 for c in d["coverage"])
                                 for d in budgeted],
        "hours_at_5": [round(hours(r, 5), 2) for r in requests],
        "hours_at_8": [round(hours(r, 8), 2) for r in requests],
        "signalled_changes": totals.signalled,
        "signalled_not_visible_by_signal": dict(totals.invisible),
        "signalled_visible_after_next_run_share": (
            round(totals.signalled_visible / totals.signalled, 4) if totals.signalled else None
        ),
        "late_changes": len(late),
        "late_visible_within_sweep_period_share": round(within / decided, 4) if decided else None,
        "late_visible_within_sweep_period": within,
        "late_not_within_sweep_period": decided - within,
        "late_not_yet_due": len(late) - decided,
        "late_max_days_to_visible": max(ages) if ages else None,
        "max_staleness_days": (
            round(totals.max_staleness_days, 2) if totals.max_staleness_days is not None else None
        ),
        "max_measured_staleness_days": totals.max_measured_staleness_days,
        "rows_lost": len(totals.lost),
        "false_deletions": len(totals.falsely_retired),
        "duplicate_keys": totals.duplicates,
        "rows_wrong_after_read": totals.wrong,
        "deletes_pending_last_day": per_day[-1]["deletes_pending"],
        "state_bytes": [d["state_bytes"] for d in per_day],
        "tap_peak_rss_mb": [d["tap_peak_rss_mb"] for d in per_day],
        "tenant_peak_rss_mb": round(tenant_rss),
        "within_budget": all(d["within_budget"] for d in budgeted),
        "budget_stopped_runs": sum(1 for d in budgeted if d["budget_stopped"]),
        "changes_not_in_selection": totals.ignored_changes,
    }
    if totals.invisible_examples:
        print("signalled changes not visible after their run (first ones):")
        for change in totals.invisible_examples:
            print(f"  {json.dumps(change)}")
    if totals.lost:
        print(f"rows lost, e.g. {sorted(totals.lost, key=str)[:5]}")
    if totals.falsely_retired:
        print(f"false deletions, e.g. {sorted(totals.falsely_retired, key=str)[:5]}")
    heavy = collections.Counter()
    for d in budgeted:
        heavy.update(d["by_endpoint"])
    if budgeted:
        print("requests per run by endpoint (mean over the budgeted days): " + ", ".join(
            f"{n} {c / len(budgeted):,.0f}" for n, c in heavy.most_common(8)))
    return figures


def _setting(text: str) -> tuple[str, t.Any]:
    name, _, value = text.partition("=")
    try:
        return name, json.loads(value)
    except json.JSONDecodeError:
        return name, value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_scale",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=0.1, help="tenant of the simulated days")
    parser.add_argument("--days", type=int, default=14)
    parser.add_argument("--budget-scale", type=float, default=None,
                        help="daily budget x this (default: --scale)")
    parser.add_argument("--plan-scale", type=float, default=1.0)
    parser.add_argument("--skip-plan", action="store_true")
    parser.add_argument("--skip-days", action="store_true")
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--late-share", type=float, default=None,
                        help="the tenant's share of late changes (default: its own, 0.05)")
    parser.add_argument("--setting", type=_setting, action="append", default=[],
                        metavar="NAME=JSON", help="another tap setting for the days' runs")
    parser.add_argument("--truth-every", type=int, default=0,
                        help="read /_sandbox/truth whole every N days (always: day 0, the last)")
    parser.add_argument("--plan-timeout", type=float, default=3600)
    parser.add_argument("--run-timeout", type=float, default=4 * 3600)
    parser.add_argument("--work", type=Path, help="keep run files here (default: a temp dir)")
    parser.add_argument("--keep-output", action="store_true", help="keep each run's stdout")
    args = parser.parse_args(argv)
    budget = daily_budget()
    figures: dict[str, t.Any] = {}
    if not args.skip_plan:
        figures["plan"] = plan(args, budget)
    if not args.skip_days:
        figures.update(days(args, budget))
    print("BENCH_SCALE " + json.dumps(figures, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
