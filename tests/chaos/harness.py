"""The chaos harness: `meltano run` in an isolated project copy, kills, and the checks.

Shared by the chaos tests (``tests/chaos``) and the soak script (``benchmarks/soak.py``).

* :class:`Project` copies ``meltano.yml`` (and what it includes) into a folder of its own and
  links the installed plugin venvs, so that its ``.meltano/run`` (config, catalog and state files
  Meltano writes for each run) and ``.meltano/logs`` belong to it alone: runs here never collide
  with ``make demo``, the e2e tests or another helper running meltano in the repository.
* :class:`Pipeline` is ``meltano run tap-clinical-conductor target-postgres`` against a sandbox and
  a warehouse schema, with a small stream selection (``TAP_CLINICAL_CONDUCTOR__SELECT``), as a
  blocking call or as a background process whose tap or target can be SIGKILLed.
* :func:`check` holds the warehouse against the sandbox's truth: keys, counts and data of every
  selected table, duplicate keys, and that no saved bookmark is ahead of the data.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import shutil
import signal
import subprocess
import time
import typing as t
import zoneinfo
from dataclasses import dataclass, field
from pathlib import Path

from cc_dev import project_root
from cc_dev.meltano_runner import DAILY_STATE_ID, Meltano, MeltanoResult, bin_dir
from cc_dev.warehouse import compare_all, duplicate_keys, read_rows
from tap_clinical_conductor.catalogue import BY_NAME
from tap_clinical_conductor.readplan import find_change_field
from tap_clinical_conductor.records import BadRecord, change_value, record_key, strip_nul
from tap_clinical_conductor.timestamps import parse_datetime

#: The chaos selection: two incremental top-level streams, a big paged one (patient visits), a
#: child read from its top-level twin (subjects) and a per-study fan-out (study notes).
STREAMS = ("studies", "patients", "subjects", "study_notes", "patient_visits")
TAP = "tap-clinical-conductor"
TARGET = "target-postgres"
#: Lines of the tap that announce a retry (client.py: "GET <path>: <problem>; retry k/n in s").
RETRY_LINE = re.compile(r"GET \S+: .*; retry \d+/\d+ in")
THROTTLE_LINE = re.compile(r"HTTP 429 on GET ")


#: Settings of ``kind: decimal``. Meltano 4.4.1 crashes on any such setting given in the
#: environment ("Object of type Decimal is not JSON serializable"), so the chaos runs put them in
#: their project copy's ``dev`` environment, where YAML numbers work.
DECIMAL_SETTINGS = ("backoff_base_seconds", "max_requests_per_second")


class Project:
    """A private copy of the Meltano project that shares the installed plugins."""

    FILES = ("meltano.yml", "transform.meltano.yml", "cc_dev/empty_state.json")

    def __init__(
        self, folder: Path, source: Path | None = None, dev_config: dict | None = None
    ) -> None:
        source = source or project_root()
        self.root = folder
        folder.mkdir(parents=True, exist_ok=True)
        for name in self.FILES:
            if (source / name).exists():
                (folder / name).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy(source / name, folder / name)
        dot = folder / ".meltano"
        dot.mkdir(exist_ok=True)
        for kind in ("extractors", "loaders"):
            link = dot / kind
            if not link.exists():
                link.symlink_to(source / ".meltano" / kind, target_is_directory=True)
        if dev_config:
            self.set_dev_config(dev_config)

    def set_dev_config(self, values: dict) -> None:
        """Set tap settings in the copy's ``dev`` environment (comments are not kept)."""
        import yaml

        path = self.root / "meltano.yml"
        doc = yaml.safe_load(path.read_text())
        env = next(e for e in doc["environments"] if e["name"] == "dev")
        extractors = env.setdefault("config", {}).setdefault("plugins", {})
        extractors = extractors.setdefault("extractors", [])
        tap = next((x for x in extractors if x["name"] == TAP), None)
        if tap is None:
            tap = {"name": TAP, "config": {}}
            extractors.append(tap)
        tap.setdefault("config", {}).update(values)
        path.write_text(yaml.safe_dump(doc, sort_keys=False))

    def texts(self) -> dict[str, str]:
        """Every file Meltano wrote in the copy (logs, run config, catalog, state), by path."""
        out = {}
        for sub in ("run", "logs"):
            base = self.root / ".meltano" / sub
            if not base.exists():
                continue
            for path in base.rglob("*"):
                if path.is_file() and not path.is_symlink():
                    out[str(path.relative_to(self.root))] = path.read_text(errors="replace")
        return out


