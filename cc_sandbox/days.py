"""Simulated days: one day of a research site's changes, each written to the change log.

``simulate_day`` moves the tenant clock to 08:00 UTC of the next day and applies the changes a
site makes in a day, seeded by (seed, day) and scaled by the tenant's scale: new studies and
study edits, new subjects and subject status events, visits moving Pending -> Started ->
Completed in their window (their elements completed), new visits and appointments, and new,
edited and deleted rows of the per-study lists, mostly under active studies. A share of the
child changes (``late_share``) are late: under a study closed and untouched today, or an
element corrected on a visit completed long ago, with nothing visible on any parent.

Every change is logged with its ``signal``, how a client can learn of it:

* ``top``: the row itself is in a top-level list (studies, patient visits, appointments,
  subject statuses; subjects through ``/subjects/odata``);
* ``parent_changed``: its parent study's ``lastUpdatedOn`` moved the same day;
* ``parent_active``: its parent study is in an active status, or its parent visit is Started
  or was completed today with a due window within ``ACTIVE_WINDOW_DAYS`` of today;
* ``none``: a late change, announced by nothing.
"""

from __future__ import annotations

import random
from collections import Counter
from typing import TYPE_CHECKING, Any

import numpy as np

from cc_sandbox import activity as act
from cc_sandbox.timefmt import format_utc

if TYPE_CHECKING:
    from cc_sandbox.model import Tenant

#: Changes of one day at scale 1.0 (a busy multi-site network), scaled by ``--scale``.
DAY_VOLUME: dict[str, float] = {
    "new_studies": 12,
    "study_edits": 250,
    "new_subjects": 60,
    "subject_status_events": 120,
    "visit_starts": 700,
    "visit_completions": 700,
    "new_visits": 700,
    "new_appointments": 300,
    "child_inserts": 120,  # per per-study list
    "child_updates": 80,
    "child_deletes": 6,
}
#: Per-study lists a site edits every day.
CHILD_LISTS = ("study_documents", "study_actions", "study_milestones", "study_notes", "queries")
#: Share of study edits on closed studies, and of child changes announced by a study edit.
CLOSED_EDITS = 0.15
PARENT_BUMPED = 0.10
ACTIVE_WINDOW_DAYS = 7
#: A late element correction is on a visit completed at least this long ago.
LATE_VISIT_AGE_DAYS = 365
DAY_START_HOUR = 8


def simulate_day(tenant: Tenant, late_share: float = 0.05) -> dict[str, Any]:
    """Move ``tenant`` to its next day and apply that day's changes.

    Returns:
        ``{"day", "clock", "changes", "by_signal", "by_endpoint"}`` of the day.
    """
    if not 0.0 <= late_share <= 1.0:
        raise ValueError(f"late_share must be within [0, 1], got {late_share}")
    with tenant.lock:
        tenant.day += 1
        start = day_start(tenant.day)
        tenant.clock = max(tenant.clock, start)
        first = len(tenant.changes)
        _Day(tenant, late_share).run()
        made = tenant.changes[first:]
        return {
            "day": tenant.day,
            "clock": format_utc(tenant.clock, 0),
            "changes": len(made),
            "by_signal": dict(Counter(c["signal"] for c in made)),
            "by_endpoint": dict(Counter(c["endpoint"] for c in made)),
        }


def day_start(day: int) -> float:
    """08:00 UTC of simulated day ``day`` (day 0 is the generated tenant)."""
    from cc_sandbox.model import CLOCK_START

    return CLOCK_START + day * act.DAY + DAY_START_HOUR * 3600


