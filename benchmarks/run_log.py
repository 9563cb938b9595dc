"""How a `meltano run`'s log reads: its line count and the time to its first useful line.

The demo's setting (the fake tenant at the demo's scale and seed, an embedded PostgreSQL, the
project's ``dev`` environment): a first run (full load), then one day of changes and a second,
incremental run. For each: the lines ``meltano run`` printed (all, the tap's, at warning or above),
the seconds from the start of ``meltano`` to the first line that says something about the data
(the first line of the tap naming the stream it reads), and the run's seconds. ``--keep-logs DIR``
writes both logs there.

    python -m benchmarks.run_log [--task daily] [--keep-logs DIR]
"""

from __future__ import annotations

import argparse
import re
import secrets
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from cc_dev.demo import SCALE, SEED, changes
from cc_dev.meltano_runner import Meltano, bin_dir
from cc_dev.pg import postgres

#: The first line that says which stream is read: singer-sdk's "Beginning sync of" (before the
#: report) or the report's start, progress or end line of a stream.
USEFUL = re.compile(
    r"tap-clinical-conductor (Beginning sync of '\w+'|\w+: (started|progress|finished), )"
)


def timed_run(meltano: Meltano, args: list[str]) -> tuple[list[tuple[float, str]], int]:
    """Run ``meltano ARGS``; every output line with its seconds since the start."""
    start = time.perf_counter()
    proc = subprocess.Popen(
        [str(bin_dir() / "meltano"), *args],
        cwd=meltano.root,
        env=meltano.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert proc.stdout is not None
    lines = [(time.perf_counter() - start, line.rstrip("\n")) for line in proc.stdout]
    return lines, proc.wait()


def describe(label: str, lines: list[tuple[float, str]], rc: int) -> str:
    """One line of figures for a run's log."""
    tap = [text for _, text in lines if "tap-clinical-conductor" in text]
    warnings = [text for _, text in lines if re.search(r"\[(warning|error|critical)", text)]
    first = next((at for at, text in lines if USEFUL.search(text)), float("nan"))
    total = lines[-1][0] if lines else float("nan")
    return (
        f"{label}: exit {rc}, {len(lines)} lines ({len(tap)} of the tap, {len(warnings)} "
        f"warning or above), first useful line after {first:.1f} s, run {total:.1f} s"
    )


def main(argv: list[str] | None = None) -> int:
    """Run twice and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--task", default="daily", help="what `meltano run` runs (default daily)")
    parser.add_argument("--keep-logs", type=Path, help="write each run's log into this folder")
    args = parser.parse_args(argv)
    from cc_sandbox import Sandbox

    key = secrets.token_hex(8)
    with (
        tempfile.TemporaryDirectory() as tmp,
        Sandbox(scale=SCALE, profile="plan", api_key=key, seed=SEED) as sb,
        postgres() as pg,
    ):
        schema = f"runlog_{secrets.token_hex(3)}"
        meltano = Meltano(
            api_url=sb.base_url,
            api_key=key,
            database_url=pg.url,
            schema=schema,
            system_db=Path(tmp) / "meltano.db",
            extra_env={
                "DBT_POSTGRES_SCHEMA": f"{schema}_analytics",
                "DBT_TARGET_PATH": f"{tmp}/dbt/target",
                "DBT_LOG_PATH": f"{tmp}/dbt/logs",
            },
        )
        try:
            for label in ("first run", "second run"):
                if label == "second run":
                    changes(sb, 1)
                lines, rc = timed_run(meltano, ["run", *args.task.split()])
                print(describe(label, lines, rc), flush=True)
                if args.keep_logs:
                    args.keep_logs.mkdir(parents=True, exist_ok=True)
                    name = label.replace(" ", "-") + ".log"
                    (args.keep_logs / name).write_text(
                        "".join(f"{at:7.2f} {text}\n" for at, text in lines)
                    )
        finally:
            with pg.connect() as conn:
                for name in ("", "_analytics", "_analytics_staging", "_analytics_snapshots"):
                    conn.execute(f'drop schema if exists "{schema}{name}" cascade')
    return 0


if __name__ == "__main__":
    sys.exit(main())