@dataclass
class Outcome:
    """One `meltano run`: how it ended and what it said."""

    returncode: int
    output: str
    seconds: float
    killed: str | None = None  # "tap" / "target" when a process was SIGKILLed
    kill_at_request: int | None = None

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    def tail(self, lines: int = 40) -> str:
        return "\n".join(self.output.splitlines()[-lines:])

    @property
    def retries(self) -> int:
        return len(RETRY_LINE.findall(self.output))

    @property
    def throttled(self) -> int:
        return len(THROTTLE_LINE.findall(self.output))


class Pipeline:
    """`meltano run tap-clinical-conductor target-postgres` for one sandbox and schema."""

    def __init__(
        self,
        folder: Path,
        sandbox: t.Any,
        pg: t.Any,
        schema: str,
        *,
        api_key: str,
        streams: t.Sequence[str] = STREAMS,
        log_dir: Path | None = None,
        tap_settings: dict[str, object] | None = None,
        env: dict[str, str] | None = None,
    ) -> None:
        self.sb, self.pg, self.schema = sandbox, pg, schema
        self.streams = tuple(streams)
        settings: dict[str, object] = {
            "page_size": 50,  # more pages: more places for faults and kills
            "max_retries": 6,
            "backoff_base_seconds": 0.05,
            "request_timeout_seconds": 5,
        }
        settings.update(tap_settings or {})
        decimals = {k: v for k, v in settings.items() if k in DECIMAL_SETTINGS}
        self.project = project = Project(folder, dev_config=decimals)
        extra = {
            "TAP_CLINICAL_CONDUCTOR__SELECT": json.dumps([f"{s}.*" for s in self.streams]),
            **{
                f"TAP_CLINICAL_CONDUCTOR_{k.upper()}": _env_value(v)
                for k, v in settings.items()
                if k not in DECIMAL_SETTINGS
            },
            **(env or {}),
        }
        self.meltano = Meltano(
            api_url=sandbox.base_url,
            api_key=api_key,
            database_url=pg.url,
            schema=schema,
            system_db=project.root / "meltano.db",
            extra_env=extra,
            log_dir=log_dir,
        )
        self.meltano.root = project.root
        self.settings = settings
        self.log_dir = log_dir
        self._count = 0

    # -- running ------------------------------------------------------------------------------

    def run(self, *, timeout: float = 600) -> Outcome:
        """A whole run, waited for."""
        return self.start().wait(timeout)

    def start(self, *args: str) -> Running:
        """Start `meltano run` in the background."""
        self._count += 1
        log = (self.log_dir or self.project.root) / f"run-{self._count:02d}.log"
        return Running(self.meltano, list(args) or [TAP, TARGET], log)

    def run_until_quiet(self, *, attempts: int = 3) -> Outcome:
        """Clean runs until one completes with no scheduled tenant change landing during it (a
        change behind the tap's position is the next run's work); returns the last run."""
        for _ in range(attempts):
            executed = len(self.sb.app.executed)
            outcome = self.run()
            if outcome.ok and len(self.sb.app.executed) == executed:
                break
        return outcome

    def command(self, *args: str) -> MeltanoResult:
        return self.meltano(*args)

    def state(self) -> dict:
        """What the next run will start from: ``meltano state get`` (complete and partial state
        merged); ``{}`` when nothing was saved."""
        result = self.meltano("state", "get", DAILY_STATE_ID)
        if result.returncode != 0 or "{" not in result.output:
            return {}
        text = result.output[result.output.index("{") :]
        return json.loads(text[: text.rindex("}") + 1])

    def saved_state(self) -> dict:
        """The same as :meth:`state`, read from the system database in milliseconds instead of a
        meltano start-up (Meltano's own merge of partial onto complete state)."""
        import sqlite3

        from meltano.core.utils import merge

        path = self.project.root / "meltano.db"
        if not path.exists():
            return {}
        with sqlite3.connect(path) as db:
            try:
                row = db.execute(
                    "SELECT partial_state, completed_state FROM state WHERE state_id = ?",
                    (DAILY_STATE_ID,),
                ).fetchone()
            except sqlite3.OperationalError:  # no state table yet
                return {}
        if not row:
            return {}
        return merge(json.loads(row[0] or "{}"), json.loads(row[1] or "{}"))

    # -- checking -----------------------------------------------------------------------------

    def check(self, state: dict | None = None) -> Check:
        """Tables vs truth, duplicate keys, bookmarks of ``state`` (default: the saved one)."""
        state = self.saved_state() if state is None else state
        with self.pg.connect() as conn:
            return check(conn, self.schema, self.sb, self.streams, state, self.lookback_minutes)

    def check_bookmarks(self, state: dict | None = None) -> list[str]:
        """Only the bookmark invariant (valid after a failed or killed run too)."""
        state = self.saved_state() if state is None else state
        with self.pg.connect() as conn:
            return bookmark_violations(
                conn, self.schema, self.sb, self.streams, state, self.lookback_minutes
            )

    @property
    def lookback_minutes(self) -> float:
        return float(self.settings.get("lookback_minutes", 60))  # the tap's default


