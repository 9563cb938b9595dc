"""The fake tenant at full size: start time, peak RSS, and pages per second at 1.0 and 0.01.

Starts ``cc-sandbox serve --scale 1.0`` and ``--scale 0.01`` side by side (each server pinned to
CPU 0, the client to CPU 1) and prints, per scale:

* start: seconds from launch to ``listening``;
* pages/s: 1000-row pages of ``/patient-visits/odata`` ordered by id, paged with ``$skip`` (the
  client does not parse them), first read (records generated) and read again (served from the
  JSON cache), over the same number of pages at both scales;
* fan-out: requests/s of per-study lists (documents of random studies), first read;
* filter: one ``$filter`` + ``$orderby`` + ``$count`` over the whole patient visit table;
* day: seconds of one simulated day (``POST /_sandbox/day``);
* peak RSS of the server (VmHWM) after all of it, and after one page of every endpoint.

    python -m benchmarks.bench_sandbox [--scales 1.0 0.01] [--pages 23] [--fanout 300]

Ends with a ``BENCH_SANDBOX {json}`` line.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import subprocess
import sys
import time
from typing import Any
from urllib.parse import urlencode, urlsplit

KEY = "bench"


def _pin(cpu: int) -> None:
    if hasattr(os, "sched_setaffinity") and cpu < (os.cpu_count() or 1):
        os.sched_setaffinity(0, {cpu})


class Server:
    """One ``cc-sandbox serve`` process and a keep-alive client to it."""

    def __init__(self, scale: float) -> None:
        self.scale = scale
        pin = "import os; os.sched_setaffinity(0, {0}); " if hasattr(os, "sched_setaffinity") \
            else ""
        start = time.perf_counter()
        self.proc = subprocess.Popen(
            [sys.executable, "-c", pin + "from cc_sandbox.cli import main; main()", "serve",
             "--port", "0", "--scale", str(scale), "--api-key", KEY],
            stdout=subprocess.PIPE, text=True,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().strip()
        self.start_seconds = time.perf_counter() - start
        if "listening" not in line:
            raise SystemExit(f"the sandbox did not start: {line!r}")
        self.url = urlsplit(line.rsplit(" ", 1)[-1])
        self.conn = http.client.HTTPConnection(self.url.hostname, self.url.port, timeout=600)

    def raw(self, path: str, params: dict[str, Any] | None = None) -> bytes:
        query = f"?{urlencode(params, safe='$')}" if params else ""
        self.conn.request("GET", f"{self.url.path}/api/v1/{path}{query}",
                          headers={"CCAPIKey": KEY})
        reply = self.conn.getresponse()
        body = reply.read()
        if reply.status != 200:
            raise SystemExit(f"{path}: {reply.status} {body[:200]!r}")
        return body

    def get(self, path: str, params: dict[str, Any] | None = None) -> Any:
        return json.loads(self.raw(path, params))

    def admin(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        self.conn.request(method, f"/_sandbox/{path}", body=json.dumps(body or {}))
        return json.loads(self.conn.getresponse().read())

    def peak_rss_mb(self) -> float:
        with open(f"/proc/{self.proc.pid}/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
        return float("nan")

    def stop(self) -> None:
        self.conn.close()
        self.proc.terminate()
        self.proc.wait(timeout=30)


def _items(body: Any) -> list[Any]:
    return body["Items"] if isinstance(body, dict) else body


def page_rates(server: Server, pages: int) -> tuple[float, float]:
    """Pages/s of patient visits by id, with $skip: first read, then the same pages again."""
    rates = []
    for _ in range(2):
        start = time.perf_counter()
        for page in range(pages):
            size = len(server.raw("patient-visits/odata", {
                "$orderby": "id", "$top": 1000, "$skip": page * 1000}))
            assert size > 100_000, "short page"
        rates.append(pages / (time.perf_counter() - start))
    return rates[0], rates[1]


def fanout_rate(server: Server, studies: list[int], n: int) -> float:
    rng = random.Random(1)
    picks = [rng.choice(studies) for _ in range(n)]
    start = time.perf_counter()
    for sid in picks:
        server.get(f"studies/{sid}/documents/odata", {"$top": 1000, "$orderby": "id"})
    return n / (time.perf_counter() - start)


def every_endpoint(server: Server) -> None:
    """One page of every endpoint (the first parent of per-parent ones)."""
    endpoints = server.admin("GET", "endpoints")
    first = {"studyId": _items(server.get("studies/odata", {"$top": 1}))[0]["id"],
             "patientId": _items(server.get("patients/odata", {"$top": 1}))[0]["id"],
             "patientVisitId": _items(server.get("patient-visits/odata", {"$top": 1}))[0]["id"]}
    for e in endpoints:
        if e["status"] != 200:
            continue
        path = e["path"].removeprefix("/api/v1/")
        for key, value in first.items():
            path = path.replace("{" + key + "}", str(value))
        server.get(path, {"$top": 1000} if e["odata"] else None)


def measure(scale: float, pages: int, fanout: int) -> dict[str, Any]:
    server = Server(scale)
    try:
        out: dict[str, Any] = {"scale": scale, "start_s": round(server.start_seconds, 1)}
        every_endpoint(server)
        out["rss_after_every_endpoint_mb"] = round(server.peak_rss_mb())
        _pin(1)
        cold, warm = page_rates(server, pages)
        out["pages_per_s_first_read"] = round(cold, 1)
        out["pages_per_s_cached"] = round(warm, 1)
        studies = [s["id"] for s in _items(server.get("studies/odata", {
            "$filter": "status eq 'Enrolling' or status eq 'Active'", "$orderby": "id",
            "$top": 1000}))]
        out["fanout_requests_per_s"] = round(fanout_rate(server, studies, fanout), 1)
        start = time.perf_counter()
        body = server.get("patient-visits/odata", {
            "$filter": "status eq 'Pending' and targetDueDate ge 2025-12-01T00:00:00",
            "$orderby": "targetDueDate desc,id", "$top": 1000, "$count": "true"})
        out["filter_orderby_count_s"] = round(time.perf_counter() - start, 2)
        out["filter_count"] = body["Count"]
        start = time.perf_counter()
        day = server.admin("POST", "day", {"days": 1})["days"][0]
        out["day_s"] = round(time.perf_counter() - start, 2)
        out["day_changes"] = day["changes"]
        out["peak_rss_mb"] = round(server.peak_rss_mb())
        return out
    finally:
        server.stop()


def main(argv: list[str] | None = None) -> None:
    """Measure each scale in turn and print a table and a ``BENCH_SANDBOX`` line."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_sandbox",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--scales", type=float, nargs="+", default=[1.0, 0.01])
    parser.add_argument("--pages", type=int, default=23,
                        help="1000-row pages per pass (0.01 has 23 patient visit pages)")
    parser.add_argument("--fanout", type=int, default=300, help="per-study requests")
    args = parser.parse_args(argv)
    results = [measure(scale, args.pages, args.fanout) for scale in args.scales]
    keys = [k for k in results[0] if k != "scale"]
    print(f"{'':32s}" + "".join(f"{'scale ' + str(r['scale']):>14s}" for r in results))
    for key in keys:
        print(f"{key:32s}" + "".join(f"{r[key]!s:>14s}" for r in results))
    if len(results) == 2:
        for key in ("pages_per_s_first_read", "pages_per_s_cached", "fanout_requests_per_s"):
            ratio = results[0][key] / results[1][key]
            print(f"{key} at {results[0]['scale']} / {results[1]['scale']}: {ratio:.2f}")
    print("BENCH_SANDBOX " + json.dumps(results))


if __name__ == "__main__":
    main()
