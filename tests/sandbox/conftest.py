"""Fixtures: real sandboxes on free ports, and a requests session that talks to them."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests

from cc_sandbox import Sandbox

KEY = "test-key"


@pytest.fixture(scope="module")
def sb() -> Iterator[Sandbox]:
    """A shared spec-profile sandbox; tests that reconfigure it put it back."""
    with Sandbox(scale=0.001, profile="spec", api_key=KEY, seed=7) as sandbox:
        yield sandbox


@pytest.fixture(scope="module")
def plan_sb() -> Iterator[Sandbox]:
    """A shared plan-profile sandbox."""
    with Sandbox(scale=0.0003, profile="plan", api_key=KEY, seed=7) as sandbox:
        yield sandbox


@pytest.fixture
def fresh() -> Iterator[Sandbox]:
    """A small sandbox of its own, for tests that mutate data or settings."""
    with Sandbox(scale=0.0003, profile="spec", api_key=KEY, seed=11) as sandbox:
        yield sandbox


@pytest.fixture
def http() -> Iterator[requests.Session]:
    """A keep-alive session sending the API key."""
    with requests.Session() as session:
        session.headers["CCAPIKey"] = KEY
        yield session