def _env_value(value: object) -> str:
    if isinstance(value, (dict, list)):
        return json.dumps(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


class Running:
    """A background `meltano run` whose plugin processes can be found and killed."""

    def __init__(self, meltano: Meltano, args: list[str], log: Path) -> None:
        self.log = log
        self._out = log.open("w")
        self.started = time.perf_counter()
        self.proc = subprocess.Popen(
            [str(bin_dir() / "meltano"), "run", *args],
            cwd=meltano.root,
            env=meltano.env,
            stdout=self._out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # the whole tree can be stopped if a test times out
        )
        self.killed: str | None = None
        self.kill_at_request: int | None = None

    def plugin_pid(self, name: str) -> int | None:
        """Pid of the running plugin executable ``name`` below this meltano (``/proc`` scan)."""
        for pid in _descendants(self.proc.pid):
            try:
                argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if any(Path(a.decode(errors="replace")).name == name for a in argv[:2]):
                return pid
        return None

    def kill(self, name: str) -> bool:
        """SIGKILL plugin ``name`` (``tap-clinical-conductor`` / ``target-postgres``)."""
        pid = self.plugin_pid(name)
        if pid is None:
            return False
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            return False
        self.killed = name
        return True

    def wait_for(self, predicate: t.Callable[[], bool], timeout: float = 120) -> bool:
        """Poll until ``predicate()`` or the run ends; True if the predicate held."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return True
            if self.proc.poll() is not None:
                return False
            time.sleep(0.02)
        return False

    def wait(self, timeout: float = 600) -> Outcome:
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            code = self.proc.wait()
        self._out.close()
        return Outcome(
            code,
            self.log.read_text(errors="replace"),
            time.perf_counter() - self.started,
            self.killed,
            self.kill_at_request,
        )


def _descendants(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry))
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        for child in children.get(pid, []):
            out.append(child)
            todo.append(child)
    return out


def kill_after_requests(running: Running, sandbox: t.Any, plugin: str, requests: int) -> bool:
    """SIGKILL ``plugin`` once the tenant has answered ``requests`` API requests in this run.

    Also waits for the plugin's process: Meltano starts the tap and the target together, and a
    fast tap can pass ``requests`` before the target's executable is running.
    """
    reached = running.wait_for(
        lambda: sandbox.stats()["requests"] >= requests and running.plugin_pid(plugin) is not None
    )
    if not reached:
        return False
    running.kill_at_request = sandbox.stats()["requests"]
    return running.kill(plugin)


# -- checks ------------------------------------------------------------------------------------


@dataclass
class Check:
    """The warehouse against the truth after a run."""

    problems: dict[str, list[str]] = field(default_factory=dict)  # table -> differences
    duplicates: dict[str, int] = field(default_factory=dict)
    bookmarks: list[str] = field(default_factory=list)  # bookmark-ahead-of-data violations
    missing: int = 0  # truth keys not in the table
    expected: int = 0
    falsely_retired: int = 0  # live rows a complete read retired: false deletions

    @property
    def ok(self) -> bool:
        return not (self.problems or self.duplicates or self.bookmarks)

    def describe(self) -> str:
        parts = [f"{k}: {v}" for k, v in self.problems.items()]
        parts += [f"duplicate keys {self.duplicates}"] if self.duplicates else []
        parts += [f"bookmark ahead of the data: {b}" for b in self.bookmarks]
        return "\n".join(parts) or "ok"


def check(
    conn: t.Any,
    schema: str,
    sandbox: t.Any,
    streams: t.Sequence[str],
    state: dict,
    lookback_minutes: float,
) -> Check:
    result = Check()
    for comparison in compare_all(conn, schema, sandbox, streams):
        result.expected += comparison.expected
        result.falsely_retired += comparison.falsely_retired
        if not comparison.ok:
            result.problems[comparison.table] = comparison.problems
            for problem in comparison.problems:
                if m := re.match(r"(\d+) keys missing", problem):
                    result.missing += int(m.group(1))
        if n := duplicate_keys(conn, schema, BY_NAME[comparison.stream]):
            result.duplicates[comparison.table] = n
    result.bookmarks = bookmark_violations(conn, schema, sandbox, streams, state, lookback_minutes)
    return result


def bookmark_violations(
    conn: t.Any,
    schema: str,
    sandbox: t.Any,
    streams: t.Sequence[str],
    state: dict,
    lookback_minutes: float,
) -> list[str]:
    """Source records a saved bookmark claims are loaded, but are not.

    For every ``replication_key_value`` in ``state`` (stream level and per partition): every record
    of the tenant whose change value is <= the bookmark must be in the table (live), and every
    record changed before ``bookmark - lookback`` must be there with its current data, since the
    next incremental run will never read it again. Records whose change value cannot be read
    (``bad_timestamp``) or which the tap skips by policy (no id) are out of scope.
    """
    bookmarks = (state.get("singer_state") or state).get("bookmarks") or {}
    tz = zoneinfo.ZoneInfo(getattr(sandbox.tenant, "tz", "UTC"))
    out: list[str] = []
    for stream in streams:
        entry = bookmarks.get(stream)
        if not entry:
            continue
        endpoint = BY_NAME[stream]
        entries = [({}, entry), *[(p.get("context") or {}, p) for p in entry.get("partitions", [])]]
        entries = [(c, e) for c, e in entries if e.get("replication_key_value")]
        if not entries:
            continue
        truth = sandbox.truth(stream)
        change_field = find_change_field([r["data"] for r in truth], endpoint.change_candidates)
        loaded = {}
        for row in read_rows(conn, schema, endpoint):
            key = (row[endpoint.parent_key], row["id"]) if endpoint.parent_key else (row["id"],)
            loaded[key] = row["data"]
        for context, bm in entries:
            value = bm["replication_key_value"]
            settled = parse_datetime(value, dt.timezone.utc) - dt.timedelta(
                minutes=lookback_minutes
            )
            missing, stale = [], []
            for row in truth:
                if any(row["parent"].get(k) != v for k, v in context.items()):
                    continue
                try:
                    key = record_key(endpoint, row["parent"], row["data"])
                except BadRecord:
                    continue
                change = change_value(row["data"], change_field, tz)
                if change is None or change > value:
                    continue
                if key not in loaded:
                    missing.append(key)
                elif parse_datetime(change, dt.timezone.utc) < settled and loaded[key] != strip_nul(
                    row["data"]
                ):
                    stale.append(key)
            where = f"{stream}{context or ''} at {value}"
            if missing:
                out.append(f"{where}: {len(missing)} records not loaded, e.g. {missing[:3]}")
            if stale:
                out.append(f"{where}: {len(stale)} records loaded stale, e.g. {stale[:3]}")
    return out


def bookmark_values(state: dict) -> dict[str, str]:
    """Stream -> saved ``replication_key_value`` (stream level), for reports."""
    bookmarks = (state.get("singer_state") or state).get("bookmarks") or {}
    return {s: v for s, b in bookmarks.items() if (v := b.get("replication_key_value"))}


def secret_hits(secret: str, texts: dict[str, str]) -> list[str]:
    """Where ``secret`` appears (name of each text that contains it)."""
    return sorted(name for name, text in texts.items() if secret in text)
