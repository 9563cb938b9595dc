"""Full and incremental syncs against the fake tenant equal its ground truth."""

from __future__ import annotations

import json

import pytest

from tap_clinical_conductor.catalogue import BY_NAME, CATALOGUE
from tap_clinical_conductor.timestamps import normalise, zone

from .conftest import tap_config
from .tapio import Warehouse, catalog_selecting, run_tap, truth_by_key

PLAN_404 = {"screenings", "enrollments", "randomizations", "withdrawals", "concomitant_medications"}
ENTERPRISE_501 = {"engagements", "monitor_queries"}
ALL_STREAMS = {e.name for e in CATALOGUE}


def assert_equal_to_truth(warehouse: Warehouse, sb, streams: set[str]) -> None:
    problems = [d for s in sorted(streams) if (d := warehouse.diff(sb, s))]
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("profile", ["spec", "plan"])
def test_full_sync_of_every_stream_equals_truth(sandbox, tmp_path, profile):
    sb = sandbox(profile=profile)
    config = tap_config(sb)
    catalog = catalog_selecting(config, ALL_STREAMS, tmp_path)
    run = run_tap(config, catalog=catalog)
    assert run.returncode == 0, run.stderr[-3000:]
    warehouse = Warehouse()
    warehouse.apply(run)
    available = ALL_STREAMS - PLAN_404 - ENTERPRISE_501
    assert_equal_to_truth(warehouse, sb, available)
    # Every available stream had rows, so the comparison above compared something.
    empty = sorted(s for s in available if not truth_by_key(sb, s))
    assert not empty, f"sandbox has no rows for {empty}"
    # Missing endpoints cost one clear warning each, never a failed run.
    for name in PLAN_404 | ENTERPRISE_501:
        warnings = [ln for ln in run.stderr.splitlines() if f"Skipping stream {name}:" in ln]
        assert len(warnings) == 1, (name, warnings)
    # One bookmark per stream, no partitions.
    bookmarks = run.state["bookmarks"]
    assert all("partitions" not in b for b in bookmarks.values())


def test_missing_child_endpoint_costs_a_few_requests(sandbox, tmp_path):
    sb = sandbox()
    config = tap_config(sb)
    catalog = catalog_selecting(config, {"screenings"}, tmp_path)
    sb.reset_stats()
    run = run_tap(config, catalog=catalog)
    assert run.returncode == 0, run.stderr[-2000:]
    stats = sb.stats()
    screenings = sum(stats["by_endpoint"].get("screenings", {}).values())
    assert 1 <= screenings <= 3


@pytest.mark.parametrize("profile", ["spec", "plan"])
def test_three_incremental_rounds_lose_nothing(sandbox, tmp_path, profile):
    sb = sandbox(profile=profile)
    config = tap_config(sb, lookback_minutes=30)
    catalog = catalog_selecting(config, None, tmp_path)
    warehouse = Warehouse()
    run = run_tap(config, catalog=catalog)
    assert run.returncode == 0, run.stderr[-3000:]
    warehouse.apply(run)
    selected = {s for s in run.schemas if s in ALL_STREAMS - PLAN_404 - ENTERPRISE_501}
    assert_equal_to_truth(warehouse, sb, selected)
    state = run.state
    first_requests = None
    for _ in range(3):
        sb.advance_clock(seconds=3600)
        sb.update("studies", n=3)
        sb.update("patients", n=4, same_timestamp=True)
        sb.update("patient_visits", n=5)
        sb.insert("subjects", n=2, under="old")
        sb.insert("study_notes", n=2, under="old")
        sb.insert("patient_visit_elements", n=2, under="old")
        sb.update("studies", n=2, backdate_seconds=600)  # late, inside the lookback
        sb.reset_stats()
        run = run_tap(config, catalog=catalog, state=state)
        assert run.returncode == 0, run.stderr[-3000:]
        warehouse.apply(run)
        assert_equal_to_truth(warehouse, sb, selected)
        state = run.state
        if profile == "plan":
            # Incremental: far fewer study rows than a full read.
            assert len(run.records.get("studies", [])) < len(truth_by_key(sb, "studies"))
        first_requests = first_requests or sb.stats()["requests"]
    assert json.dumps(state).count("partitions") == 0


def test_bookmark_is_greatest_change_value_seen(sandbox, tmp_path):
    sb = sandbox(profile="plan")
    config = tap_config(sb)
    catalog = catalog_selecting(config, {"studies"}, tmp_path)
    run = run_tap(config, catalog=catalog)
    assert run.returncode == 0, run.stderr[-2000:]
    values = [r["modifiedDate"] for r in run.records["studies"]]
    bookmark = run.state["bookmarks"]["studies"]["replication_key_value"]
    assert bookmark == max(values)
    # One format for every value: UTC, microseconds, explicit offset.
    assert all(v.endswith("+00:00") and len(v) == 32 for v in values)


def test_child_state_stays_small_with_many_partitions(sandbox, tmp_path):
    sb = sandbox(profile="plan")
    sb.insert("studies", n=10_000)
    config = tap_config(sb, max_parallel_requests=8)
    catalog = catalog_selecting(config, {"study_notes"}, tmp_path)
    run = run_tap(config, catalog=catalog)
    assert run.returncode == 0, run.stderr[-2000:]
    assert len(truth_by_key(sb, "studies")) >= 10_000
    assert len(json.dumps(run.state)) < 10_000


