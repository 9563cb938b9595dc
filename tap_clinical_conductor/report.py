"""The run's report: what a run's log says at INFO level, and what it keeps for DEBUG.

Owns the one start line and one end line per stream (records, requests, seconds, bookmark, and
any extra figures a caller passes, such as parents read by reason), the summary at the end of the
run, warnings said once per stream and message (repeats go to DEBUG and are counted in the
summary), and singer-sdk's routine lines (deselected streams, sync starts, sort notices, METRIC
lines, env parsing) moved to DEBUG unless ``log_sdk_details`` is set.
"""

from __future__ import annotations

import logging
import re
import threading
import time
import typing as t
from collections import Counter
from dataclasses import dataclass, field

from singer_sdk import metrics
from typing_extensions import override

#: Format strings of singer-sdk's routine INFO and WARNING lines (matched at their start).
SDK_ROUTINE = (
    "Skipping deselected stream",
    "Beginning sync of",
    "Starting incremental sync of",
    "Stream is assumed to be unsorted",
    "Skipping parse of env var settings",
    "Parsing env var for settings config",
    "Total Sync costs for stream",
)
#: Loggers of singer-sdk that write routine lines; the tap's and each stream's are added.
SDK_LOGGERS = ("singer_sdk", metrics.METRICS_LOGGER_NAME)
#: Where ``client`` logs retries and 429 waits.
CLIENT_LOGGER = "tap_clinical_conductor"

#: Extra figures of one stream (e.g. ``{"parents read": "12 changed, 88 swept"}``).
Extra = t.Mapping[str, object]


def _demote(record: logging.LogRecord) -> bool:
    """Turn ``record`` into a DEBUG line; whether its logger still writes it."""
    record.levelno = logging.DEBUG
    record.levelname = "DEBUG"
    return logging.getLogger(record.name).isEnabledFor(logging.DEBUG)


class RoutineLines(logging.Filter):
    """Moves singer-sdk's routine lines to DEBUG (``show``: leave them as they are)."""

    def __init__(self) -> None:
        super().__init__()
        self.show = False

    @override
    def filter(self, record: logging.LogRecord) -> bool:
        if self.show:
            return True
        if record.name == metrics.METRICS_LOGGER_NAME or (
            isinstance(record.msg, str) and record.msg.startswith(SDK_ROUTINE)
        ):
            return _demote(record)
        return True


_DIGITS = re.compile(r"\d+")


class OnceWarnings(logging.Filter):
    """Lets a warning through once per logger and message; repeats go to DEBUG and are counted."""

    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.Lock()
        self._seen: set[tuple[str, str]] = set()
        #: Repeats per (logger name, message with numbers blanked), beyond the first.
        self.repeats: Counter[tuple[str, str]] = Counter()

    @override
    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno != logging.WARNING:
            return True
        # The message with its numbers blanked: "4 skipped, no id" and "2 unreadable dates" are
        # two warnings; "retry 1/5" and "retry 2/5" are one.
        key = (record.name, _DIGITS.sub("#", record.getMessage()))
        with self._lock:
            if key not in self._seen:
                self._seen.add(key)
                return True
            self.repeats[key] += 1
        return _demote(record)


#: One per process: installed by the command line before the tap exists (its first lines are
#: routine too), switched by each tap's ``log_sdk_details``.
ROUTINE = RoutineLines()


def quiet_sdk(*loggers: logging.Logger) -> None:
    """Install ``ROUTINE`` on singer-sdk's loggers and on ``loggers``."""
    for logger in (*map(logging.getLogger, SDK_LOGGERS), *loggers):
        logger.addFilter(ROUTINE)


@dataclass
class StreamFigures:
    """What one stream did in this run."""

    started: float
    requests_at_start: int
    records: int = 0
    requests: int = 0
    seconds: float = 0.0
    bookmark: str | None = None
    finished: bool = False
    extra: dict[str, object] = field(default_factory=dict)


