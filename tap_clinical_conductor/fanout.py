"""Fetch many partitions at once and hand them back in order.

singer-sdk syncs partitions one after another, so a run is bound by latency, not by the tenant's
rate limit. Here worker threads do only HTTP and parsing; the calling (main) thread receives the
results in submission order and does all record emission and state handling, so a parallel run
emits exactly what a sequential one would.
"""

from __future__ import annotations

import logging
import time
import typing as t
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor

_T = t.TypeVar("_T")
_R = t.TypeVar("_R")

#: Results held at once, per worker: enough to keep every worker busy while the caller catches up.
RESULTS_PER_WORKER = 2
#: Seconds between two progress lines.
PROGRESS_EVERY_SECONDS = 5.0


def ordered_map(
    fn: t.Callable[[_T], _R], items: t.Iterable[_T], workers: int
) -> t.Iterator[tuple[_T, _R]]:
    """Yield ``(item, fn(item))`` in input order, running up to ``workers`` calls at once.

    At most ``RESULTS_PER_WORKER * workers`` results are held at a time, so memory stays flat
    however many items there are. An exception in ``fn`` is raised here, for the item it belongs
    to, after the items before it were yielded.
    """
    if workers <= 1:
        for item in items:
            yield item, fn(item)
        return
    window = workers * RESULTS_PER_WORKER
    iterator = iter(items)
    pending: deque[tuple[_T, Future[_R]]] = deque()
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="cc-fetch") as pool:
        try:
            for item in iterator:
                pending.append((item, pool.submit(fn, item)))
                if len(pending) >= window:
                    break
            while pending:
                item, future = pending.popleft()
                result = future.result()
                for nxt in iterator:
                    pending.append((nxt, pool.submit(fn, nxt)))
                    break
                yield item, result
        finally:
            for _, future in pending:
                future.cancel()


class Progress:
    """Logs partitions done / total, records, request rate and an ETA every few seconds."""

    def __init__(
        self,
        logger: logging.Logger,
        stream: str,
        total: int,
        requests: t.Callable[[], int],
        every: float = PROGRESS_EVERY_SECONDS,
    ) -> None:
        self.logger = logger
        self.stream = stream
        self.total = total
        self.done = 0
        self.records = 0
        self._requests = requests
        self._every = every
        self._start = time.monotonic()
        self._start_requests = requests()
        self._last_log = self._start

    def step(self, records: int) -> None:
        """One partition finished with ``records`` records."""
        self.done += 1
        self.records += records
        now = time.monotonic()
        if now - self._last_log >= self._every:
            self._last_log = now
            self.log()

    def log(self, final: bool = False) -> None:
        """Write the progress line."""
        elapsed = max(time.monotonic() - self._start, 1e-6)
        rate = (self._requests() - self._start_requests) / elapsed
        remaining = (self.total - self.done) * elapsed / self.done if self.done else float("nan")
        # The final figures are the stream's end line (``report``); this one is for debugging.
        self.logger.log(
            logging.DEBUG if final else logging.INFO,
            "%s: %s partitions %d/%d, %d records, %.1f requests/s, %s",
            self.stream,
            "finished" if final else "progress",
            self.done,
            self.total,
            self.records,
            rate,
            f"took {elapsed:.0f}s" if final else f"ETA {_duration(remaining)}",
        )


def _duration(seconds: float) -> str:
    if seconds != seconds:  # NaN: nothing finished yet
        return "unknown"
    seconds = int(seconds)
    hours, rest = divmod(seconds, 3600)
    return f"{hours}h{rest // 60:02d}m" if hours else f"{rest // 60}m{rest % 60:02d}s"
