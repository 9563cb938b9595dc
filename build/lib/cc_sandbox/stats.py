"""Request counters the benchmarks read (``/_sandbox/stats``)."""

from __future__ import annotations

import threading
from typing import Any


class Stats:
    """Thread-safe counters of API requests (admin requests are not counted)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        """Zero every counter."""
        with self._lock:
            self.requests = 0
            self.by_endpoint: dict[str, dict[str, int]] = {}
            self.by_status: dict[str, int] = {}
            self.throttled = 0
            self.bytes = 0
            self.faults: dict[str, int] = {}

    def record(self, endpoint: str, status: int | None, sent: int, fault: str | None) -> None:
        """Count one request.

        Args:
            endpoint: Endpoint name (``_unknown`` for paths that match none).
            status: Status sent, ``None`` when the connection was reset without an answer.
            sent: Bytes of body sent.
            fault: Fault kind injected, if any.
        """
        key = str(status) if status is not None else "reset"
        with self._lock:
            self.requests += 1
            per = self.by_endpoint.setdefault(endpoint, {})
            per[key] = per.get(key, 0) + 1
            self.by_status[key] = self.by_status.get(key, 0) + 1
            if status == 429:
                self.throttled += 1
            self.bytes += sent
            if fault:
                self.faults[fault] = self.faults.get(fault, 0) + 1

    def snapshot(self) -> dict[str, Any]:
        """The counters as the JSON ``/_sandbox/stats`` serves."""
        with self._lock:
            return {
                "requests": self.requests,
                "by_endpoint": {k: dict(v) for k, v in self.by_endpoint.items()},
                "by_status": dict(self.by_status),
                "throttled_429": self.throttled,
                "bytes": self.bytes,
                "faults": dict(self.faults),
            }
