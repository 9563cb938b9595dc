"""Parent selection under a budget (issue 14), against the fake tenant at a small scale.

Per-parent streams read new, changed, live, then swept parents within the run's budget; the
sweep cursor and the other numbers of ``SweepState`` carry the next run on from where this one
stopped. Without a budget every parent is read, as ``all_parents`` always did.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tap_clinical_conductor.selection import STATE_KEY, SweepState

from .conftest import tap_config
from .tapio import TAP, catalog_selecting, run_tap

STREAM = "study_notes"


def _studies(sb) -> list[int]:
    return sorted(row["data"]["id"] for row in sb.truth("studies"))


def _sweep(run) -> SweepState:
    return SweepState.load(run.state["bookmarks"][STREAM][STATE_KEY])


def test_without_a_budget_every_parent_is_read_and_no_signal_is_asked(sandbox, tmp_path):
    sb = sandbox()
    config = tap_config(sb)
    catalog = catalog_selecting(config, {STREAM}, tmp_path)
    sb.reset_stats()
    run = run_tap(config, catalog=catalog)
    assert run.returncode == 0, run.stderr[-3000:]
    studies = _studies(sb)
    by_endpoint = sb.stats()["by_endpoint"]
    # One request per study, as all_parents always made, and no activity list read.
    assert set(by_endpoint[STREAM]) == {"200"} and by_endpoint[STREAM]["200"] >= len(studies)
    assert not {"appointments", "subject_statuses", "patient_visits"} & set(by_endpoint)
    coverage = run.coverage[STREAM]
    assert coverage["parents_total"] == coverage["read_new"] == len(studies)
    assert coverage["staleness_bound_hours"] is not None and not coverage["budget_stopped"]
    assert run.complete_streams == {STREAM}  # every parent read: the whole stream reconciles
    again = run_tap(config, catalog=catalog, state=run.state)
    assert again.coverage[STREAM]["read_sweep"] == len(studies)
    assert _sweep(again).read_to == studies[-1]


def test_a_budget_reads_new_then_changed_then_live_then_sweeps_and_resumes(sandbox, tmp_path):
    sb = sandbox()
    config = tap_config(sb)
    catalog = catalog_selecting(config, {"studies", STREAM}, tmp_path)
    first = run_tap(config, catalog=catalog)
    assert first.returncode == 0, first.stderr[-3000:]
    studies = _studies(sb)
    # A day later: a new study and a closed study edited (lastUpdatedOn moves).
    sb.advance_clock(86_400)
    new_id = sb.insert("studies", 1)[0]
    sb.insert(STREAM, 1, parent_ids=[new_id])
    closed = [
        r["data"]["id"]
        for r in sb.truth("studies")
        if r["data"]["status"] in ("Closed", "Terminated") and r["data"]["id"] in _with_notes(sb)
    ]
    sb.update("studies", ids=[closed[0]])
    live = sum(
        1
        for r in sb.truth("studies")
        if r["data"]["status"]
        not in ("Closed", "Terminated", "Not Selected", "Feasibility Declined")
    )
    # Top-level studies, the listings and signals, the priorities and 20 swept studies.
    probe = run_tap({**config, "max_requests_per_run": 10_000}, catalog=catalog, state=first.state)
    spent_before = probe.coverage["studies"]["requests"]
    budgeted = {**config, "max_requests_per_run": spent_before + 60 + live + 2 + 20}
    sb.reset_stats()
    run = run_tap(budgeted, catalog=catalog, state=first.state)
    assert run.returncode == 0, run.stderr[-3000:]
    coverage = run.coverage[STREAM]
    assert coverage["read_new"] == 1 and coverage["read_changed"] >= 1
    assert coverage["read_live"] >= 1 and coverage["budget_stopped"]
    assert sb.stats()["requests"] <= budgeted["max_requests_per_run"]
    assert "budget is spent" in run.stderr
    read = run.complete_parents(STREAM)
    assert new_id in read and closed[0] in read
    # Resume: the sweep goes on from the cursor until every study was read; the cursor moves up.
    state, seen, runs = run.state, set(read), 1
    while _sweep_since(state) is None or _sweep_since(state) <= _sweep_since(first.state):
        nxt = run_tap(budgeted, catalog=catalog, state=state)
        assert nxt.returncode == 0, nxt.stderr[-3000:]
        seen |= nxt.complete_parents(STREAM)
        state, runs = nxt.state, runs + 1
        assert nxt.coverage[STREAM]["read_sweep"] > 0  # every run moves the sweep on
        assert runs < 20, "the sweep does not come round"
    assert set(studies) <= seen | {s for s in studies if s not in _with_notes(sb)}
    assert len(json.dumps(state)) < 10_000


def _sweep_since(state: dict) -> float | None:
    return SweepState.load(state["bookmarks"][STREAM][STATE_KEY]).swept_since


def _with_notes(sb) -> set[int]:
    return {row["parent"]["studyId"] for row in sb.truth(STREAM)}


def test_a_killed_run_resumes_from_its_last_checkpoint(sandbox, tmp_path):
    sb = sandbox()
    stream = "patient_visit_elements"
    # A budget below the visits: the run is budgeted, and is killed before it ends anyway.
    config = tap_config(sb, max_parallel_requests=1, max_requests_per_run=2_000)
    catalog = catalog_selecting(config, {stream}, tmp_path)
    config_path = tmp_path / "config.json"
    config_path.write_text(json.dumps(config))
    proc = subprocess.Popen(
        [*TAP, "--config", str(config_path), "--catalog", str(catalog)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    checkpoint = None
    assert proc.stdout is not None
    for line in proc.stdout:
        message = json.loads(line)
        if message["type"] == "STATE" and STATE_KEY in message["value"]["bookmarks"].get(
            stream, {}
        ):
            checkpoint = message["value"]
            break
    proc.kill()
    proc.wait()
    assert checkpoint is not None, "no checkpoint before the stream ended"
    done = SweepState.load(checkpoint["bookmarks"][stream][STATE_KEY]).read_to
    visits = sorted(row["data"]["id"] for row in sb.truth("patient_visits"))
    assert done is not None and visits[0] <= done < visits[-1]
    resumed = run_tap(
        {**config, "max_requests_per_run": 100_000}, catalog=catalog, state=checkpoint
    )
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    # The resumed run reads as new exactly the visits above the checkpoint, and no earlier one.
    assert resumed.coverage[stream]["read_new"] == sum(1 for v in visits if v > done)
    assert SweepState.load(resumed.state["bookmarks"][stream][STATE_KEY]).read_to == visits[-1]


def test_the_plan_command_prints_requests_by_reason(sandbox, tmp_path):
    sb = sandbox()
    config = tap_config(sb, max_requests_per_run=2000)
    path = Path(tmp_path, "config.json")
    path.write_text(json.dumps(config))
    proc = subprocess.run(_plan(path), capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    rows = {r["stream"]: r for r in map(json.loads, proc.stdout.splitlines())}
    notes = rows[STREAM]
    assert notes["parents"] == len(_studies(sb))
    assert set(notes["by_reason"]) == {"new", "changed", "live", "sweep"}
    assert notes["by_reason"]["live"] > 0 and notes["sweep_period_days"] is not None
    # The run it plans spends its budget: nothing the plan did for itself (counting rows,
    # probing for a 404) is counted against it.
    total = sum(r["requests"] for r in rows.values())
    per_parent = sum(1 for r in rows.values() if "by_reason" in r)
    assert 2000 - 4 * per_parent <= total <= 2000  # a whole request per reason at most
    # And the next day, planned from the state that run leaves.
    after = Path(tmp_path, "after.json")
    proc = subprocess.run(
        [*_plan(path), "--state-out", str(after)], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    swept = SweepState.load(json.loads(after.read_text())["bookmarks"][STREAM][STATE_KEY])
    assert swept.read_to == _studies(sb)[-1] and swept.cursor > 0
    proc = subprocess.run(
        [*_plan(path), "--state", str(after)], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    nxt = {r["stream"]: r for r in map(json.loads, proc.stdout.splitlines())}[STREAM]
    assert nxt["by_reason"]["new"] == 0 and nxt["by_reason"]["sweep"] > 0


def _plan(config: Path) -> list[str]:
    return [sys.executable, "-m", "tap_clinical_conductor.plan", "--config", str(config), "--json"]


def test_a_parent_whose_last_child_was_deleted_proves_it_empty(sandbox, tmp_path):
    sb = sandbox()
    config = tap_config(sb)
    catalog = catalog_selecting(config, {STREAM}, tmp_path)
    by_study: dict[int, list[int]] = {}
    for row in sb.truth(STREAM):
        by_study.setdefault(row["parent"]["studyId"], []).append(row["data"]["id"])
    study, notes = next(iter(sorted(by_study.items())))
    sb.delete(STREAM, ids=notes)
    run = run_tap({**config, "max_requests_per_run": 130}, catalog=catalog)
    assert run.returncode == 0, run.stderr[-3000:]
    empty = [c for c in run.complete if c["parent_id"] == study]
    # A complete read of that study with no record: the warehouse retires its last notes.
    assert [c["records"] for c in empty] == [0], run.complete_streams


def test_a_visit_completed_since_the_last_run_is_read_though_nothing_dates_it(sandbox, tmp_path):
    sb = sandbox()
    stream = "patient_visit_elements"
    config = tap_config(sb, max_parallel_requests=1)
    catalog = catalog_selecting(config, {stream}, tmp_path)
    day = 86_400.0
    # Visits with elements, high ids (a short sweep from the bottom does not reach them),
    # Started, and due two months ago: nothing near today, so only their status makes them live.
    with_elements = sorted({row["parent"]["patientVisitId"] for row in sb.truth(stream)})
    targets = with_elements[-40::10]
    past = sb.tenant.clock - 60 * day
    for visit in targets:
        sb.update(
            "patient_visits",
            ids=[visit],
            values={"status": 3, "minDueDate": past, "maxDueDate": past, "targetDueDate": past},
        )
    visits = len(sb.truth("patient_visits"))
    first = run_tap({**config, "max_requests_per_run": 100_000}, catalog=catalog)
    assert first.returncode == 0, first.stderr[-3000:]
    assert _started(first, stream) is not None
    # A day later one of them is completed, with its elements: the visit's row shows only
    # "Completed", and its due dates are as far from today as before.
    sb.advance_clock(day)
    done = targets[1]
    sb.update("patient_visits", ids=[done], values={"status": 2})
    elements = [r["data"]["id"] for r in sb.truth(stream) if r["parent"]["patientVisitId"] == done]
    sb.update(stream, ids=elements, values={"completedOn": sb.tenant.clock})
    # A budget that reaches the priorities and only a few swept visits.
    probe = run_tap(
        {**config, "max_requests_per_run": visits // 2}, catalog=catalog, state=first.state
    )
    spent = probe.coverage[stream]
    budget = visits // 2 - spent["read_sweep"] + 3
    sb.reset_stats()
    run = run_tap({**config, "max_requests_per_run": budget}, catalog=catalog, state=first.state)
    assert run.returncode == 0, run.stderr[-3000:]
    assert run.coverage[stream]["read_sweep"] <= 3
    assert done in run.complete_parents(stream)
    assert {r["id"] for r in run.records[stream] if r["id"] in elements} == set(elements)
    # The Started visits stay live; the completed one's due day is remembered no longer.
    assert set(targets) <= run.complete_parents(stream)
    assert _started(run, stream).dirty == frozenset()


def _started(run, stream):
    return SweepState.load(run.state["bookmarks"][stream][STATE_KEY]).started
