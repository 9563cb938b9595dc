"""Deterministic fault injection, rate limiting and latency.

Every random decision here is a pure function of the seed and a request's sequence number, so a
test that sends the same requests sees the same faults, whatever the thread timing.
"""

from __future__ import annotations

import json
import math
import threading
import time

#: Fault kinds, in the order their rates are laid on the unit interval.
FAULT_KINDS: tuple[str, ...] = (
    "http_500",
    "http_502",
    "http_503",
    "reset",
    "truncated",
    "html",
    "slow",
)

_MASK = (1 << 64) - 1


def unit(seed: int, index: int, salt: int) -> float:
    """A uniform float in [0, 1) from (seed, index, salt): splitmix64, cheap and stateless."""
    z = (seed * 0x9E3779B97F4A7C15 + index * 0xBF58476D1CE4E5B9 + salt * 0x94D049BB133111EB) & _MASK
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK
    z ^= z >> 31
    return (z >> 11) / float(1 << 53)


def fault_rates(fault_rate: float, faults: dict[str, float] | None) -> dict[str, float]:
    """Per-kind rates: ``fault_rate`` spread evenly over all kinds, plus explicit ``faults``.

    Raises:
        ValueError: On an unknown kind or rates that add up to more than 1.
    """
    rates = {kind: fault_rate / len(FAULT_KINDS) for kind in FAULT_KINDS}
    for kind, rate in (faults or {}).items():
        if kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {kind!r}; expected one of {FAULT_KINDS}")
        rates[kind] += float(rate)
    if sum(rates.values()) > 1.0 + 1e-9:
        raise ValueError(f"fault rates add up to more than 1: {rates}")
    return rates


def choose_fault(rates: dict[str, float], seed: int, index: int) -> str | None:
    """The fault for request number ``index``, or ``None`` for a normal answer."""
    roll = unit(seed, index, 1)
    edge = 0.0
    for kind in FAULT_KINDS:
        edge += rates.get(kind, 0.0)
        if roll < edge:
            return kind
    return None


def latency_seconds(
    seed: int, index: int, base_ms: float, jitter_ms: float, skip_ms: float, skip: int
) -> float:
    """Delay before answering: base, plus uniform jitter, plus ``skip_ms`` per 1000 rows skipped.

    The ``$skip`` term mimics SQL OFFSET, whose cost grows with the offset.
    """
    jitter = jitter_ms * unit(seed, index, 2) if jitter_ms else 0.0
    return max(0.0, base_ms + jitter + skip_ms * skip / 1000.0) / 1000.0


class TokenBucket:
    """One token bucket for the whole server: ``rate`` requests/s, bursts of ``max(1, rate)``."""

    def __init__(self, rate: float) -> None:
        self.rate = float(rate)
        self.capacity = max(1.0, self.rate)
        self.tokens = self.capacity
        self.stamp = time.monotonic()
        self._lock = threading.Lock()

    def take(self) -> float:
        """Take a token.

        Returns:
            0.0 when the request may proceed, else the seconds until a token is available.
        """
        with self._lock:
            now = time.monotonic()
            self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * self.rate)
            self.stamp = now
            if self.tokens >= 1.0:
                self.tokens -= 1.0
                return 0.0
            return (1.0 - self.tokens) / self.rate


def retry_after(wait: float) -> int:
    """``Retry-After`` in whole seconds, at least 1."""
    return max(1, math.ceil(wait))


#: Per-endpoint overrides that make a correct-looking answer wrong (see ``answer_fault``).
ANSWER_FAULTS = ("error_body", "empty", "max_top", "literal_tz")


def answer_fault(over: dict[str, object]) -> tuple[int, bytes] | None:
    """An HTTP 200 that is not the endpoint's data, when an override asks for one.

    ``error_body``: ``{"Message": <text>}`` with 200, as CC answers some server errors.
    ``empty``: ``[]`` with 200, for a table that has rows.
    """
    message = over.get("error_body")
    if message:
        return 200, json.dumps({"Message": str(message)}).encode()
    if over.get("empty"):
        return 200, b"[]"
    return None


def capped_top(over: dict[str, object], top: int) -> tuple[int, bool]:
    """``$top`` as a server that caps it at ``max_top`` serves it, and whether it was capped.

    A capped page comes without a next link: the client cannot tell it from the last page.
    """
    cap = over.get("max_top")
    if isinstance(cap, int) and 0 < cap < top:
        return cap, True
    return top, False


def literal_zone(over: dict[str, object], tenant_tz: str) -> str:
    """The zone ``$filter`` datetime literals are read in: ``literal_tz`` shifts them.

    A server that accepts the literal but compares it in another zone than the stored values
    filters silently shifted by the UTC offset.
    """
    zone = over.get("literal_tz")
    return str(zone) if zone else tenant_tz
