"""Measure how many 1000-row pages per second the sandbox serves on one core.

Runs the server in a child process pinned to one CPU and a single client thread (keep-alive,
``http.client``) pinned to another, paging ``/patient-visits/odata?$orderby=id&$top=1000``::

    python -m cc_sandbox.bench --scale 0.01 --seconds 10
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import subprocess
import sys
import time
from urllib.parse import urlsplit


def _pin(cpu: int) -> None:
    if hasattr(os, "sched_setaffinity") and cpu < (os.cpu_count() or 1):
        os.sched_setaffinity(0, {cpu})


def main(argv: list[str] | None = None) -> None:
    """Start a server, page through patient visits for ``--seconds``, print the page rate."""
    parser = argparse.ArgumentParser(prog="python -m cc_sandbox.bench", description=__doc__)
    parser.add_argument("--scale", type=float, default=0.01)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--endpoint", default="patient-visits/odata")
    parser.add_argument("--orderby", default="id", help="empty for insertion order")
    args = parser.parse_args(argv)
    server = subprocess.Popen(
        [sys.executable, "-c", "import os; os.sched_setaffinity(0, {0}); "
         "from cc_sandbox.cli import main; main()",
         "serve", "--port", "0", "--scale", str(args.scale), "--api-key", "bench"],
        stdout=subprocess.PIPE, text=True,
    ) if hasattr(os, "sched_setaffinity") else subprocess.Popen(
        [sys.executable, "-m", "cc_sandbox.cli", "serve", "--port", "0", "--scale",
         str(args.scale), "--api-key", "bench"], stdout=subprocess.PIPE, text=True)
    try:
        assert server.stdout is not None
        base = urlsplit(server.stdout.readline().strip().rsplit(" ", 1)[-1])
        _pin(1)
        conn = http.client.HTTPConnection(base.hostname, base.port)
        order = f"&$orderby={args.orderby}" if args.orderby else ""
        path = f"{base.path}/api/v1/{args.endpoint}?$top=1000{order}"
        headers = {"CCAPIKey": "bench"}
        conn.request("GET", f"{path}&$skip=0&$count=true", headers=headers)  # warm caches
        first = json.loads(conn.getresponse().read())
        total = first["Count"] if isinstance(first, dict) else len(first)
        full = total // 1000  # only full pages are timed; the client does not parse them
        pages = size = 0
        start = time.perf_counter()
        while time.perf_counter() - start < args.seconds:
            conn.request("GET", f"{path}&$skip={pages % full * 1000}", headers=headers)
            response = conn.getresponse()
            body = response.read()
            if response.status != 200:
                raise SystemExit(f"unexpected {response.status}: {body[:200]!r}")
            pages += 1
            size += len(body)
        rows = pages * 1000
        elapsed = time.perf_counter() - start
        print(
            f"{pages / elapsed:.1f} pages/s of 1000 rows ({rows / elapsed:,.0f} rows/s, "
            f"{size / elapsed / 1e6:.1f} MB/s, {size / max(pages, 1) / 1e3:.0f} kB/page) "
            f"from /api/v1/{args.endpoint}, scale {args.scale}, one server core, one client"
        )
    finally:
        server.terminate()
        server.wait(timeout=10)


if __name__ == "__main__":
    main()
