"""``StartedDays``: the fingerprints of the Started visits per due day (pure logic)."""

from __future__ import annotations

import json

from tap_clinical_conductor.selection import StartedDays, SweepState


def test_a_day_moves_when_a_visit_leaves_or_enters_started_and_no_other_does():
    before = StartedDays.of([(10, 100), (11, 100), (12, 101), (40, 105)])
    after = StartedDays.of([(10, 100), (11, 100), (40, 105), (41, 103)])
    assert before.moved(after, 0, 1000) == {101, 103}
    assert before.moved(before, 0, 1000) == frozenset()
    # Only the days within the range asked.
    assert before.moved(after, 102, 1000) == {103}


def test_swapping_nearby_ids_within_a_day_moves_it():
    # With a linear hash 10 + 13 == 11 + 12: the day would look unchanged.
    before = StartedDays.of([(10, 7), (13, 7)])
    after = StartedDays.of([(11, 7), (12, 7)])
    assert before.moved(after, 0, 10) == {7}
    one = StartedDays.of([(1, 7)])
    other = StartedDays.of([(2, 7)])
    assert one.moved(other, 0, 10) == {7}


def test_dirty_days_stay_moved_until_cleared():
    before = StartedDays.of([(1, 5)])
    now = StartedDays.of([(1, 5)])
    kept = StartedDays(before.first, before.prints, frozenset({3, 9}))
    assert kept.moved(now, 0, 8) == {3}


def test_the_state_keeps_them_compactly_and_reads_them_back():
    days = StartedDays.of([(visit, 20_000 + visit % 30) for visit in range(1, 2_000)])
    days = StartedDays(days.first, days.prints, frozenset({20_003}))
    state = SweepState(started=days)
    raw = json.loads(json.dumps(state.dump()))
    assert SweepState.load(raw).started == days
    assert len(json.dumps(raw["started"])) < 300  # 30 days of fingerprints, whatever the visits
    assert StartedDays.load({"first": 3, "prints": "not base64!"}) is None
    assert StartedDays.load("nonsense") is None
    assert StartedDays.of([]).moved(StartedDays.of([(5, 2)]), 0, 4) == {2}
