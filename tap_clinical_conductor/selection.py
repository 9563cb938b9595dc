"""Which parents a per-parent stream reads this run, under the run's request budget.

A per-parent stream (the documents of every study, the elements of every patient visit) costs one
request per parent, and the API has no change feed and no change timestamp on children: on a
large tenant, reading every parent every day takes days. So each run chooses.

Without a budget (``max_requests_per_run`` and ``max_run_minutes`` unset) every parent is read,
in listing order, and nothing else is requested: small tenants keep complete reads. With a
budget, each per-parent stream reads, in this order and as far as its share of the budget goes:

1. **new** parents: ids above ``read_to``, the id up to which this stream has read every parent;
2. **changed** parents: the parent's change field (a study's ``lastUpdatedOn``) at or after the
   start of the last run that read every changed parent, minus the lookback;
3. **live** parents, from signals this run reads from cheap top-level lists: a study whose
   ``status`` is not in ``closed_study_statuses``, or with patient visits, appointments or
   subject status events within ``active_window_days`` of today; a patient visit that is
   Started or whose due window (``minDueDate``..``maxDueDate``, ``targetDueDate``) is that close,
   or that may have left Started since the last run (``StartedDays``: one fingerprint per due
   day of the visits Started then; a day whose fingerprint moved has its visits read);
4. the **sweep**: every other parent, ascending from a cursor kept in the state, wrapping around.

Each parent is read at most once per run. The state of a stream (``SweepState``: a few numbers,
whatever the tenant's size) bounds staleness: every parent was read after ``swept_since``, the
start of the last completed sweep cycle. "Today" and every instant here are the tenant's clock
(the ``Date`` header of its answers), so simulated days work and a skewed local clock changes
nothing.

The budget is the run's: requests and minutes, top-level streams, listings and workers alike.
Top-level streams run first and are read whole. When a per-parent stream starts, it takes a share
of what is left: first the prioritised parents of it and of the per-parent streams still to
come, then the sweep, in proportion to their other parents, so that every stream gets about the
same sweep period. A stream stops at a partition boundary and its state says exactly how far it
got; a killed run resumes from its last STATE message the same way.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import datetime as dt
import logging
import math
import struct
import time
import typing as t
from array import array
from dataclasses import dataclass, field

from tap_clinical_conductor.catalogue import BY_NAME, Endpoint
from tap_clinical_conductor.client import CCClient
from tap_clinical_conductor.errors import BadRequest, EndpointUnavailable, RequestFailed
from tap_clinical_conductor.fanout import RESULTS_PER_WORKER
from tap_clinical_conductor.filters import ChangeFilter, FilterFormats
from tap_clinical_conductor.paging import Pager
from tap_clinical_conductor.parents import Column, ParentListing, ParentRows
from tap_clinical_conductor.records import dig
from tap_clinical_conductor.settings import Settings
from tap_clinical_conductor.timestamps import UTC, TimestampError, parse_datetime

#: Why a parent is read, in priority order.
NEW, CHANGED, LIVE, SWEEP = "new", "changed", "live", "sweep"
REASONS = (NEW, CHANGED, LIVE, SWEEP)
#: Where a per-parent stream keeps its ``SweepState`` inside its Singer stream state.
STATE_KEY = "sweep"
#: The parent fields a listing keeps for the signals (the change fields: the API's, the plan's).
CHANGE_FIELDS = ("lastUpdatedOn", "modifiedDate")
KEEP: dict[str, tuple[Column, ...]] = {
    "studies": (Column("status", "text"), *(Column(f, "time") for f in CHANGE_FIELDS)),
    "patient_visits": (
        Column("status", "text"),
        Column("minDueDate", "time"),
        Column("maxDueDate", "time"),
        Column("targetDueDate", "time"),
        Column("study.id", "int"),
        *(Column(f, "time") for f in CHANGE_FIELDS),
    ),
    "patients": tuple(Column(f, "time") for f in CHANGE_FIELDS),
}
#: A patient visit in this status is live whatever its dates.
STARTED_VISIT = "Started"
#: A visit Started at the last run and completed since has no date that says so. The state keeps
#: a fingerprint of the Started visits per due day, for due days this close to today.
STARTED_DAYS = 180
#: Top-level lists whose dates mark a study live: (stream, date field, study id path).
STUDY_ACTIVITY_LISTS = (("appointments", "plannedStart"), ("subject_statuses", "eventDate"))
#: Requests one partition may need: its page, and for a 404 whether its parent is still there.
PARTITION_HEADROOM = 2
#: A long per-parent stream writes its state (a STATE message) this often, in seconds or parents.
CHECKPOINT_SECONDS = 60.0
CHECKPOINT_PARENTS = 500
DAY_SECONDS = 86_400.0
#: The coverage stream: one record per run and stream (``coverage_record``).
COVERAGE_STREAM = "cc_sync_coverage"
COVERAGE_KEY = ["instance_id", "stream", "run_started_at"]
_NUM = {"type": ["number", "null"]}
_INT = {"type": ["integer", "null"]}
COVERAGE_SCHEMA: dict[str, t.Any] = {
    "type": "object",
    "properties": {
        "instance_id": {"type": "string"},
        "stream": {"type": "string"},
        "run_started_at": {"type": "string", "format": "date-time"},
        "tenant_today": {"type": ["string", "null"], "format": "date-time"},
        "parents_total": _INT,
        "read_new": _INT,
        "read_changed": _INT,
        "read_live": _INT,
        "read_sweep": _INT,
        "unread_new": _INT,
        "requests": {"type": "integer"},
        "records": {"type": "integer"},
        "sweep_cursor": _INT,
        "sweep_done_share": _NUM,
        "sweep_period_days": _NUM,
        "staleness_bound_hours": _NUM,
        "budget_stopped": {"type": "boolean"},
    },
    "required": ["instance_id", "stream", "run_started_at", "requests"],
}


def _iso(seconds: float | None) -> str | None:
    if seconds is None:
        return None
    return dt.datetime.fromtimestamp(seconds, dt.timezone.utc).isoformat(timespec="seconds")


def _seconds(text: object) -> float | None:
    if not isinstance(text, str):
        return None
    try:
        return parse_datetime(text, UTC).timestamp()
    except (TimestampError, OverflowError, ValueError):
        return None


@dataclass
class SweepState:
    """What a per-parent stream remembers between runs: a few numbers, whatever the tenant's size.

    Attributes:
        read_to: Every parent with an id up to this one was read at least once (``None``: none).
        cursor: Every parent with an id up to this one (and up to ``read_to``) was read after
            ``cycle_started_at``; the sweep goes on above it.
        cycle_started_at: Start of the current sweep cycle (tenant clock, POSIX seconds).
        swept_since: Start of the last completed cycle: every parent was read after it.
        changed_since: Changes to parents before this instant were read.
        last_run_at: Start of the previous run (the pace of the sweep).
        unavailable: The endpoint answered 404/501 last run: it gets no share of the budget.
        started: Per-visit streams: the visits Started at the last run, as fingerprints per due
            day (``StartedDays``).
        runs: The runs of the current cycle: (cursor at the run's end, the run's start).
        prev_runs: The same for the last completed cycle: a parent above the cursor was last read
            by the run of that cycle whose cursor first passed it (``staleness_hours``).
    """

    read_to: int | None = None
    cursor: int = 0
    cycle_started_at: float | None = None
    swept_since: float | None = None
    changed_since: float | None = None
    last_run_at: float | None = None
    unavailable: bool = False
    started: StartedDays | None = None
    runs: list[tuple[int, float]] = field(default_factory=list)
    prev_runs: list[tuple[int, float]] = field(default_factory=list)

    @classmethod
    def load(cls, raw: object) -> SweepState:
        """The state as a STATE message kept it; anything unreadable starts afresh."""
        if not isinstance(raw, dict):
            return cls()
        read_to = raw.get("read_to")
        cursor = raw.get("cursor")
        return cls(
            read_to=read_to if isinstance(read_to, int) else None,
            cursor=cursor if isinstance(cursor, int) else 0,
            cycle_started_at=_seconds(raw.get("cycle_started_at")),
            swept_since=_seconds(raw.get("swept_since")),
            changed_since=_seconds(raw.get("changed_since")),
            last_run_at=_seconds(raw.get("last_run_at")),
            unavailable=raw.get("unavailable") is True,
            started=StartedDays.load(raw.get("started")),
            runs=_runs(raw.get("runs")),
            prev_runs=_runs(raw.get("prev_runs")),
        )

    def dump(self) -> dict[str, t.Any]:
        """The JSON kept in the stream's state."""
        out: dict[str, t.Any] = {}
        for item in dataclasses.fields(self):
            name, value = item.name, getattr(self, item.name)
            if name.endswith(("_at", "_since")):
                value = _iso(value)
            elif name == "started":
                value = None if value is None else value.dump()
            elif name.endswith("runs"):
                value = [[cursor, _iso(at)] for cursor, at in value] or None
            if value is not None and value is not False:
                out[name] = value
        return out

    def staleness_hours(self, now: float) -> float | None:
        """The longest any parent can have gone unread at ``now`` (``None``: not all read yet).

        Parents up to the cursor were read in this cycle, after its start; a parent above it was
        last read by the run of the previous cycle that swept past it.
        """
        if not self.prev_runs:
            return None
        oldest = next((at for cursor, at in self.prev_runs if cursor > self.cursor), None)
        if oldest is None:
            oldest = self.prev_runs[-1][1]
        if self.cursor > 0 and self.cycle_started_at is not None:
            oldest = min(oldest, self.cycle_started_at)
        return max(0.0, (now - oldest) / 3600)