class RunReport:
    """The start and end line of every stream, and the run's summary.

    ``requests`` reads the run's request counter; a stream's requests are the difference between
    its end and its start (streams sync one after another).
    """

    def __init__(
        self, logger: logging.Logger, requests: t.Callable[[], int], *, sdk_details: bool = False
    ) -> None:
        self.logger = logger
        self._requests = requests
        self._start = time.monotonic()
        self.streams: dict[str, StreamFigures] = {}
        self.once = OnceWarnings()
        ROUTINE.show = sdk_details
        quiet_sdk(logger)
        for name in (logger.name, CLIENT_LOGGER):
            logging.getLogger(name).addFilter(self.once)

    def watch(self, logger: logging.Logger) -> None:
        """Apply the report's filters to a stream's logger."""
        logger.addFilter(ROUTINE)
        logger.addFilter(self.once)

    def stream_started(self, name: str, *, incremental: bool, bookmark: str | None) -> None:
        """Log that ``name`` starts, incremental from ``bookmark`` or in full."""
        self.streams[name] = StreamFigures(time.monotonic(), self._requests())
        if not incremental:
            mode = "full table"
        elif bookmark:
            mode = f"incremental from {bookmark}"
        else:
            mode = "incremental, no bookmark yet: every record"
        self.logger.info("%s: started, %s", name, mode)

    def progress(self, name: str, *, pages: int, records: int) -> None:
        """A progress line of a stream whose total is unknown (a top-level collection)."""
        figures = self._figures(name)
        elapsed = max(time.monotonic() - figures.started, 1e-6)
        rate = (self._requests() - figures.requests_at_start) / elapsed
        self.logger.info(
            "%s: progress %d pages, %s records, %.1f requests/s, %.0f s so far",
            name,
            pages,
            f"{records:,}",
            rate,
            elapsed,
        )

    def note(self, name: str, **figures: object) -> None:
        """Add figures to the end line and summary of ``name`` (while it syncs)."""
        self._figures(name).extra.update(figures)

    def stream_finished(
        self,
        name: str,
        *,
        records: int,
        requests: int | None = None,
        seconds: float | None = None,
        bookmark: str | None = None,
        extra: Extra | None = None,
    ) -> None:
        """Log the end line of ``name``; ``requests`` and ``seconds`` default to since its start."""
        figures = self._figures(name)
        figures.records = records
        figures.requests = (
            self._requests() - figures.requests_at_start if requests is None else requests
        )
        figures.seconds = time.monotonic() - figures.started if seconds is None else seconds
        figures.bookmark = bookmark
        figures.finished = True
        figures.extra.update(extra or {})
        self.logger.info("%s: finished, %s", name, _stream_line(figures))

    def summary(
        self, counters: t.Mapping[str, int], extra: t.Mapping[str, Extra] | None = None
    ) -> list[str]:
        """Log (and return) the run's summary; ``extra``: more figures per stream."""
        for name, figures in (extra or {}).items():
            self._figures(name).extra.update(figures)
        done = [f for f in self.streams.values() if f.finished]
        with_records = sum(1 for f in done if f.records)
        lines = [
            f"Run summary: {len(done)} streams ({with_records} with records), "
            f"{sum(f.records for f in done):,} records, {counters.get('requests', 0):,} requests "
            f"({counters.get('retries', 0):,} retries, {counters.get('throttled_429', 0):,} "
            f"HTTP 429), {time.monotonic() - self._start:.1f} s"
        ]
        lines += [
            f"  {name}: {', '.join(f'{k} {v}' for k, v in figures.extra.items())}"
            for name, figures in self.streams.items()
            if figures.extra
        ]
        lines += [
            f"  warning repeated {n:,} more times (shown once): {logger}: {message}"
            for (logger, message), n in sorted(self.once.repeats.items())
        ]
        for line in lines:
            self.logger.info("%s", line)
        return lines

    def _figures(self, name: str) -> StreamFigures:
        if name not in self.streams:
            self.streams[name] = StreamFigures(time.monotonic(), self._requests())
        return self.streams[name]


def _stream_line(figures: StreamFigures) -> str:
    parts = [
        f"{figures.records:,} records",
        f"{figures.requests:,} requests",
        f"{figures.seconds:.1f} s",
        f"bookmark {figures.bookmark}" if figures.bookmark else "no bookmark",
    ]
    parts += [f"{k} {v}" for k, v in figures.extra.items()]
    return ", ".join(parts)