class _Day:
    """The changes of one day (one instance per day)."""

    def __init__(self, tenant: Tenant, late_share: float) -> None:
        from cc_sandbox.model import mix

        self.t = tenant
        self.late_share = late_share
        self.rng = random.Random(mix(tenant.seed, tenant.day, 0xDA7))
        studies = tenant.tables["studies"].snap
        self.active = set(studies.ids[np.isin(studies.cols["status"], act.ACTIVE_CODES)].tolist())
        with_subjects = set(tenant.tables["subjects"].snap.cols["parent"].tolist())
        self.quiet_closed = [int(i) for i in studies.ids.tolist()
                             if i not in self.active and i not in with_subjects]
        self.closed = [int(i) for i in studies.ids.tolist() if i not in self.active]
        self.active_list = sorted(self.active)
        self.touched: set[int] = set()  # studies whose lastUpdatedOn moves today

    def count(self, kind: str) -> int:
        """How many changes of ``kind`` today (stochastic rounding keeps small scales honest)."""
        x = DAY_VOLUME[kind] * self.t.scale
        return int(x) + (self.rng.random() < x - int(x))

    def now(self) -> float:
        return float(int(self.t.clock))

    def run(self) -> None:
        self.studies()
        self.children()
        self.subjects()
        self.visits()

    # ------------------------------------------------------------------------------- studies

    def studies(self) -> None:
        t, rng = self.t, self.rng
        n_new = self.count("new_studies")
        if n_new:
            t.insert("studies", n_new, signal="top")
        edits = self.count("study_edits")
        chosen: set[int] = set()
        for _ in range(edits):
            pool = self.closed if rng.random() < CLOSED_EDITS or not self.active_list else (
                self.active_list)
            if pool:
                chosen.add(rng.choice(pool))
        moving = {s for s in chosen if s in self.active and rng.random() < 0.1}
        plain = sorted(chosen - moving)
        if plain:
            t.update("studies", ids=plain, signal="top")
        snap = t.tables["studies"].snap
        for sid in sorted(moving):  # Start-up -> Enrolling -> Active -> Follow-up -> Closed
            code = int(snap.cols["status"][snap.position(sid)])
            nxt = act.STATUS_NAMES.index("Closed") if code == 3 else code + 1
            t.update("studies", ids=[sid], values={"status": nxt}, signal="top")
        self.touched |= chosen

    # ------------------------------------------------------------------ per-study lists

    def children(self) -> None:
        """Inserts, edits and deletes of the per-study lists, batched by list, kind and signal."""
        plans: list[tuple[str, str, str]] = []  # (endpoint, kind, class)
        for name in CHILD_LISTS:
            for kind in ("insert", "update", "delete"):
                for _ in range(self.count(f"child_{kind}s")):
                    roll = self.rng.random()
                    klass = ("late" if roll < self.late_share else
                             "bumped" if roll < self.late_share + PARENT_BUMPED else "active")
                    plans.append((name, kind, klass))
        pools = {"active": set(self.active_list), "bumped": set(self.closed),
                 "late": set(self.quiet_closed) - self.touched}
        signals = {"active": "parent_active", "bumped": "parent_changed", "late": "none"}
        bumped: set[int] = set()
        batches: dict[tuple[str, str, str], list[tuple[int, int]]] = {}
        taken: set[tuple[str, int]] = set()
        for name, kind, klass in plans:
            avoid = bumped if klass == "late" else set()
            picked = self.parent_for(name, kind, pools[klass], avoid, taken)
            if picked is None:
                continue
            if klass == "bumped":
                bumped.add(picked[0])
                pools["late"].discard(picked[0])
            if kind != "insert":
                taken.add((name, picked[1]))
            batches.setdefault((name, kind, signals[klass]), []).append(picked)
        for (name, kind, signal), picks in sorted(batches.items()):
            if kind == "insert":
                self.t.insert(name, len(picks), parent_ids=[sid for sid, _ in picks],
                              signal=signal)
            elif kind == "update":
                self.t.update(name, ids=sorted(rid for _, rid in picks), signal=signal)
            else:
                self.t.delete(name, ids=sorted(rid for _, rid in picks), signal=signal)
        new_bumps = sorted(bumped - self.touched)
        if new_bumps:
            self.t.update("studies", ids=new_bumps, signal="top")
            self.touched |= bumped

    def parent_for(self, name: str, kind: str, pool: set[int], avoid: set[int],
                   taken: set[tuple[str, int]]) -> tuple[int, int] | None:
        """A study of ``pool`` (and, for updates and deletes, one of its rows of ``name``).

        Random draws until one fits: rows sit 75% under active studies and the rest mostly
        under closed ones, so a few draws do, without a pass over the table.
        """
        if not pool:
            return None
        rng = self.rng
        if kind == "insert":
            ordered = sorted(pool)
            for _ in range(50):
                sid = ordered[int(rng.random() * len(ordered))]
                if sid not in avoid:
                    return sid, 0
            return None
        snap = self.t.tables[name].snap
        size = len(snap.ids)
        for _ in range(2000):
            pos = int(rng.random() * size)
            sid, rid = int(snap.cols["parent"][pos]), int(snap.ids[pos])
            if sid in pool and sid not in avoid and (name, rid) not in taken:
                return sid, rid
        return None

    # ------------------------------------------------------------------------------ subjects

    def subjects(self) -> None:
        t, rng = self.t, self.rng
        subjects = t.tables["subjects"].snap
        in_active = np.isin(subjects.cols["parent"], np.array(self.active_list, dtype=np.int64))
        homes = sorted(set(subjects.cols["parent"][in_active].tolist())) or self.active_list
        n_new = self.count("new_subjects")
        if n_new and homes:
            t.insert("subjects", n_new, parent_ids=[rng.choice(homes) for _ in range(n_new)],
                     signal="top")
        candidates = np.nonzero(in_active)[0]
        events = self.count("subject_status_events")
        if events and len(candidates):
            picks = [int(candidates[int(rng.random() * len(candidates))]) for _ in range(events)]
            # One second apart: (subject, status, eventDate) is the key of a status event.
            values = [{"subject": int(subjects.ids[p]), "study": int(subjects.cols["parent"][p]),
                       "status": rng.randrange(len(act.SUBJECT_STATUSES)),
                       "eventDate": self.now() + k} for k, p in enumerate(picks)]
            t.insert("subject_statuses", events, values=values, signal="top")

    # -------------------------------------------------------------------------------- visits

    def visits(self) -> None:
        t, rng = self.t, self.rng
        snap = t.tables["patient_visits"].snap
        now = self.now()
        cols = snap.cols
        due = np.nonzero((cols["status"] == 1) & (cols["minDueDate"] <= now))[0]
        due = due[np.argsort(cols["targetDueDate"][due], kind="stable")][: self.count(
            "visit_starts")]
        started = np.nonzero(cols["status"] == 3)[0]
        started = started[np.argsort(cols["targetDueDate"][started], kind="stable")][: self.count(
            "visit_completions")]
        if len(due):
            t.update("patient_visits", ids=sorted(int(i) for i in snap.ids[due]),
                     values={"status": 3}, signal="top")
        if len(started):
            done_ids = sorted(int(i) for i in snap.ids[started])
            t.update("patient_visits", ids=done_ids, values={"status": 2}, signal="top")
            self.complete_elements(snap, started, now)
        n_new = self.count("new_visits")
        subjects = t.tables["subjects"].snap
        live = np.nonzero(np.isin(subjects.cols["parent"],
                                  np.array(self.active_list, dtype=np.int64)))[0]
        if n_new and len(live):
            picks = [int(live[int(rng.random() * len(live))]) for _ in range(n_new)]
            values = [{"subject": int(subjects.ids[p]), "study": int(subjects.cols["parent"][p])}
                      for p in picks]
            t.insert("patient_visits", n_new, values=values, signal="top")
        self.appointments(now)
        self.late_elements(now)

    def complete_elements(self, snap: Any, positions: np.ndarray, now: float) -> None:
        """Complete the open elements of visits completed today (two batches, by signal)."""
        elements = self.t.tables["patient_visit_elements"]
        esnap = elements.snap
        window = ACTIVE_WINDOW_DAYS * act.DAY
        by_signal: dict[str, list[int]] = {"parent_active": [], "parent_status": []}
        for pos in positions.tolist():
            near = (snap.cols["minDueDate"][pos] - window <= now
                    <= snap.cols["maxDueDate"][pos] + window)
            kids = elements.child_positions(esnap, int(snap.ids[pos]))
            open_ids = [int(esnap.ids[k]) for k in kids if np.isnan(esnap.cols["completedOn"][k])]
            by_signal["parent_active" if near else "parent_status"] += open_ids
        for signal, ids in by_signal.items():
            if ids:
                self.t.update("patient_visit_elements", ids=sorted(ids),
                              values={"completedOn": self.now()}, signal=signal)

    def appointments(self, now: float) -> None:
        t, rng = self.t, self.rng
        snap = t.tables["patient_visits"].snap
        soon = np.nonzero((snap.cols["status"] == 1)
                          & (snap.cols["targetDueDate"] <= now + 30 * act.DAY)
                          & (snap.cols["targetDueDate"] >= now))[0]
        n = self.count("new_appointments")
        if n and len(soon):
            picks = [int(soon[int(rng.random() * len(soon))]) for _ in range(n)]
            values = [{"pv": int(snap.ids[p]), "status": 1,
                       "plannedStart": float(snap.cols["targetDueDate"][p]),
                       "plannedEnd": float(snap.cols["targetDueDate"][p]) + 3600} for p in picks]
            t.insert("appointments", n, values=values, signal="top")

    def late_elements(self, now: float) -> None:
        """Elements corrected on visits completed long ago: nothing on the visit moves."""
        t, rng = self.t, self.rng
        x = DAY_VOLUME["visit_completions"] * t.scale * self.late_share
        n = int(x) + (rng.random() < x - int(x))
        if not n:
            return
        visits = t.tables["patient_visits"].snap
        elements = t.tables["patient_visit_elements"].snap
        done = elements.cols["completedOn"]
        old = np.nonzero(~np.isnan(done) & (done < now - LATE_VISIT_AGE_DAYS * act.DAY))[0]
        if not len(old):
            return
        for _ in range(n):
            pos = int(old[int(rng.random() * len(old))])
            vpos = visits.position(int(elements.cols["parent"][pos]))
            if vpos is None or int(visits.cols["status"][vpos]) != 2:
                continue
            corrected = float(done[pos]) + 3600 * rng.randint(1, 8)
            t.update("patient_visit_elements", ids=[int(elements.ids[pos])],
                     values={"completedOn": corrected}, signal="none")
