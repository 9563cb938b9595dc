"""The activity profile: which studies are active, where subjects and visits are, and when.

A real site's tenant is mostly history: about 8% of its studies are active, subjects sit in
about 7% of them, 90% of patient visits are completed and the pending ones are due around
today. This module draws those columns for a whole table at once (numpy, seeded per table), so
that a tenant of any size starts in seconds; ``model.py`` fills the rest of each record when a
page asks for it. ``README.md`` ("Activity") gives the numbers.
"""

from __future__ import annotations

import functools
import zlib
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import numpy as np

from cc_sandbox.timefmt import zone

DAY = 86_400
YEAR = 365 * DAY
ACTIVITIES = ("reference", "none")

#: The tenant's ``/system/study-statuses``: (name, active, share of studies).
STUDY_STATUSES: tuple[tuple[str, bool, float], ...] = (
    ("Start-up", True, 0.010),
    ("Enrolling", True, 0.030),
    ("Active", True, 0.025),
    ("Follow-up", True, 0.015),
    ("Feasibility Declined", False, 0.100),
    ("Not Selected", False, 0.120),
    ("Terminated", False, 0.100),
    ("Closed", False, 0.600),
)
STATUS_NAMES = tuple(s[0] for s in STUDY_STATUSES)
ACTIVE_CODES = np.array([i for i, s in enumerate(STUDY_STATUSES) if s[1]], dtype=np.int8)
#: Share of active studies with subjects, and of closed ones (together about 7% of studies).
SUBJECTS_IN_ACTIVE = 0.85
SUBJECTS_IN_CLOSED = 0.003
#: Patient visit statuses (PatientVisitPreview's enum order) and their shares.
VISIT_STATUSES = ("Unknown", "Pending", "Completed", "Started")
VISIT_SHARES = (0.01, 0.08, 0.90, 0.01)
APPOINTMENT_STATUSES = ("Unknown", "Pending", "Completed", "Started", "Cancelled", "NoShow")
SUBJECT_STATUSES = ("Prescreened", "Screened", "Randomized", "Dropped", "Completed",
                    "ScreenFailed", "NonQualified", "RunIn", "RunInFailed", "FollowUp")
#: Per-study lists whose rows sit mostly under active studies, and that share.
ACTIVE_WEIGHTED = ("visits", "study_documents", "queries", "study_actions", "study_milestones",
                   "study_notes")
UNDER_ACTIVE = 0.75


@dataclass(frozen=True)
class Code:
    """A column of small integer codes served as the strings ``names[code]``."""

    names: tuple[str, ...]


def table_rng(seed: int, name: str) -> np.random.Generator:
    """The numpy generator of one table's columns."""
    return np.random.default_rng([seed, zlib.crc32(name.encode())])


def make_ids(rng: np.random.Generator, n: int) -> np.ndarray:
    """Ascending ids with gaps, as SQL identities have (80% step 1, else 2-4)."""
    steps = np.where(rng.random(n) < 0.8, 1, rng.integers(2, 5, n))
    return np.cumsum(steps, dtype=np.int64)


def instants(us: np.ndarray) -> np.ndarray:
    """POSIX seconds from integer microseconds, exactly as a served string parses back."""
    return us.astype(np.float64) / 1e6


def whole_seconds(rng: np.random.Generator, clock: float, low: float, high: np.ndarray | float,
                  n: int, fraction_share: float = 0.1) -> np.ndarray:
    """``clock - U(low, high)`` seconds as integer microseconds, some with a fraction."""
    offset = (low + rng.random(n) * (np.asarray(high) - low)).astype(np.int64)
    us = (np.int64(int(clock)) - offset) * 1_000_000
    if fraction_share:
        frac = rng.integers(1, 1_000_000, n)
        us += np.where(rng.random(n) < fraction_share, frac, 0)
    return us


@functools.lru_cache(maxsize=8)
def _transitions(tz: str) -> np.ndarray:
    """UTC instants where ``tz`` changes its offset, 2000-2045."""
    zinfo = zone(tz)
    out: list[float] = []
    start = datetime(2000, 1, 1, tzinfo=timezone.utc)
    prev = start.astimezone(zinfo).utcoffset()
    for day in range(1, 46 * 366):
        moment = start + timedelta(days=day)
        offset = moment.astimezone(zinfo).utcoffset()
        if offset != prev:
            low, high = moment - timedelta(days=1), moment
            while high - low > timedelta(seconds=1):
                mid = low + (high - low) / 2
                if mid.astimezone(zinfo).utcoffset() == prev:
                    low = mid
                else:
                    high = mid
            out.append(high.timestamp())
            prev = offset
    return np.array(out, dtype=np.float64)