def test_records_carry_keys_and_untouched_data(sandbox, tmp_path):
    sb = sandbox()
    config = tap_config(sb)
    catalog = catalog_selecting(config, {"subjects", "patient_visit_elements"}, tmp_path)
    run = run_tap(config, catalog=catalog)
    assert run.returncode == 0, run.stderr[-2000:]
    subject = run.records["subjects"][0]
    assert set(subject) == {"instance_id", "studyId", "id", "modifiedDate", "data"}
    assert subject["instance_id"] == "sandbox"
    assert subject["studyId"] == subject["data"]["study"]["id"]
    element = run.records["patient_visit_elements"][0]
    assert BY_NAME["patient_visit_elements"].parent_key in element


def test_changed_parents_scope_reads_only_changed_studies(sandbox, tmp_path):
    sb = sandbox(profile="plan")
    config = tap_config(sb, child_scope="changed_parents", lookback_minutes=0)
    catalog = catalog_selecting(config, {"study_notes"}, tmp_path)
    first = run_tap(config, catalog=catalog)
    assert first.returncode == 0, first.stderr[-2000:]
    warehouse = Warehouse()
    warehouse.apply(first)
    assert not warehouse.diff(sb, "study_notes")
    sb.advance_clock(seconds=3600)
    changed = sb.update("studies", n=2)
    sb.insert("study_notes", n=1, parent_ids=[changed[0]])
    sb.insert("study_notes", n=1, under="old")  # under an unchanged study: the trade-off
    sb.reset_stats()
    run = run_tap(config, catalog=catalog, state=first.state)
    assert run.returncode == 0, run.stderr[-2000:]
    per_study = sb.stats()["by_endpoint"].get("study_notes", {})
    since = first.state["bookmarks"]["study_notes"]["replication_key_value"]
    tz = zone("America/New_York")
    changed_since = [
        s for s in truth_by_key(sb, "studies").values() if normalise(s["modifiedDate"], tz) >= since
    ]
    assert 2 <= len(changed_since) < len(truth_by_key(sb, "studies")) / 2
    # About one request per study changed since the bookmark, not one per study. A partition
    # as long as the longest page seen so far costs one more request (the server may cap $top).
    assert len(changed_since) <= sum(per_study.values()) <= 2 * len(changed_since)
    warehouse.apply(run)
    missing = warehouse.diff(sb, "study_notes")
    assert "1 missing" in missing  # the note under the unchanged study waits for a full run


def test_top_level_collection_replaces_per_study_requests(sandbox, tmp_path):
    sb = sandbox()
    config = tap_config(sb)
    catalog = catalog_selecting(config, {"subjects", "visits"}, tmp_path)
    sb.reset_stats()
    run = run_tap(config, catalog=catalog)
    assert run.returncode == 0, run.stderr[-2000:]
    stats = sb.stats()["by_endpoint"]
    assert "subjects" not in stats and sum(stats["subjects_top"].values()) <= 2
    warehouse = Warehouse()
    warehouse.apply(run)
    assert not warehouse.diff(sb, "subjects") and not warehouse.diff(sb, "visits")


def test_without_top_level_collection_it_falls_back_per_study(sandbox, tmp_path):
    sb = sandbox(overrides={"subjects_top": {"status": 404}})
    config = tap_config(sb)
    catalog = catalog_selecting(config, {"subjects"}, tmp_path)
    run = run_tap(config, catalog=catalog)
    assert run.returncode == 0, run.stderr[-2000:]
    assert "reading per studyId instead" in run.stderr
    warehouse = Warehouse()
    warehouse.apply(run)
    assert not warehouse.diff(sb, "subjects")


def test_request_plan_counts_requests_before_syncing(sandbox, tmp_path):
    import subprocess
    import sys

    sb = sandbox()
    config_path = tmp_path / "config.json"
    config_path.write_text(json.dumps(tap_config(sb, max_requests_per_second=5)))
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "tap_clinical_conductor.plan",
            "--config",
            str(config_path),
            "--json",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    rows = {r["stream"]: r for r in map(json.loads, out.stdout.splitlines())}
    visits = len(truth_by_key(sb, "patient_visits"))
    assert rows["patient_visit_elements"]["parents"] == visits
    assert rows["patient_visit_elements"]["requests"] >= visits
    assert rows["study_notes"]["parents"] == len(truth_by_key(sb, "studies"))
    assert rows["patient_visit_elements"]["hours"] == round(
        rows["patient_visit_elements"]["requests"] / 5 / 3600, 2
    )


def test_catalog_full_table_reads_every_record_despite_a_bookmark(sandbox, tmp_path):
    sb = sandbox(profile="plan")
    config = tap_config(sb, lookback_minutes=0)
    catalog = catalog_selecting(config, {"studies"}, tmp_path)
    first = run_tap(config, catalog=catalog)
    assert first.returncode == 0, first.stderr[-2000:]
    everything = sorted(first.keys("studies"))
    assert first.state["bookmarks"]["studies"]["replication_key_value"]
    entries = json.loads(catalog.read_text())
    for entry in entries["streams"]:
        if entry["tap_stream_id"] == "studies":
            entry["replication_method"] = "FULL_TABLE"
    full_catalog = tmp_path / "full-table.json"
    full_catalog.write_text(json.dumps(entries))
    run = run_tap(config, catalog=full_catalog, state=first.state)
    assert run.returncode == 0, run.stderr[-2000:]
    assert sorted(run.keys("studies")) == everything
    assert "replication_key_value" not in run.state["bookmarks"].get("studies", {})