#: Runs kept per cycle in the state; more are merged (conservatively: the earlier start).
MAX_RUNS_KEPT = 10


def _runs(raw: object) -> list[tuple[int, float]]:
    out = []
    for item in raw if isinstance(raw, list) else ():
        if isinstance(item, list) and len(item) == 2 and isinstance(item[0], int):
            at = _seconds(item[1])
            if at is not None:
                out.append((item[0], at))
    return out


def _compact(runs: list[tuple[int, float]]) -> list[tuple[int, float]]:
    """At most ``MAX_RUNS_KEPT`` runs: neighbours merge into one that started with the first."""
    runs = list(runs)
    while len(runs) > MAX_RUNS_KEPT:
        i = min(range(len(runs) - 1), key=lambda k: runs[k + 1][1] - runs[k][1])
        runs[i : i + 2] = [(runs[i + 1][0], runs[i][1])]
    return runs


_MASK32 = 0xFFFFFFFF
_MASK64 = 0xFFFFFFFFFFFFFFFF


def _print_of(visit_id: int) -> int:
    """A visit id's 32-bit share of its day's fingerprint.

    A 64-bit finaliser, so that no sum of a few nearby ids equals another's, as it would with a
    linear hash.
    """
    x = visit_id & _MASK64
    x = ((x ^ (x >> 33)) * 0xFF51AFD7ED558CCD) & _MASK64
    x = ((x ^ (x >> 33)) * 0xC4CEB9FE1A85EC53) & _MASK64
    return (x ^ (x >> 33)) & _MASK32


