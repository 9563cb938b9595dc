"""``make demo``: the daily job against the bundled fake tenant and an embedded PostgreSQL.

First run: a full load of every default stream, then dbt builds the marts (``transform/``). Every
later run first changes some data in the fake tenant, then runs the same job incrementally and
shows what it read (requests, megabytes) and wrote (rows per table), and the marts with the new
versions in their history.

The tenant is rebuilt on each run from its seed; ``.sandbox/demo-runs`` counts the runs done, and
the rounds of changes of the runs after the first (deterministic: seeded, on the tenant's own
clock) are replayed before the new round, so the tenant continues where the last demo left it.
The warehouse (``.pgdata``) and Meltano's state (``.meltano/meltano.db``, environment ``dev``)
persist between runs. ``python -m cc_dev.demo --reset`` (``make demo-reset``) starts over.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import secrets
import shutil
import signal
import sys
import time

from cc_dev import project_root
from cc_dev.meltano_runner import DAILY_STATE_ID, Meltano
from cc_dev.pg import postgres, stop_embedded
from cc_dev.warehouse import (
    compare_all,
    format_table,
    mart_summary,
    rows_written_since,
    table_counts,
)

SEED = 7
SCALE = 0.001
SCHEMA = "public"
#: Where dbt (the daily job's dbt-postgres:build) puts the marts: the profile's default.
DBT_SCHEMA = "analytics"


def counter_file():  # noqa: ANN201
    """Where the number of demo runs is kept."""
    return project_root() / ".sandbox" / "demo-runs"


def changes(sb, round_no: int) -> None:  # noqa: ANN001
    """One day of changes in the tenant (the same every time for the same round)."""
    sb.advance_clock(seconds=86400)
    sb.update("studies", n=2)
    sb.update("patients", n=5)
    sb.update("patient_visits", n=8)
    sb.update("appointments", n=6)
    sb.insert("patients", n=2)
    sb.insert("subjects", n=3)
    sb.insert("study_notes", n=2, under="new")
    sb.insert("patient_visit_elements", n=4, under="new")


def main(argv: list[str] | None = None) -> int:
    """Run the demo."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--reset", action="store_true", help="forget earlier demo runs and exit")
    parser.add_argument(
        "--child-scope",
        default=os.environ.get("CC_DEMO_CHILD_SCOPE", "all_parents"),
        choices=("all_parents", "changed_parents"),
        help="the tap's child_scope for this demo (default all_parents, as the daily job)",
    )
    parser.add_argument(
        "--profile", default=os.environ.get("CC_DEMO_PROFILE", "plan"), choices=("plan", "spec")
    )
    args = parser.parse_args(argv)
    # SIGTERM (CI, a closed terminal) ends the run through the finally blocks: servers stop cleanly.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    if args.reset:
        return reset()

    counter = counter_file()
    counter.parent.mkdir(exist_ok=True)
    runs = int(counter.read_text().strip() or 0) if counter.exists() else 0

    import psycopg

    from cc_sandbox import Sandbox

    key = secrets.token_hex(8)
    started = time.perf_counter()
    with Sandbox(scale=SCALE, profile=args.profile, api_key=key, seed=SEED) as sb, postgres() as pg:
        print(f"fake tenant: {sb.base_url} (scale {SCALE}, profile {args.profile}, seed {SEED})")
        print(f"warehouse:   {pg.describe()}, schema {SCHEMA}")
        meltano = Meltano(
            api_url=sb.base_url,
            api_key=key,
            database_url=pg.url,
            schema=SCHEMA,
            extra_env={"TAP_CLINICAL_CONDUCTOR_CHILD_SCOPE": args.child_scope},
        )
        installed = meltano.install()
        if installed.returncode:
            print(installed.tail(), file=sys.stderr)
            return installed.returncode
        try:
            with pg.connect() as conn:
                loaded_before = "dim_studies_staging" in table_counts(conn, SCHEMA)
        except psycopg.OperationalError as exc:
            print(
                f"cause: the warehouse ({pg.describe()}) does not answer: "
                f"{' '.join(str(exc).split())}. Start it (`make pg-start`) or check "
                "TARGET_POSTGRES_SQLALCHEMY_URL, then run `make demo` again.",
                file=sys.stderr,
            )
            return 1
        if runs and not loaded_before:
            print("the warehouse is empty but Meltano has state: clearing it for a full load")
            meltano("state", "clear", "--force", DAILY_STATE_ID)
        # The tenant as the last demo left it: run 1 loaded it unchanged, run k (k >= 2) after
        # rounds 1 .. k-1. Then this run's round.
        for r in range(1, runs):
            changes(sb, r)
        if runs:
            changes(sb, runs)
            print(
                f"run {runs + 1}: changed the tenant (2 studies, 5+2 patients, 8 patient visits, "
                "6 appointments, 3 subjects, 2 study notes, 4 visit elements); incremental run"
            )
        else:
            print("run 1: full load")
        sb.reset_stats()
        since = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
        print("meltano run daily (tap -> target-postgres -> dbt-postgres:build) ...", flush=True)
        result = meltano("run", "daily")
        log = counter.parent / "demo-run.log"
        log.write_text(result.output)
        if result.returncode:
            print(result.tail(40), file=sys.stderr)
            print(f"\nmeltano run daily failed (its whole log: {log})", file=sys.stderr)
            cause = result.cause()
            if cause:
                print(f"cause: {cause}", file=sys.stderr)
            return result.returncode
        stats = sb.stats()
        with pg.connect() as conn:
            counts = table_counts(conn, SCHEMA)
            written = rows_written_since(conn, SCHEMA, since)
            checks = compare_all(conn, SCHEMA, sb)
            marts = mart_summary(conn, DBT_SCHEMA)
        counter.write_text(f"{runs + 1}\n")

    staging = sorted(t for t in counts if t.endswith("_staging"))
    rows = [(t, f"{counts[t]:,}", f"{written.get(t, 0):,}") for t in staging]
    rows.append(
        (
            "total",
            f"{sum(counts[t] for t in staging):,}",
            f"{sum(written.get(t, 0) for t in staging):,}",
        )
    )
    print()
    print(format_table(rows, ("staging table", "rows", "written this run")))
    print()
    if marts:
        print(f"dbt marts (schema {DBT_SCHEMA}, rebuilt by the daily job's dbt-postgres:build):")
        mart_rows = [(n, f"{r:,}", note) for n, r, note in marts]
        print(format_table(mart_rows, ("mart", "rows", "history")))
        print()
    else:
        print(f"no dbt marts in schema {DBT_SCHEMA}: dbt-postgres:build did not run")
    ok = sum(c.ok for c in checks)
    print(
        f"requests to the tenant: {stats['requests']:,}  ({stats['bytes'] / 1e6:.1f} MB, "
        f"meltano run {result.seconds:.0f} s, demo {time.perf_counter() - started:.0f} s)"
    )
    print(f"staging tables equal to the tenant's data: {ok}/{len(checks)}")
    n_marts = sum(1 for _, _, note in marts if not note)
    print(
        f"marts built by dbt: {n_marts} tables, {sum(r for _, r, note in marts if not note):,} rows"
    )
    if args.child_scope == "changed_parents":
        print(
            "child_scope=changed_parents: per-study and per-patient-visit streams ask only the "
            "parents changed since the last run (the daily job's default, all_parents, asks "
            "every parent again)."
        )
    for c in checks:
        if not c.ok:
            print(f"  {c.table}: {c.problems}")
    if runs == 0:
        print(
            "\nRun `make demo` again: it changes the tenant and runs incrementally (compare the "
            "requests, megabytes and rows written)."
        )
    return 0 if ok == len(checks) and marts else 1


def reset() -> int:
    """Forget earlier demo runs: counter, warehouse data directory and Meltano's dev state."""
    root = project_root()
    counter_file().unlink(missing_ok=True)
    stop_embedded()
    shutil.rmtree(root / ".pgdata", ignore_errors=True)
    meltano = Meltano(
        api_url="http://127.0.0.1:1/CCSWeb", api_key="-", database_url="postgresql://-"
    )
    meltano("state", "clear", "--force", DAILY_STATE_ID)
    print("demo reset: next `make demo` is a first run")
    return 0


if __name__ == "__main__":
    sys.exit(main())
