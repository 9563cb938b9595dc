"""Soak: `meltano run` over and over against a faulty, changing tenant; verify after every run.

    .venv/bin/python -m benchmarks.soak --minutes 10 [--seed 1] [--scale 0.001] [--fault-rate 0.1]

Not part of CI. One fake tenant (``plan`` profile), one warehouse schema in the embedded
PostgreSQL (or TARGET_POSTGRES_SQLALCHEMY_URL), one private Meltano project copy, the chaos
selection (studies, patients, subjects, study_notes, patient_visits). Each round, seeded:

* the tenant changes (updates, inserts, corrupt records) and more changes are scheduled to land
  while the run pages;
* faults of every kind (5xx, resets, truncated and HTML bodies, slow answers past the timeout)
  and a server rate limit below the tap's (429 bursts);
* every third round the tap or the target is SIGKILLed after a random number of requests;
* answers that look normal and are not (an error object with HTTP 200, an empty list for a
  table with rows, a server capping ``$top`` without a next link), one kind or none per round;
* every fourth round rows are deleted in the tenant and the state is cleared first: the full
  reload's complete reads must retire exactly those rows (the chaos check applies the dbt
  staging layer's rule, ``cc_dev.warehouse.retired_sql``) and no live row (false deletions);
* after every run: no saved bookmark ahead of the data; then, when the run did not complete, a
  clean run repairs; the tables must equal the tenant with unique keys.

Prints a line per round and the totals (faults by kind, retries, 429s, kills survived, records
lost, duplicate keys, false deletions), and ends with one ``SOAK {...}`` JSON line.
"""

from __future__ import annotations

import argparse
import collections
import json
import random
import secrets
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from chaos.harness import (  # noqa: E402
    TAP,
    TARGET,
    Pipeline,
    kill_after_requests,
)

FAULT_KINDS = ("http_500", "http_502", "http_503", "reset", "truncated", "html", "slow")
# Kinds that load (a record that loses its id later would stay in the table under its old key,
# which no incremental read can notice; the chaos tests cover skips on their own).
CORRUPT_KINDS = ("string_id", "nul_chars", "bad_timestamp")


#: Answers that look normal and are not (``cc_sandbox.faults.answer_fault``/``capped_top``): a
#: round gets one of them, or none. The error object fails the run (then a repair run); the
#: others must load everything and delete nothing they cannot prove.
ANSWER_FAULTS = (
    None,
    {"studies": {"error_body": "An error has occurred."}},
    {"patients": {"empty": True}},
    {"patients": {"max_top": 37}},
    {"study_notes": {"max_top": 1}},
)


def delete(sb, rng: random.Random) -> int:
    """Rows deleted in the tenant before a full-reload round (the only reads that can see it)."""
    gone = sb.delete("patients", n=rng.randint(1, 2))
    gone += sb.delete("study_notes", n=rng.randint(1, 3))
    return len(gone)


def mutate(sb, rng: random.Random) -> None:
    sb.advance_clock(seconds=rng.randint(600, 7200))
    sb.update("patients", n=rng.randint(1, 10))
    sb.insert("patients", n=rng.randint(0, 3))
    sb.update("patient_visits", n=rng.randint(1, 30))
    sb.insert("subjects", n=rng.randint(1, 3), under="old")
    sb.insert("study_notes", n=rng.randint(1, 3), under="old")
    sb.update("studies", n=rng.randint(0, 4))
    if rng.random() < 0.5:
        stream = rng.choice(("patients", "study_notes"))
        ids = sb.corrupt(stream, rng.choice(CORRUPT_KINDS), n=1)
        sb.update(stream, ids=ids)  # a broken record arrives as a change, not silently
    for _ in range(rng.randint(1, 4)):
        sb.schedule(
            after_requests=rng.randint(1, 120),
            action=rng.choice(("update", "insert")),
            endpoint=rng.choice(("patients", "patient_visits", "studies")),
            n=rng.randint(1, 5),
        )


