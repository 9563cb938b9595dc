"""Rows per second that target-postgres loads, per loader setting (README, "Loader settings").

Feeds the same synthetic Singer stream -- records shaped like the tap's (``instance_id``, ``id``,
``modifiedDate``, ``data`` object of a patient visit) -- into the target-postgres that
``meltano install`` put in ``.meltano/loaders/target-postgres/venv``, once per setting, into a
scratch schema of the warehouse (embedded, or ``TARGET_POSTGRES_SQLALCHEMY_URL``), and prints
rows/s. Each setting loads into a fresh table, so every run measures inserts, plus an upsert run
of the same keys for the chosen setting.

    python -m cc_dev.bench_target [--rows 50000]
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from cc_dev import project_root
from cc_dev.pg import postgres

SETTINGS = (
    ("use_copy + validate_records=false", {"use_copy": True, "validate_records": False}),
    ("use_copy + validate_records=true", {"use_copy": True, "validate_records": True}),
    ("INSERT + validate_records=false", {"use_copy": False, "validate_records": False}),
    ("INSERT + validate_records=true", {"use_copy": False, "validate_records": True}),
)

SCHEMA = {
    "type": "object",
    "properties": {
        "instance_id": {"type": "string"},
        "id": {"type": "integer"},
        "modifiedDate": {"type": ["string", "null"], "format": "date-time"},
        "data": {"type": "object"},
    },
}


def messages(stream: str, rows: int, seed: int = 1) -> str:
    """A SCHEMA message and ``rows`` RECORD messages, one per line."""
    rnd = random.Random(seed)
    out = [
        json.dumps(
            {
                "type": "SCHEMA",
                "stream": stream,
                "schema": SCHEMA,
                "key_properties": ["instance_id", "id"],
            }
        )
    ]
    for i in range(1, rows + 1):
        stamp = f"2025-{rnd.randint(1, 12):02d}-{rnd.randint(1, 28):02d}T10:{i % 60:02d}:00+00:00"
        data = {
            "id": i,
            "patient": {"id": rnd.randint(1, 10**6), "displayName": f"Patient {i}"},
            "study": {"id": rnd.randint(1, 10**5), "name": f"Study {i % 977}"},
            "visit": {"id": rnd.randint(1, 10**6), "name": "Screening", "visitType": "Scheduled"},
            "status": rnd.choice(["Pending", "Completed", "Cancelled", "NoShow"]),
            "scheduledStart": stamp[:19],
            "scheduledEnd": stamp[:19],
            "comment": "x" * rnd.randint(0, 80),
            "isTelevisit": bool(i % 2),
            "cost": round(rnd.random() * 1000, 2),
            "modifiedDate": stamp[:19],
        }
        rec = {"instance_id": "bench", "id": i, "modifiedDate": stamp, "data": data}
        out.append(json.dumps({"type": "RECORD", "stream": stream, "record": rec}))
    out.append(json.dumps({"type": "STATE", "value": {"bookmarks": {}}}))
    return "\n".join(out) + "\n"


def run(target: Path, config: dict, payload: str) -> float:
    """Seconds target-postgres took to load ``payload``."""
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
        json.dump(config, f)
    start = time.perf_counter()
    proc = subprocess.run(
        [str(target), "--config", f.name],
        input=payload.encode(),
        check=False,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    elapsed = time.perf_counter() - start
    Path(f.name).unlink()
    if proc.returncode:
        sys.exit(f"target-postgres failed:\n{proc.stderr.decode()[-3000:]}")
    return elapsed


def main(argv: list[str] | None = None) -> int:
    """Measure and print rows/s per setting."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=50_000)
    parser.add_argument("--schema", default="bench_target")
    args = parser.parse_args(argv)
    target = project_root() / ".meltano/loaders/target-postgres/venv/bin/target-postgres"
    if not target.exists():
        print("target-postgres is not installed: run `meltano install` first", file=sys.stderr)
        return 2
    with postgres() as pg:
        with pg.connect() as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{args.schema}" CASCADE')
        print(f"{args.rows} rows into {pg.describe()}, schema {args.schema}")
        base = {
            "sqlalchemy_url": pg.url,
            "default_target_schema": args.schema,
            "add_record_metadata": True,
            "batch_size_rows": 10000,
        }
        for n, (label, setting) in enumerate(SETTINGS):
            payload = messages(f"bench_{n}", args.rows)
            secs = run(target, {**base, **setting}, payload)
            print(f"  {label:36s} {args.rows / secs:9.0f} rows/s  ({secs:.1f} s, insert)")
        label, setting = SETTINGS[0]
        secs = run(target, {**base, **setting}, messages("bench_0", args.rows, seed=2))
        print(f"  {label:36s} {args.rows / secs:9.0f} rows/s  ({secs:.1f} s, upsert of same keys)")
        with pg.connect() as conn:
            counts = [
                conn.execute(
                    f'SELECT count(*), count(DISTINCT id) FROM "{args.schema}".bench_{n}'
                ).fetchone()
                for n in range(len(SETTINGS))
            ]
            conn.execute(f'DROP SCHEMA IF EXISTS "{args.schema}" CASCADE')
        for n, (total, distinct) in enumerate(counts):
            assert total == distinct == args.rows, (n, total, distinct)
        print("  every table holds exactly the rows sent, keys unique")
    return 0


if __name__ == "__main__":
    sys.exit(main())