def avoid_dst(us: np.ndarray, tz: str) -> np.ndarray:
    """Move instants within two hours of a DST change four hours on.

    A naive local string in the repeated hour parses back to another instant; the filter's
    columns must hold exactly what the served string means.
    """
    marks = _transitions(tz)
    if not len(marks) or not len(us):
        return us
    seconds = us // 1_000_000
    pos = np.searchsorted(marks, seconds.astype(np.float64))  # as numpy would, but faster
    near = np.zeros(len(us), dtype=bool)
    for k in (pos - 1, pos):
        valid = (k >= 0) & (k < len(marks))
        kk = np.clip(k, 0, len(marks) - 1)
        near |= valid & (np.abs(seconds - marks[kk]) < 2 * 3600)
    return np.where(near, us + 4 * 3600 * 1_000_000, us)


def weighted_parents(rng: np.random.Generator, parent_ids: np.ndarray, weights: np.ndarray,
                     n: int) -> np.ndarray:
    """``n`` parent ids drawn with the given (unnormalised) weights."""
    cum = np.cumsum(weights, dtype=np.float64)
    # Sorted draws make the search cache-friendly (20x faster on millions); then shuffle.
    picks = np.searchsorted(cum, np.sort(rng.random(n)) * cum[-1], side="right")
    return rng.permutation(parent_ids[np.minimum(picks, len(parent_ids) - 1)])


def study_columns(rng: np.random.Generator, n: int, clock: float, activity: str,
                  tz: str) -> dict[str, np.ndarray]:
    """Status, last update and creation of ``n`` studies."""
    shares = np.array([s[2] for s in STUDY_STATUSES])
    if activity == "none":
        shares = np.ones(len(STUDY_STATUSES))
    codes = np.searchsorted(np.cumsum(shares) / shares.sum(), rng.random(n), side="right")
    codes = np.minimum(codes, len(STUDY_STATUSES) - 1).astype(np.int8)
    active = np.isin(codes, ACTIVE_CODES)
    if activity == "none":
        changed = whole_seconds(rng, clock, DAY, 4 * YEAR, n)
    else:
        recent = np.minimum(rng.exponential(20 * DAY, n) + 3600, 2 * YEAR)
        old = 90 * DAY + rng.random(n) * (15 * YEAR - 90 * DAY)
        changed = whole_seconds(rng, clock, 0, np.where(active, recent, old), n)
    changed = avoid_dst(changed, tz)
    age = (30 * DAY + rng.random(n) * 4 * YEAR).astype(np.int64)
    created = avoid_dst((changed // 1_000_000 - age) * 1_000_000, tz)
    return {"status": codes, "changed": instants(changed), "createdOn": instants(created)}


def subject_studies(rng: np.random.Generator, status: np.ndarray, activity: str) -> np.ndarray:
    """Which studies have subjects (a boolean mask)."""
    if activity == "none":
        return np.ones(len(status), dtype=bool)
    active = np.isin(status, ACTIVE_CODES)
    roll = rng.random(len(status))
    mask = np.where(active, roll < SUBJECTS_IN_ACTIVE, roll < SUBJECTS_IN_CLOSED)
    if not mask.any():
        mask[int(np.argmax(active))] = True
    return mask


def visit_columns(rng: np.random.Generator, n: int, clock: float, activity: str,
                  tz: str) -> dict[str, np.ndarray]:
    """Status and due dates of ``n`` patient visits: pending ones due around today."""
    shares = np.array(VISIT_SHARES if activity == "reference" else (0.25,) * 4)
    codes = np.searchsorted(np.cumsum(shares), rng.random(n) * shares.sum(), side="right")
    codes = np.minimum(codes, 3).astype(np.int8)
    day0 = int(clock) // DAY * DAY  # due dates fall on whole hours
    past = rng.random(n) * 15 * YEAR
    pending = -120 * DAY + rng.random(n) * 10 * DAY  # due in the next 10 to 120 days ...
    pending = np.where(rng.random(n) < 0.25, rng.random(n) * 10 * DAY, pending)  # or just past
    started = -3 * DAY + rng.random(n) * 10 * DAY
    back = np.select([codes == 1, codes == 3], [pending, started], past)
    target = (day0 - back) // 3600 * 3600 + 12 * 3600
    half = rng.choice(np.array([3, 7, 14]), n) * DAY
    cols = {"status": codes}
    for name, values in (("targetDueDate", target), ("minDueDate", target - half),
                         ("maxDueDate", target + half)):
        cols[name] = instants(avoid_dst(values.astype(np.int64) * 1_000_000, tz))
    return cols


def element_completion(rng: np.random.Generator, status: np.ndarray, target: np.ndarray,
                       high: np.ndarray, clock: float) -> np.ndarray:
    """``completedOn`` of visit elements from their visit: set for completed visits only."""
    n = len(status)
    done = target + rng.random(n) * np.maximum(high - target, 3600)
    done = np.minimum(np.floor(done), int(clock) - 3600)
    started_done = (status == 3) & (rng.random(n) < 0.5)
    return np.where((status == 2) | started_done, done, np.nan)
