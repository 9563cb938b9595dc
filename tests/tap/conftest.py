"""Fixtures for the tap's tests: a fresh sandbox per test and a config pointing at it."""

from __future__ import annotations

import typing as t

import pytest

from cc_sandbox import Sandbox

API_KEY = "tap-test-key-7f3a9c"
DEFAULT_STREAMS = None  # the tap's default selection


def tap_config(sb: Sandbox, **overrides: object) -> dict:
    """Config for the tap against ``sb``; fast retries so fault tests stay short."""
    config = {
        "api_url": sb.base_url,
        "api_key": API_KEY,
        "instance_id": "sandbox",
        "tenant_timezone": "America/New_York",
        "max_requests_per_second": 1000,
        "max_parallel_requests": 4,
        "backoff_base_seconds": 0.02,
        "request_timeout_seconds": 10,
    }
    config.update(overrides)
    return config


@pytest.fixture
def sandbox() -> t.Callable[..., Sandbox]:
    """Start sandboxes on free ports; all are stopped after the test."""
    started: list[Sandbox] = []

    def start(**options: t.Any) -> Sandbox:
        options.setdefault("scale", 0.001)
        options.setdefault("seed", 7)
        options.setdefault("api_key", API_KEY)
        sb = Sandbox(**options)
        sb.start()
        started.append(sb)
        return sb

    yield start
    for sb in started:
        sb.stop()
