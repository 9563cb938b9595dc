"""SIGKILL the tap, and separately the target, mid-run at seeded points; the next run repairs.

One tenant, four runs:

1. first run (no state): the tap is killed after a seeded number of API requests;
2. a clean run repairs: tables equal the tenant, keys unique, bookmarks saved;
3. the tenant changes; the incremental run's target is killed at a seeded point;
4. a clean run repairs again.

After every run, killed or not, no bookmark Meltano saved (``meltano state get``, complete and
partial state merged) is ahead of the data: every tenant record whose change value is <= the
bookmark is in its table, and every record changed before ``bookmark - lookback`` is there with its
current data. target-postgres is given small batches so that it drains (and passes state on) in
the middle of a run, where a kill can land between a drain and the end of a stream.
"""

from __future__ import annotations

import random

from .harness import TAP, TARGET, kill_after_requests

SEED = 20260101


def changes(sb) -> None:
    sb.advance_clock(seconds=3600)
    sb.update("patients", n=6)
    sb.insert("patients", n=2)
    sb.update("patient_visits", n=15)
    sb.insert("patient_visits", n=5)
    sb.insert("subjects", n=3, under="old")
    sb.insert("study_notes", n=3, under="old")
    sb.update("studies", n=4)


def killed_run(pipe, sb, victim: str, requests: int):
    sb.reset_stats()
    running = pipe.start()
    assert kill_after_requests(running, sb, victim, requests), (
        f"the run ended (or {victim} was not found) before request {requests}:\n"
        + running.wait().tail()
    )
    outcome = running.wait()
    assert outcome.returncode != 0, f"meltano run survived a SIGKILL of {victim}"
    return outcome


def assert_bookmarks_not_ahead(pipe, when: str) -> dict:
    state = pipe.saved_state()
    problems = pipe.check_bookmarks(state)
    assert not problems, f"after {when}: " + "; ".join(problems)
    return state


def assert_repaired(pipe) -> None:
    outcome = pipe.run()
    assert outcome.ok, outcome.tail()
    result = pipe.check()  # tables, keys and the saved bookmarks
    assert result.ok, result.describe()
    assert result.missing == 0 and not result.duplicates


def test_sigkill_tap_then_target_mid_run_and_rerun_repairs(tenant, pipeline):
    rng = random.Random(SEED)
    sb = tenant(latency_ms=15, jitter_ms=10)
    pipe = pipeline(sb, env={"TARGET_POSTGRES_BATCH_SIZE_ROWS": "300"})

    tap_kill = rng.randint(20, 180)  # of about 215 requests in a first run
    first = killed_run(pipe, sb, TAP, tap_kill)
    state_after_tap_kill = assert_bookmarks_not_ahead(pipe, f"tap killed at {tap_kill}")
    assert_repaired(pipe)
    before = assert_bookmarks_not_ahead(pipe, "the repair run")
    assert before.get("singer_state", {}).get("bookmarks"), before
    # The quick reader sees what `meltano state get` shows.
    assert pipe.state() == before

    changes(sb)
    target_kill = rng.randint(10, 140)  # of about 170 requests in an incremental run
    second = killed_run(pipe, sb, TARGET, target_kill)
    state_after_target_kill = assert_bookmarks_not_ahead(pipe, f"target killed at {target_kill}")
    assert_repaired(pipe)
    assert_bookmarks_not_ahead(pipe, "the second repair run")
    saved = sorted((state_after_target_kill.get("singer_state") or {}).get("bookmarks", {}))
    print(
        f"\nkilled {first.killed} at request {first.kill_at_request}"
        f" (state saved: {bool(state_after_tap_kill)}),"
        f" {second.killed} at request {second.kill_at_request}"
        f" (bookmarks of {saved} kept);"
        " both repaired"
    )