@dataclass(frozen=True)
class StartedDays:
    """The visits Started at a run, as one fingerprint per due day: a few hundred bytes.

    A visit Started at the last run and completed since says so nowhere (PatientVisitPreview has
    no completion date), and the set of Started visits is too large for the state. Its
    fingerprint per day (the sum of the Started visits' hashed ids, by the day of their latest
    due date) is small, and moves when any visit of that day leaves Started (or enters it). The
    visits of a day whose fingerprint moved are read; the other days' are not.

    Attributes:
        first: The day number (days since 1970-01-01) of ``prints[0]``.
        prints: One fingerprint per day from ``first`` (0: no Started visit that day).
        dirty: Days that moved at a run that did not read all their visits: they stay moved
            until a run does.
    """

    first: int = 0
    prints: tuple[int, ...] = ()
    dirty: frozenset[int] = frozenset()

    @classmethod
    def of(cls, started: t.Iterable[tuple[int, int]]) -> StartedDays:
        """From (visit id, due day) pairs."""
        sums: dict[int, int] = {}
        for visit_id, day in started:
            sums[day] = (sums.get(day, 0) + _print_of(visit_id)) & _MASK32
        if not sums:
            return cls()
        first, last = min(sums), max(sums)
        return cls(first, tuple(sums.get(day, 0) for day in range(first, last + 1)))

    def at(self, day: int) -> int:
        """The fingerprint of ``day`` (0 outside the days kept)."""
        index = day - self.first
        return self.prints[index] if 0 <= index < len(self.prints) else 0

    def moved(self, now: StartedDays, low: int, high: int) -> frozenset[int]:
        """Days within ``low``..``high`` whose Started visits changed since this one, or dirty."""
        moved = {day for day in range(low, high + 1) if self.at(day) != now.at(day)}
        moved.update(day for day in self.dirty if low <= day <= high)
        return frozenset(moved)

    def dump(self) -> dict[str, t.Any]:
        """The JSON kept in the state: the fingerprints as base64 of little-endian uint32."""
        out: dict[str, t.Any] = {
            "first": self.first,
            "prints": base64.b64encode(struct.pack(f"<{len(self.prints)}I", *self.prints)).decode(
                "ascii"
            ),
        }
        if self.dirty:
            out["dirty"] = sorted(self.dirty)
        return out

    @classmethod
    def load(cls, raw: object) -> StartedDays | None:
        """The fingerprints a state kept (``None``: none, or unreadable, so that nothing moved)."""
        if not isinstance(raw, dict) or not isinstance(raw.get("first"), int):
            return None
        try:
            packed = base64.b64decode(str(raw.get("prints", "")), validate=True)
            prints = struct.unpack(f"<{len(packed) // 4}I", packed[: len(packed) // 4 * 4])
        except (binascii.Error, ValueError, struct.error):
            return None
        dirty = raw.get("dirty")
        days = frozenset(d for d in dirty if isinstance(d, int)) if isinstance(dirty, list) else ()
        return cls(raw["first"], tuple(prints), frozenset(days))


class RunBudget:
    """The run's requests and minutes, shared by every stream and worker."""

    def __init__(self, settings: Settings, client: CCClient, started: float) -> None:
        """``started``: ``time.monotonic()`` when the run started."""
        self.client = client
        self.max_requests = settings.max_requests_per_run
        self.rate = settings.max_requests_per_second
        minutes = settings.max_run_minutes
        self.deadline = None if minutes is None else started + minutes * 60.0

    @property
    def limited(self) -> bool:
        """Whether the run has a budget at all."""
        return self.max_requests is not None or self.deadline is not None

    def used(self) -> int:
        """Requests made so far in the run (retries included)."""
        return self.client.counters["requests"]

    def remaining(self, in_flight: int = 0) -> float:
        """Requests left: the lesser of the request budget and the minutes left at the rate."""
        left = math.inf
        if self.max_requests is not None:
            left = self.max_requests - self.used() - in_flight
        if self.deadline is not None:
            left = min(left, (self.deadline - time.monotonic()) * self.rate - in_flight)
        return left


_CODE = {reason: code for code, reason in enumerate(REASONS)}


@dataclass
class _Segments:
    """One stream's parents in read order with the reason of each, computed once per run.

    Budgeted, the order is new, changed, live, then the sweep: ids above the cursor
    (``above`` of them) and, after the wrap, the rest. Without a budget it is the listing order.
    """

    order: array[int]
    reasons: bytearray
    counts: dict[str, int]
    above: int
    max_id: int | None
    #: ``child_scope=changed_parents``: no sweep and no state (the stream's bookmark decides).
    fixed: bool = False

    @property
    def total(self) -> int:
        return len(self.order)

    @property
    def priority(self) -> int:
        return self.counts[NEW] + self.counts[CHANGED] + self.counts[LIVE]

    def reason(self, index: int) -> str:
        return REASONS[self.reasons[index]]

    @classmethod
    def build(
        cls, parts: list[tuple[str, t.Iterable[int]]], max_id: int | None, above: int
    ) -> _Segments:
        order: array[int] = array("q")
        reasons = bytearray()
        counts = dict.fromkeys(REASONS, 0)
        for reason, ids in parts:
            before = len(order)
            order.extend(ids)
            added = len(order) - before
            reasons.extend(bytes([_CODE[reason]]) * added)
            counts[reason] += added
        return cls(order, reasons, counts, above, max_id)


class ParentPlan:
    """The parents one per-parent stream reads this run, in order, within its share.

    The reading code iterates it (each id it yields is one partition to fetch), tells it each
    partition it consumed (``read``), and takes the new ``state`` and ``coverage`` from it.
    """

    def __init__(
        self,
        stream: str,
        segments: _Segments,
        state: SweepState,
        *,
        run_started_at: float,
        budget: RunBudget,
        allowance: float,
        budgeted: bool,
        unproven: str | None,
        started: StartedDays | None = None,
    ) -> None:
        self.stream = stream
        self.segments = segments
        self.old = state
        self.run_started_at = run_started_at
        self.budget = budget
        self.allowance = allowance
        self.budgeted = budgeted
        self.unproven = unproven
        self.started = started
        self.read_by = dict.fromkeys(REASONS, 0)
        self.consumed = 0
        self.yielded = 0
        self.stopped = False
        self._start_requests = budget.used()
        self._last_new: int | None = None
        self._last_sweep: tuple[bool, int] | None = None  # (after the wrap, id)
        self._last_checkpoint = time.monotonic()

    @property
    def total(self) -> int:
        """Parents listed."""
        return self.segments.total

    def __iter__(self) -> t.Iterator[int]:
        for parent_id in self.segments.order:
            if self.budgeted and not self._may_take_one():
                self.stopped = True
                return
            self.yielded += 1
            yield parent_id

    def _may_take_one(self) -> bool:
        in_flight = self.yielded - self.consumed
        # Each partition in flight may still need two requests: its page and one more (the end
        # of a short page not yet proven, or whether a parent that answers 404 is still there).
        reserved = PARTITION_HEADROOM * in_flight
        spent = self.budget.used() - self._start_requests + reserved
        return (
            spent + PARTITION_HEADROOM <= self.allowance
            and self.budget.remaining(reserved) >= PARTITION_HEADROOM
        )

    def read(self, parent_id: int) -> None:
        """The partition of ``parent_id`` was consumed (written, or proven gone)."""
        reason = self.segments.reason(self.consumed)
        self.consumed += 1
        self.read_by[reason] += 1
        if reason == NEW:
            self._last_new = max(parent_id, self._last_new or parent_id)
        elif reason == SWEEP:
            self._last_sweep = (self.read_by[SWEEP] > self.segments.above, parent_id)

    def read_every_parent(self) -> bool:
        """Whether every listed parent was read in this run."""
        return self.consumed == self.segments.total

    def checkpoint_due(self) -> bool:
        """Whether the state should go out in a STATE message now (a killed run resumes there)."""
        now = time.monotonic()
        if self.consumed % CHECKPOINT_PARENTS == 0 or now - self._last_checkpoint >= (
            CHECKPOINT_SECONDS
        ):
            self._last_checkpoint = now
            return True
        return False

    def requests(self) -> int:
        """Requests this stream made in this run."""
        return self.budget.used() - self._start_requests

    # -- the state after what was consumed -------------------------------------------------------

    def state(self) -> SweepState:
        """The stream's state as of the partitions consumed so far."""
        old, s, run = self.old, self.segments, self.run_started_at
        if s.fixed:
            return old
        new = dataclasses.replace(
            old,
            unavailable=old.unavailable if self.consumed == 0 else False,
            runs=list(old.runs),
            prev_runs=list(old.prev_runs),
        )
        priority_done = self.consumed >= s.priority
        if self.started is not None:
            # A moved day stays moved until a run has read all the live visits.
            new.started = (
                dataclasses.replace(self.started, dirty=frozenset())
                if priority_done
                else self.started
            )
        if not self.budgeted:
            if self.read_every_parent():
                self._whole_cycle(new)
            return new
        if self.consumed and new.cycle_started_at is None:
            new.cycle_started_at = run
        new_done = self.read_by[NEW] == s.counts[NEW]
        # New parents are read in ascending order: those read make a prefix.
        if new_done and s.counts[NEW]:
            new.read_to = max(s.max_id or 0, old.read_to or 0)
        elif self._last_new is not None:
            new.read_to = self._last_new
        if new.read_to is not None and old.cursor >= (old.read_to or 0):
            # The cursor sat at the top of what was read: parents just read for the first time
            # were read in this cycle too.
            new.cursor = max(old.cursor, new.read_to)
        if new_done and self.read_by[CHANGED] == s.counts[CHANGED]:
            new.changed_since = run
        if priority_done:
            swept = self.read_by[SWEEP]
            if swept >= s.above:
                # Past the highest id: every parent was read after the cycle's start.
                if s.counts[SWEEP] > s.above and swept >= s.counts[SWEEP]:
                    self._whole_cycle(new)  # and round again: every parent, in this run
                    return new
                new.swept_since = new.cycle_started_at
                new.prev_runs = _compact([*new.runs, (s.max_id or new.cursor, run)])
                new.runs = []
                new.cycle_started_at = run
                new.cursor = 0
                if self._last_sweep is not None and self._last_sweep[0]:
                    new.cursor = self._last_sweep[1]
            elif self._last_sweep is not None:
                new.cursor = max(new.cursor, self._last_sweep[1])
        if new.cursor and (new.cursor != old.cursor or (new.runs and new.runs[-1][1] == run)):
            # This run's place in the cycle: the parents it swept were read after it started.
            if new.runs and new.runs[-1][1] == run:
                new.runs[-1] = (new.cursor, run)
            else:
                new.runs = _compact([*new.runs, (new.cursor, run)])
        if self.consumed:
            new.last_run_at = run
        return new

    def _whole_cycle(self, new: SweepState) -> None:
        """Every parent was read in this run: a whole cycle, all of it after the run's start."""
        run, s = self.run_started_at, self.segments
        new.read_to = max(s.max_id or 0, new.read_to or 0)
        new.cursor = 0
        new.swept_since = run
        new.cycle_started_at = None  # the next cycle starts with the next run that sweeps
        new.prev_runs = [(s.max_id or 0, run)]
        new.runs = []
        new.changed_since = run
        new.last_run_at = run

    def coverage(self, now: float, state: SweepState) -> dict[str, t.Any]:
        """The coverage figures of this stream's run (``coverage_record`` adds who and when)."""
        s = self.segments
        swept = self.read_by[SWEEP]
        interval_days = 1.0
        if self.old.last_run_at is not None and self.run_started_at > self.old.last_run_at:
            interval_days = (self.run_started_at - self.old.last_run_at) / DAY_SECONDS
        others = s.total - s.priority
        period: float | None = None
        if not self.budgeted or others <= 0:
            if self.read_every_parent() or others <= 0:
                period = interval_days
        elif swept:
            period = max(1.0, others / swept) * interval_days
        staleness = state.staleness_hours(now)
        done_share = None
        if s.total and s.max_id:
            done_share = round(min(1.0, state.cursor / s.max_id), 4)
        return {
            "parents_total": s.total,
            "read_new": self.read_by[NEW],
            "read_changed": self.read_by[CHANGED],
            "read_live": self.read_by[LIVE],
            "read_sweep": swept,
            "unread_new": s.counts[NEW] - self.read_by[NEW],
            "sweep_cursor": state.cursor,
            "sweep_done_share": done_share,
            "sweep_period_days": None if period is None else round(period, 2),
            "staleness_bound_hours": None if staleness is None else round(staleness, 2),
            "budget_stopped": self.stopped,
        }


def coverage_record(
    instance_id: str,
    stream: str,
    run_started_at: float,
    today: float | None,
    *,
    requests: int,
    records: int,
    figures: t.Mapping[str, t.Any] | None,
) -> dict[str, t.Any]:
    """One ``cc_sync_coverage`` record; a top-level stream (``figures`` ``None``) read it all."""
    record: dict[str, t.Any] = dict.fromkeys(COVERAGE_SCHEMA["properties"])
    record.update(
        instance_id=instance_id,
        stream=stream,
        run_started_at=_iso(run_started_at),
        tenant_today=_iso(today),
        requests=requests,
        records=records,
        budget_stopped=False,
        staleness_bound_hours=0.0,
    )
    if figures is not None:
        record.update(figures)
    return record


@dataclass
class Peer:
    """A selected per-parent stream, as the budget split sees it."""

    name: str
    parent: Endpoint
    state: SweepState


class Activity:
    """The run's activity signals: the tenant's today and the live parents (read once, lazily)."""

    def __init__(
        self,
        listing: ParentListing,
        client: CCClient,
        formats: FilterFormats,
        settings: Settings,
        tenant_tz: dt.tzinfo,
        logger: logging.Logger,
        today: float,
    ) -> None:
        self.listing = listing
        self.client = client
        self.formats = formats
        self.settings = settings
        self.tz = tenant_tz
        self.logger = logger
        self.today = today
        window = settings.active_window_days * DAY_SECONDS
        self.low, self.high = today - window, today + window
        self.closed = {name.strip().casefold() for name in settings.closed_study_statuses}
        self._studies: set[int] | None = None
        self._started_now: StartedDays | None = None
        day = int(today // DAY_SECONDS)
        #: The due days whose Started visits the state keeps.
        self.started_days = (day - STARTED_DAYS, day + STARTED_DAYS)

    def live(
        self, parent: Endpoint, rows: ParentRows, moved: frozenset[int] = frozenset()
    ) -> t.Iterator[int]:
        """Positions in ``rows`` of the live parents.

        ``moved``: due days whose Started visits changed since the last run
        (``StartedDays.dirty`` of ``started``); their visits may have been completed since.
        """
        if parent.name == "studies":
            active = self.live_studies()
            return (i for i, sid in enumerate(rows.ids) if sid in active)
        if parent.name == "patient_visits":
            return (
                i
                for i in range(len(rows.ids))
                if self._visit_live(rows, i) or (moved and _due_day(rows, i) in moved)
            )
        return iter(())

    def started(
        self, parent: Endpoint, rows: ParentRows, before: StartedDays | None
    ) -> StartedDays | None:
        """The visits Started now, with the days moved since ``before`` as ``dirty``.

        ``None``: not visits, or a listing without statuses.
        """
        status = rows.texts.get("status")
        if parent.name != "patient_visits" or status is None:
            return None
        if self._started_now is None:
            low, high = self.started_days
            pairs = []
            for i, name in enumerate(status):
                if name == STARTED_VISIT:
                    day = _due_day(rows, i)
                    if day is not None and low <= day <= high:
                        pairs.append((rows.ids[i], day))
            self._started_now = StartedDays.of(pairs)
        now = self._started_now
        if before is None:
            return now
        return dataclasses.replace(now, dirty=before.moved(now, *self.started_days))

    def live_studies(self) -> set[int]:
        """Studies not closed, or with visits, appointments or status events near today."""
        if self._studies is not None:
            return self._studies
        studies = self.listing.rows(BY_NAME["studies"])
        status = studies.texts.get("status", [])
        live = {
            sid
            for sid, name in zip(studies.ids, status, strict=False)
            if name is None or name.strip().casefold() not in self.closed
        }
        by_status = len(live)
        try:
            visits = self.listing.rows(BY_NAME["patient_visits"])
        except EndpointUnavailable as exc:
            self.logger.warning(
                "Live studies: patient visits could not be listed (HTTP %s); studies are judged "
                "without them",
                exc.status,
            )
            visits = ParentRows(array("q"))
        study_of = visits.ints.get("study.id", array("q"))
        live.update(
            study_of[i]
            for i in range(len(visits.ids))
            if i < len(study_of) and study_of[i] >= 0 and self._visit_live(visits, i)
        )
        for name, date_field in STUDY_ACTIVITY_LISTS:
            live.update(self._studies_with_dates(BY_NAME[name], date_field))
        self.logger.info(
            "Live studies: %d (%d by status; the rest by visits, appointments or subject status "
            "events within %d days of %s)",
            len(live),
            by_status,
            self.settings.active_window_days,
            _iso(self.today),
        )
        self._studies = live
        return live

    def _visit_live(self, rows: ParentRows, i: int) -> bool:
        status = rows.texts.get("status")
        if status is not None and status[i] == STARTED_VISIT:
            return True
        known = _due_dates(rows, i)
        return bool(known) and min(known) <= self.high and max(known) >= self.low

    def _studies_with_dates(self, endpoint: Endpoint, date_field: str) -> set[int]:
        """Study ids of ``endpoint`` rows dated within the window (one filtered read)."""
        since = dt.datetime.fromtimestamp(self.low, dt.timezone.utc)
        pages = Pager(
            self.client,
            endpoint,
            endpoint.path,
            page_size=self.settings.page_size,
            change=ChangeFilter(date_field, since, self.tz),
            formats=self.formats,
            logger=self.logger,
        )
        found: set[int] = set()
        try:
            for page in pages:
                for item in page.items:
                    study = dig(item, "study.id")
                    when = dig(item, date_field)
                    if not isinstance(study, int) or not isinstance(when, str):
                        continue
                    try:
                        instant = parse_datetime(when, self.tz).timestamp()
                    except (TimestampError, OverflowError, ValueError):
                        continue
                    if self.low <= instant <= self.high:
                        found.add(study)
        except (EndpointUnavailable, BadRequest, RequestFailed) as exc:
            self.logger.warning(
                "Live studies: %s could not be read (%s); studies are judged without it",
                endpoint.name,
                exc,
            )
        return found


@dataclass
class ParentSelector:
    """Chooses the parents of every per-parent stream of the run, within the run's budget."""

    listing: ParentListing
    client: CCClient
    formats: FilterFormats
    settings: Settings
    tenant_tz: dt.tzinfo
    logger: logging.Logger
    started: float = field(default_factory=time.monotonic)
    budget: RunBudget = field(init=False)
    _activity: Activity | None = field(default=None, init=False)
    _segments: dict[str, _Segments] = field(default_factory=dict, init=False)
    _started: dict[str, StartedDays | None] = field(default_factory=dict, init=False)
    _begun: set[str] = field(default_factory=set, init=False)
    _warned_clock: bool = field(default=False, init=False)

    def __post_init__(self) -> None:
        self.budget = RunBudget(self.settings, self.client, self.started)

    @property
    def run_started_at(self) -> float:
        """When the run started on the tenant's clock (its first answer's ``Date``)."""
        return self.tenant_now(first=True)

    def tenant_now(self, *, first: bool = False) -> float:
        """The tenant's clock (its latest answer's ``Date``), or this machine's without one."""
        server = self.client.server_time(first=first)
        if server is not None:
            return server.timestamp()
        if not self._warned_clock:
            self._warned_clock = True
            self.logger.warning("The tenant sends no Date header; today is this machine's clock")
        return time.time()

    def begin(
        self,
        stream: str,
        parent: Endpoint,
        state: SweepState,
        peers: list[Peer],
        child_bookmark: str | None = None,
    ) -> ParentPlan:
        """The plan of ``stream``; ``peers``: the selected per-parent streams not yet read.

        ``child_scope=changed_parents`` with a bookmark keeps its own rule: only the parents
        changed since the bookmark (minus the lookback), no sweep, no budget share.

        Raises:
            EndpointUnavailable: The parent's collection answered 404 or 501.
        """
        self.listing.rows(parent)  # an answer carries the tenant's clock
        run = self.run_started_at
        self._begun.add(stream)
        if self.settings.child_scope == "changed_parents" and child_bookmark:
            since = parse_datetime(child_bookmark, UTC) - self.settings.lookback
            ids = self.listing.ids(parent, since)
            fixed = _Segments.build([(CHANGED, ids)], max(ids, default=None), 0)
            fixed.fixed = True
            return ParentPlan(
                stream,
                fixed,
                state,
                run_started_at=run,
                budget=self.budget,
                allowance=math.inf,
                budgeted=False,
                unproven=self.listing.unproven(parent, since),
            )
        budgeted = self.budget.limited
        segments = self._segments_of(stream, parent, state)
        allowance = self._share(stream, segments, peers) if budgeted else math.inf
        if state.unavailable:
            # It answered 404 last run: one parent asks whether it still does.
            allowance = min(max(0.0, self.budget.remaining()), PARTITION_HEADROOM)
        elif budgeted and self._covers_all(stream, segments, peers):
            # The budget covers every parent of this stream and of those to come: read them
            # all, as without a budget.
            budgeted = False
        elif budgeted:
            # The partitions in flight when the share runs out may need a second request each.
            allowance += self._in_flight_slack()
        unproven = self.listing.unproven(parent)
        self.logger.info(
            "%s: %d %s; this run reads %d new, %d changed, %d live, then the sweep from id %d%s",
            stream,
            segments.total,
            parent.name,
            segments.counts[NEW],
            segments.counts[CHANGED],
            segments.counts[LIVE],
            state.cursor,
            f" (share of the budget: {allowance:,.0f} requests)" if budgeted else "",
        )
        return ParentPlan(
            stream,
            segments,
            state,
            run_started_at=run,
            budget=self.budget,
            allowance=allowance,
            budgeted=budgeted,
            unproven=unproven,
            started=self._started_of(stream, parent, state),
        )

    def _share(self, stream: str, own: _Segments, peers: list[Peer]) -> float:
        """The share of the requests left for ``own``: priorities first, then the sweep."""
        probes = PARTITION_HEADROOM * _probes(self._to_come(stream, peers))
        left = max(0.0, self.budget.remaining() - probes)
        return _share(own, self._waiting(stream, peers), left)

    def _to_come(self, stream: str, peers: list[Peer]) -> list[Peer]:
        """The per-parent streams still to come after ``stream``."""
        return [p for p in peers if p.name not in self._begun and p.name != stream]

    def _waiting(self, stream: str, peers: list[Peer]) -> list[_Segments]:
        """The parents of the per-parent streams still to come after ``stream`` (and not 404)."""
        return [
            self._segments_of(p.name, p.parent, p.state)
            for p in self._to_come(stream, peers)
            if not p.state.unavailable
        ]

    def _covers_all(self, stream: str, own: _Segments, peers: list[Peer]) -> bool:
        waiting = sum(s.total for s in self._waiting(stream, peers))
        need = PARTITION_HEADROOM * (own.total + waiting) + self._in_flight_slack()
        return self.budget.remaining() >= need

    def _in_flight_slack(self) -> int:
        """Requests the partitions fetched ahead may still make when a share runs out."""
        return PARTITION_HEADROOM * RESULTS_PER_WORKER * self.settings.max_parallel_requests

    def forecast(self, peers: list[Peer], spent: int) -> dict[str, dict[str, t.Any]]:
        """What one run would read of each of ``peers``, in order, reading no child.

        ``spent``: requests the run makes before its per-parent streams that this client did not
        make (top-level pages counted rather than read). Listings and signals are read (they are
        what a run reads first), and count as the run's.
        """
        planned = 0
        out: dict[str, dict[str, t.Any]] = {}
        for index, peer in enumerate(peers):
            own = self._segments_of(peer.name, peer.parent, peer.state)
            by_reason = dict.fromkeys(REASONS, 0)
            if peer.state.unavailable:
                out[peer.name] = {"parents": own.total, "by_reason": by_reason, "requests": 1}
                planned += 1
                continue
            waiting = [
                self._segments_of(p.name, p.parent, p.state)
                for p in peers[index + 1 :]
                if not p.state.unavailable
            ]
            allowance = math.inf
            if self.budget.limited:
                probes = _probes(peers[index + 1 :])
                left = max(0.0, self.budget.remaining() - spent - planned - probes)
                allowance = _share(own, waiting, left)
            room = allowance
            for reason in (NEW, CHANGED, LIVE, SWEEP):
                by_reason[reason] = int(min(own.counts[reason], max(0.0, room)))
                room -= by_reason[reason]
            reads = sum(by_reason.values())
            planned += reads
            others = own.total - own.priority
            period = None
            if others <= 0 or by_reason[SWEEP] >= others:
                period = 1.0
            elif by_reason[SWEEP]:
                period = others / by_reason[SWEEP]
            out[peer.name] = {
                "parents": own.total,
                "by_reason": by_reason,
                "requests": reads,
                "sweep_period_days": None if period is None else round(period, 2),
            }
        return out

    def state_after(self, peer: Peer, reads: int) -> SweepState:
        """The state ``peer`` leaves once its first ``reads`` parents were read (a forecast's)."""
        segments = self._segments_of(peer.name, peer.parent, peer.state)
        plan = ParentPlan(
            peer.name,
            segments,
            peer.state,
            run_started_at=self.run_started_at,
            budget=self.budget,
            allowance=math.inf,
            budgeted=self.budget.limited,
            unproven=None,
            started=self._started_of(peer.name, peer.parent, peer.state),
        )
        for parent_id in segments.order[:reads]:
            plan.read(parent_id)
        return plan.state()

    def _segments_of(self, stream: str, parent: Endpoint, state: SweepState) -> _Segments:
        if stream in self._segments:
            return self._segments[stream]
        rows = self.listing.rows(parent)
        ids = rows.ids
        max_id = ids[-1] if len(ids) else None
        read_to = state.read_to
        if not self.budget.limited:
            # No budget: every parent, in listing order, and nothing read for signals.
            segments = _Segments.build([], max_id, len(ids))
            segments.order = ids
            segments.reasons = bytearray(
                _CODE[NEW] if read_to is None or pid > read_to else _CODE[SWEEP] for pid in ids
            )
            segments.counts[NEW] = segments.reasons.count(_CODE[NEW])
            segments.counts[SWEEP] = len(ids) - segments.counts[NEW]
            self._segments[stream] = segments
            return segments
        taken = bytearray(len(ids))
        new = []
        for pos, pid in enumerate(ids):
            if read_to is None or pid > read_to:
                new.append(pid)
                taken[pos] = 1
        changed = []
        if state.changed_since is not None:
            since = state.changed_since - self.settings.lookback.total_seconds()
            change = _change_column(rows, self.settings.change_field_overrides.get(parent.name))
            for pos, value in enumerate(change or ()):
                if not taken[pos] and value == value and value >= since:
                    changed.append(ids[pos])
                    taken[pos] = 1
        live = []
        started = self._started_of(stream, parent, state)
        moved = started.dirty if started is not None else frozenset()
        for pos in self._activity_now().live(parent, rows, moved):
            if not taken[pos]:
                live.append(ids[pos])
                taken[pos] = 1
        above = [pid for pos, pid in enumerate(ids) if not taken[pos] and pid > state.cursor]
        below = [pid for pos, pid in enumerate(ids) if not taken[pos] and pid <= state.cursor]
        segments = _Segments.build(
            [(NEW, new), (CHANGED, changed), (LIVE, live), (SWEEP, above), (SWEEP, below)],
            max_id,
            len(above),
        )
        self._segments[stream] = segments
        return segments

    def _started_of(self, stream: str, parent: Endpoint, state: SweepState) -> StartedDays | None:
        """The visits Started now and the days moved since ``state`` (``None``: no budget)."""
        if not self.budget.limited:
            return None
        if stream not in self._started:
            rows = self.listing.rows(parent)
            self._started[stream] = self._activity_now().started(parent, rows, state.started)
        return self._started[stream]

    def _activity_now(self) -> Activity:
        if self._activity is None:
            self._activity = Activity(
                self.listing,
                self.client,
                self.formats,
                self.settings,
                self.tenant_tz,
                self.logger,
                today=self.tenant_now(),
            )
        return self._activity

    @property
    def today(self) -> float | None:
        """The tenant's today the signals were judged by (``None``: no signal was read)."""
        return None if self._activity is None else self._activity.today


def _due_dates(rows: ParentRows, i: int) -> list[float]:
    """The due dates a visit has (``minDueDate``, ``maxDueDate``, ``targetDueDate``; NaN: none)."""
    dates = (rows.times[f][i] for f in ("minDueDate", "maxDueDate", "targetDueDate"))
    return [d for d in dates if d == d]


def _probes(peers: list[Peer]) -> int:
    """The endpoints among ``peers`` that answered 404 last run: each still gets its probe."""
    return sum(1 for p in peers if p.state.unavailable)


def _due_day(rows: ParentRows, i: int) -> int | None:
    """The day number of a visit's latest due date (``None``: it has none)."""
    known = _due_dates(rows, i)
    return int(max(known) // DAY_SECONDS) if known else None


def _share(own: _Segments, waiting: list[_Segments], left: float) -> float:
    """``own``'s share of ``left`` requests, with the streams ``waiting`` after it.

    Prioritised parents first, for all of them; what remains goes to the sweep in proportion to
    each stream's other parents, so that their sweep periods come out about equal.
    """
    group = [own, *waiting]
    priority = sum(s.priority for s in group)
    if left <= priority:
        return left * own.priority / priority if priority else 0.0
    others = sum(s.total - s.priority for s in group)
    own_others = own.total - own.priority
    return own.priority + (left - priority) * (own_others / others if others else 0.0)


def _change_column(rows: ParentRows, override: str | None) -> list[float] | None:
    """Each parent's change instant: the overridden field, else the first change field it has."""
    if override is not None:
        column = rows.times.get(override)
        return None if column is None else list(column)
    columns = [rows.times[f] for f in CHANGE_FIELDS if f in rows.times]
    if not columns:
        return None
    out = []
    for values in zip(*columns, strict=True):
        out.append(next((v for v in values if v == v), math.nan))
    return out
