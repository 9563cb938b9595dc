"""The fake tenant at full size: start time, peak RSS, and pages per second at 1.0 and 0.01.

Starts ``cc-sandbox serve --scale 1.0`` and ``--scale 0.01`` side by side (both servers pinned to
CPU 0, the client to CPU 1); every rate alternates between the two servers, in rounds, best
round kept, so that other work on the machine weighs on both alike. Prints, per scale:

* start: seconds from launch to ``listening``;
* pages/s: 1000-row pages of ``/patient-visits/odata`` paged as the tap pages them (keyset:
  ``$filter=id gt <last id>``, ``$orderby=id``), first read (records generated) and read again
  (served from the JSON cache), over the same number of pages at both scales; the client's own
  JSON parse (to find the last id) is not counted;
* fan-out: requests/s of per-study lists (the documents of active studies, about 28 each),
  first read and read again, over the same number of studies at both scales;
* the same first reads per second of the server's own CPU time (``/proc/<pid>/stat``), summed
  over all rounds: steadier than wall-clock rates when other work shares the machine;
* filter: one ``$filter`` + ``$orderby`` + ``$count`` over the whole patient visit table;
* day: seconds of one simulated day (``POST /_sandbox/day``);
* peak RSS of the server (VmHWM) after all of it, and after one page of every endpoint.

    python -m benchmarks.bench_sandbox [--scales 1.0 0.01] [--pages 21] [--fanout 90]

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

    def __init__(self, scale: float, *, pin: bool = True, args: tuple[str, ...] = ()) -> None:
        self.scale = scale
        pin_code = "import os; os.sched_setaffinity(0, {0}); " \
            if pin and hasattr(os, "sched_setaffinity") else ""
        start = time.perf_counter()
        self.proc = subprocess.Popen(
            [sys.executable, "-c", pin_code + "from cc_sandbox.cli import main; main()", "serve",
             "--port", "0", "--scale", str(scale), "--api-key", KEY, *args],
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

    def cpu_seconds(self) -> float:
        """CPU time the server has used (user + system, all threads)."""
        with open(f"/proc/{self.proc.pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

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


def keyset_page(server: Server, after: int) -> tuple[int, float]:
    """One 1000-row patient visit page after id ``after``, as the tap asks for it.

    Returns:
        The page's last id, and the seconds the client spent parsing it.
    """
    body = server.raw("patient-visits/odata", {
        "$filter": f"id gt {after}", "$orderby": "id", "$top": 1000})
    start = time.perf_counter()
    items = json.loads(body)["Items"]
    assert len(items) == 1000, "short page"
    return items[-1]["id"], time.perf_counter() - start


def first_reads(server: Server, after: int, pages: int) -> tuple[float, int, list[int]]:
    """Pages/s of ``pages`` keyset pages from id ``after`` on, the last id, the cursors used."""
    used, start, parsing = [], time.perf_counter(), 0.0
    for _ in range(pages):
        used.append(after)
        after, spent = keyset_page(server, after)
        parsing += spent
    return pages / (time.perf_counter() - start - parsing), after, used


def page_rate(server: Server, afters: list[int]) -> float:
    """Pages/s of the keyset pages after each of ``afters`` (pages read before: cached)."""
    start, parsing = time.perf_counter(), 0.0
    for after in afters:
        parsing += keyset_page(server, after)[1]
    return len(afters) / (time.perf_counter() - start - parsing)


def fanout_rate(server: Server, studies: list[int]) -> float:
    """Requests/s of the documents of each study (per-study fan-out, one request each)."""
    start = time.perf_counter()
    for sid in studies:
        server.raw(f"studies/{sid}/documents/odata", {"$top": 1000, "$orderby": "id"})
    return len(studies) / (time.perf_counter() - start)


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


def active_studies(server: Server, n: int) -> list[int]:
    """``n`` active studies with documents, spread over the id range (seeded)."""
    ids = [s["id"] for s in _items(server.get("studies/odata", {
        "$filter": "status eq 'Enrolling' or status eq 'Active' or status eq 'Follow-up'",
        "$orderby": "id", "$top": 1000}))]
    return random.Random(1).sample(ids, min(n, len(ids)))


def measure(scales: list[float], pages: int, fanout: int, rounds: int) -> list[dict[str, Any]]:
    """Both servers up at once; each measurement alternates between them, best of ``rounds``."""
    servers = [Server(scale) for scale in scales]
    try:
        out = [{"scale": s.scale, "start_s": round(s.start_seconds, 1)} for s in servers]
        for server, row in zip(servers, out, strict=True):
            every_endpoint(server)
            row["rss_after_every_endpoint_mb"] = round(server.peak_rss_mb())
        _pin(1)
        per_round = max(1, pages // rounds)
        studies = [active_studies(s, fanout) for s in servers]
        size = min(len(x) for x in studies)
        step = max(1, size // rounds)
        for name in ("pages_per_s_first_read", "pages_per_s_cached",
                     "fanout_per_s_first_read", "fanout_per_s_cached"):
            for row in out:
                row[name] = 0.0
        # Keyset cursors: page 0 (after id 0) was read above; each round reads the next pages.
        cursors = [keyset_page(s, 0)[0] for s in servers]
        afters: list[list[int]] = [[] for _ in servers]
        cpu = [[0.0, 0.0] for _ in servers]  # server CPU seconds: first-read pages, fan-out
        for r in range(rounds):  # first reads: new pages and studies each round
            for k, (server, row, mine) in enumerate(zip(servers, out, studies, strict=True)):
                before = server.cpu_seconds()
                rate, cursors[k], used = first_reads(server, cursors[k], per_round)
                middle = server.cpu_seconds()
                afters[k] += used
                row["pages_per_s_first_read"] = max(row["pages_per_s_first_read"], rate)
                row["fanout_per_s_first_read"] = max(
                    row["fanout_per_s_first_read"],
                    fanout_rate(server, mine[r * step:(r + 1) * step]))
                cpu[k][0] += middle - before
                cpu[k][1] += server.cpu_seconds() - middle
        for _ in range(2 * rounds):  # the same again, from the JSON cache: short, so more rounds
            for k, (server, row, mine) in enumerate(zip(servers, out, studies, strict=True)):
                rate = page_rate(server, 3 * afters[k])
                row["pages_per_s_cached"] = max(row["pages_per_s_cached"], rate)
                row["fanout_per_s_cached"] = max(row["fanout_per_s_cached"],
                                                 fanout_rate(server, 3 * mine[:step * rounds]))
        for row in out:
            for key in ("pages_per_s_first_read", "pages_per_s_cached",
                        "fanout_per_s_first_read", "fanout_per_s_cached"):
                row[key] = round(row[key], 1)
            row["fanout_studies"] = step * rounds
        for (pages_cpu, fanout_cpu), row, mine in zip(cpu, out, afters, strict=True):
            # Per second of the server's CPU: what other work on the machine does not change.
            row["pages_per_cpu_s_first_read"] = round(len(mine) / pages_cpu, 1)
            row["fanout_per_cpu_s_first_read"] = round(step * rounds / fanout_cpu, 1)
        for server, row in zip(servers, out, strict=True):
            start = time.perf_counter()
            body = server.get("patient-visits/odata", {
                "$filter": "status eq 'Pending' and targetDueDate ge 2025-12-01T00:00:00",
                "$orderby": "targetDueDate desc,id", "$top": 1000, "$count": "true"})
            row["filter_orderby_count_s"] = round(time.perf_counter() - start, 2)
            row["filter_count"] = body["Count"]
            start = time.perf_counter()
            day = server.admin("POST", "day", {"days": 1})["days"][0]
            row["day_s"] = round(time.perf_counter() - start, 2)
            row["day_changes"] = day["changes"]
            row["peak_rss_mb"] = round(server.peak_rss_mb())
        return out
    finally:
        for server in servers:
            server.stop()


def main(argv: list[str] | None = None) -> None:
    """Measure each scale in turn and print a table and a ``BENCH_SANDBOX`` line."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_sandbox",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--scales", type=float, nargs="+", default=[1.0, 0.01])
    parser.add_argument("--pages", type=int, default=21,
                        help="1000-row pages read in all (0.01 has 23 patient visit pages)")
    parser.add_argument("--fanout", type=int, default=90,
                        help="studies whose documents are read (0.01 has about 110 active)")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    results = measure(args.scales, args.pages, args.fanout, args.rounds)
    keys = [k for k in results[0] if k != "scale"]
    print(f"{'':32s}" + "".join(f"{'scale ' + str(r['scale']):>14s}" for r in results))
    for key in keys:
        print(f"{key:32s}" + "".join(f"{r[key]!s:>14s}" for r in results))
    if len(results) == 2:
        for key in ("pages_per_s_first_read", "pages_per_s_cached", "fanout_per_s_first_read",
                    "fanout_per_s_cached", "pages_per_cpu_s_first_read",
                    "fanout_per_cpu_s_first_read"):
            ratio = results[0][key] / results[1][key]
            print(f"{key} at {results[0]['scale']} / {results[1]['scale']}: {ratio:.2f}")
    print("BENCH_SANDBOX " + json.dumps(results))


if __name__ == "__main__":
    main()