def _why(tail: str) -> str:
    """The last error-looking line of a failed run's output."""
    lines = [ln for ln in tail.splitlines() if "Error" in ln or "failed" in ln or "error" in ln]
    return (lines[-1] if lines else tail.splitlines()[-1:] or ["?"])[0][-300:]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.soak")
    parser.add_argument("--minutes", type=float, default=10)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--scale", type=float, default=0.001)
    parser.add_argument("--fault-rate", type=float, default=0.1, help="spread over all kinds")
    parser.add_argument("--kill-every", type=int, default=3, help="kill in every Nth round")
    parser.add_argument(
        "--full-every", type=int, default=4, help="deletes and a full reload every Nth round"
    )
    args = parser.parse_args(argv)

    from cc_dev.meltano_runner import DAILY_STATE_ID, plugins_installed
    from cc_dev.pg import postgres
    from cc_sandbox import Sandbox

    if not plugins_installed():
        print("meltano plugins are not installed: make install", file=sys.stderr)
        return 2
    rng = random.Random(args.seed)
    key = "soak-" + secrets.token_hex(8)
    schema = f"soak_{secrets.token_hex(4)}"
    totals: dict[str, object] = {
        "rounds": 0,
        "runs": 0,
        "failed_runs": 0,
        "kills": collections.Counter(),
        "kills_survived": 0,
        "retries": 0,
        "throttled_429": 0,
        "faults": collections.Counter(),
        "records_lost": 0,
        "duplicate_keys": 0,
        "false_deletions": 0,
        "rows_deleted": 0,
        "answer_faults": collections.Counter(),
        "bookmark_violations": 0,
        "mismatches": 0,
        "records_checked": 0,
    }
    deadline = time.monotonic() + args.minutes * 60
    with (
        tempfile.TemporaryDirectory(prefix="cc-soak-") as tmp,
        postgres() as pg,
        Sandbox(
            scale=args.scale, profile="plan", api_key=key, seed=args.seed, slow_seconds=2
        ) as sb,
    ):
        pipe = Pipeline(
            Path(tmp) / "project",
            sb,
            pg,
            schema,
            api_key=key,
            log_dir=Path(tmp),
            tap_settings={
                "request_timeout_seconds": 1,
                "max_retries": 8,
                "max_requests_per_second": 1000,
            },
            env={"TARGET_POSTGRES_BATCH_SIZE_ROWS": "300"},
        )
        try:
            while time.monotonic() < deadline:
                totals["rounds"] += 1
                number = totals["rounds"]
                full = number > 1 and number % args.full_every == 0
                if number > 1:
                    mutate(sb, rng)
                if full:
                    # Incremental reads never delete: deletions arrive with a complete read.
                    totals["rows_deleted"] += delete(sb, rng)
                    cleared = pipe.command("state", "clear", "--force", DAILY_STATE_ID)
                    assert cleared.returncode == 0, cleared.tail()
                kill = TAP if number % (2 * args.kill_every) == 0 else TARGET
                kill = kill if number % args.kill_every == 0 and not full else None
                answer = rng.choice(ANSWER_FAULTS)
                if answer:
                    totals["answer_faults"].update(
                        f"{name}:{','.join(fault)}" for name, fault in answer.items()
                    )
                sb.configure(
                    fault_rate=args.fault_rate,
                    rate_limit=rng.choice((15, 25, 40)),
                    latency_ms=10 if kill else 0,
                    overrides=answer or {},
                )
                sb.reset_stats()
                running = pipe.start()
                if kill:
                    at = rng.randint(5, 120)
                    if not kill_after_requests(running, sb, kill, at):
                        kill = None
                outcome = running.wait()
                stats = sb.stats()
                totals["runs"] += 1
                totals["faults"].update(stats["faults"])
                totals["throttled_429"] += stats["throttled_429"]
                totals["retries"] += outcome.retries
                violations = pipe.check_bookmarks()
                totals["bookmark_violations"] += len(violations)
                if kill:
                    totals["kills"][kill] += 1
                note = "ok"
                if not outcome.ok:
                    totals["failed_runs"] += 1
                    note = f"{'killed ' + kill if kill else 'failed'}; repair"
                    if not kill:
                        print(f"  why: {_why(outcome.tail(80))}", flush=True)
                    sb.configure(fault_rate=0, rate_limit=None, latency_ms=0, overrides={})
                    repair = pipe.run_until_quiet()
                    totals["runs"] += 1
                    if not repair.ok:
                        note += " FAILED"
                        print(repair.tail(), file=sys.stderr)
                    elif kill:
                        totals["kills_survived"] += 1
                sb.configure(fault_rate=0, rate_limit=None, latency_ms=0, overrides={})
                result = pipe.check()
                if outcome.ok:
                    # A completed run under faults may leave mid-run changes for the next run;
                    # the bookmark check above is what must hold. Compare after a clean run.
                    clean = pipe.run_until_quiet()
                    totals["runs"] += 1
                    result = pipe.check()
                    note += "" if clean.ok else "; clean run FAILED"
                totals["records_lost"] += result.missing
                totals["duplicate_keys"] += sum(result.duplicates.values())
                totals["false_deletions"] += result.falsely_retired
                totals["mismatches"] += len(result.problems)
                totals["records_checked"] += result.expected
                totals["bookmark_violations"] += len(result.bookmarks)
                verdict = "ok" if result.ok else result.describe()
                print(
                    f"round {number:3d}: {note:28s} faults {sum(stats['faults'].values()):3d}"
                    f" 429s {stats['throttled_429']:3d} retries {outcome.retries:3d}"
                    f" run {outcome.seconds:5.1f}s  check: {verdict}",
                    flush=True,
                )
        finally:
            with pg.connect() as conn:
                conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    totals["faults"] = dict(totals["faults"])
    totals["kills"] = dict(totals["kills"])
    totals["answer_faults"] = dict(totals["answer_faults"])
    totals["faults_total"] = sum(totals["faults"].values())
    print()
    for name in (
        "rounds",
        "runs",
        "failed_runs",
        "faults",
        "faults_total",
        "throttled_429",
        "retries",
        "kills",
        "kills_survived",
        "records_checked",
        "records_lost",
        "duplicate_keys",
        "false_deletions",
        "rows_deleted",
        "answer_faults",
        "bookmark_violations",
        "mismatches",
    ):
        print(f"{name:20s} {totals[name]}")
    print("SOAK " + json.dumps(totals, sort_keys=True))
    bad = (
        totals["records_lost"]
        or totals["duplicate_keys"]
        or totals["false_deletions"]
        or totals["bookmark_violations"]
    )
    return 1 if bad or totals["mismatches"] else 0


if __name__ == "__main__":
    sys.exit(main())
