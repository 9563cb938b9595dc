"""The in-memory warehouse of ``make bench-scale``: merge by key, retire rule, comparisons.

Pure logic: records are written by hand, no tenant and no tap.
"""

from __future__ import annotations

from benchmarks.scale_warehouse import (
    LateChange,
    Warehouse,
    change_key,
    check_table,
    digest,
    view,
    visible,
)
from tap_clinical_conductor.catalogue import BY_NAME
from tap_clinical_conductor.records import record_id

NOTES = BY_NAME["study_notes"].staging_table
T0, T1, T2 = "2026-01-01T00:00:00Z", "2026-01-02T00:00:00Z", "2026-01-03T00:00:00Z"


def _note(wh: Warehouse, study: int, note: int, at: str, text: str = "n") -> None:
    record = {"instance_id": "i", "studyId": study, "id": note, "modifiedDate": None,
              "data": {"id": note, "note": text}}
    wh.record("study_notes", record, at)


def _read(
    wh: Warehouse, parent: int | None, started: str, records: int, bound: str | None = None
) -> None:
    scope = "*" if parent is None else str(parent)
    wh.record("cc_complete_reads", {
        "instance_id": "i", "stream": "study_notes", "scope": scope,
        "staging_table": NOTES, "parent_id": parent, "started_at": started, "lower_bound": bound,
        "records": records}, started)


def _warehouse() -> Warehouse:
    wh = Warehouse()
    wh.schema("study_notes", ["instance_id", "studyId", "id"])
    for note in (1, 2):
        _note(wh, 10, note, T0)
    _note(wh, 11, 3, T0)
    return wh


def test_upsert_keeps_the_last_write() -> None:
    wh = _warehouse()
    _note(wh, 10, 1, T1, "edited")
    assert len(wh.tables[NOTES]) == 3
    assert view(wh, NOTES).live[(10, 1)] == digest({"id": 1, "note": "edited"})


def test_a_parent_read_retires_only_unreturned_rows_of_that_parent() -> None:
    wh = _warehouse()
    _note(wh, 10, 1, T2)  # the read of study 10 at T1 returned note 1 only
    _read(wh, 10, T1, 1)
    assert wh.retired(NOTES) == {("i", 10, 2)}
    tables = view(wh, NOTES)
    assert set(tables.live) == {(10, 1), (11, 3)}


def test_a_read_whose_load_did_not_arrive_whole_retires_nothing() -> None:
    wh = _warehouse()
    _note(wh, 10, 1, T2)
    _read(wh, 10, T1, 2)  # it wrote 2 records, the warehouse holds 1 extracted since
    assert wh.retired(NOTES) == set()


def test_a_whole_stream_read_without_records_retires_nothing() -> None:
    wh = _warehouse()
    _note(wh, 11, 3, T0)
    _read(wh, None, T1, 0)
    assert wh.retired(NOTES) == set()


def test_a_parents_empty_read_retires_its_last_child() -> None:
    # The tap writes it only when other parents of the run answered rows (streams.py).
    wh = _warehouse()
    _note(wh, 11, 3, T0)
    _note(wh, 10, 1, T0)
    _read(wh, 11, T1, 0)
    assert wh.retired(NOTES) == {("i", 11, 3)}


def test_a_whole_stream_read_retires_across_parents() -> None:
    wh = _warehouse()
    _note(wh, 10, 2, T2)
    _read(wh, None, T1, 1)
    assert wh.retired(NOTES) == {("i", 10, 1), ("i", 11, 3)}


def test_lost_counts_only_parents_read_and_false_deletions_apart() -> None:
    wh = _warehouse()
    _note(wh, 10, 1, T2)
    _read(wh, 10, T1, 1)  # retires note 2, which the tenant still has: a false deletion
    truth = {(10, 1): digest({"id": 1, "note": "n"}), (10, 2): digest({"id": 2, "note": "n"}),
             (11, 3): digest({"id": 3, "note": "n"}), (11, 4): digest({"id": 4, "note": "n"}),
             (12, 5): digest({"id": 5, "note": "n"})}
    check = check_table(NOTES, view(wh, NOTES), truth, read_parents={10, 11})
    assert check.falsely_retired == {(10, 2)}
    assert check.lost == {(11, 4)}  # study 12 was not read: its row is pending, not lost
    assert check.wrong == 0
    assert check.deletes_pending == 0


def test_wrong_data_pending_deletes_and_duplicates() -> None:
    wh = _warehouse()
    wh.record("study_notes", {"instance_id": "other", "studyId": 10, "id": 1,
                              "data": {"id": 1, "note": "n"}}, T1)
    truth = {(10, 1): digest({"id": 1, "note": "n"}), (10, 2): digest({"id": 2, "note": "x"})}
    check = check_table(NOTES, view(wh, NOTES), truth, read_parents={10})
    assert check.wrong == 1  # note 2's data differs although study 10 was read
    assert check.deletes_pending == 1  # note 3 is gone from the tenant, still live here
    assert check.duplicates == 1  # note 1 under two instance ids


def test_top_level_tables_are_read_whole_or_not_at_all() -> None:
    wh = Warehouse()
    wh.schema("studies", ["instance_id", "id"])
    wh.record("studies", {"instance_id": "i", "id": 1, "data": {"id": 1}}, T0)
    table = BY_NAME["studies"].staging_table
    truth = {(1,): digest({"id": 1}), (2,): digest({"id": 2})}
    assert check_table(table, view(wh, table), truth, read_parents=None).lost == {(2,)}
    assert check_table(table, view(wh, table), truth, read_parents=set()).lost == set()


def test_change_keys_and_visibility() -> None:
    wh = _warehouse()
    views = {NOTES: view(wh, NOTES)}
    change = {"endpoint": "study_notes", "parent": {"studyId": 10}, "id": 2, "kind": "delete"}
    assert change_key(change) == (NOTES, (10, 2))
    assert not visible((NOTES, (10, 2)), views, {NOTES: {}})  # still live: not yet visible
    assert visible((NOTES, (10, 2)), views, {NOTES: {(10, 2): digest({"id": 2, "note": "n"})}})
    assert visible((NOTES, (10, 9)), views, {NOTES: {}})  # neither has it
    statuses = BY_NAME["subject_statuses"]
    key = [265, "Completed", "2026-01-02T03:00:17"]
    served = {"subject": {"Id": 265}, "status": "Completed", "eventDate": key[2]}
    change = {"endpoint": "subject_statuses", "parent": {}, "id": 1615, "key": key}
    assert change_key(change) == (statuses.staging_table, (record_id(statuses, served),))
    assert change_key({"endpoint": "nothing_like_it", "parent": {}, "id": 1}) is None


def test_late_changes_within_the_sweep_period() -> None:
    seen = LateChange(2, (NOTES, (10, 1)), "study_notes", seen_day=8, period_days=6.5)
    assert seen.within(14, None) is True
    assert LateChange(2, (NOTES, (10, 1)), "study_notes", 9, 6.5).within(14, None) is False
    waiting = LateChange(10, (NOTES, (10, 1)), "study_notes")
    assert waiting.within(14, 6.5) is None  # 4 days old, period 6.5: not due yet
    assert waiting.within(17, 6.5) is False


def test_digest_is_canonical_and_drops_nuls() -> None:
    assert digest({"a": 1, "b": "x"}) == digest({"b": "x", "a": 1})
    assert digest({"a": "x\x00y"}) == digest({"a": "xy"})
    assert digest({"a": 1}) != digest({"a": 2})
