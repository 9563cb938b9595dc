"""Chaos fixtures: a fresh fake tenant per test, a private Meltano project copy per test, a
warehouse schema per test. See ``harness.py``.

The chaos tests run `meltano run` end to end (tap, target-postgres, PostgreSQL), so they are marked
``e2e`` like tests/e2e and need ``meltano install`` (``make test`` does it).
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

import pytest

from cc_dev.meltano_runner import plugins_installed

from .harness import Pipeline

#: The API key of every chaos tenant: distinctive, so that the secret scans can find any leak.
API_KEY = "chaos-KEY-" + secrets.token_hex(6)


def pytest_collection_modifyitems(items):
    here = Path(__file__).parent
    for item in items:
        if Path(item.fspath).is_relative_to(here):
            item.add_marker(pytest.mark.e2e)


@pytest.fixture(scope="session")
def installed() -> None:
    if not plugins_installed():
        pytest.skip("meltano plugins are not installed (make install)")


@pytest.fixture
def tenant():
    """A fresh plan-profile tenant (bookmarks on every stream); stopped after the test."""
    from cc_sandbox import Sandbox

    started = []

    def start(**options):
        options.setdefault("scale", 0.001)
        options.setdefault("seed", 7)
        options.setdefault("profile", "plan")
        sb = Sandbox(api_key=API_KEY, **options)
        sb.start()
        started.append(sb)
        return sb

    yield start
    for sb in started:
        sb.stop()


@pytest.fixture
def schema(warehouse_server):
    name = f"chaos_{secrets.token_hex(4)}"
    yield name
    if not os.environ.get("CC_E2E_KEEP_SCHEMA"):
        with warehouse_server.connect() as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')


@pytest.fixture
def pipeline(installed, warehouse_server, schema, tmp_path):
    """``pipeline(sandbox, **options)`` -> :class:`Pipeline` into this test's schema, in a private
    project copy (``tmp_path/project``; logs of each run in ``tmp_path``)."""

    def make(sandbox, **options) -> Pipeline:
        options.setdefault("api_key", API_KEY)
        options.setdefault("pg", warehouse_server)
        return Pipeline(tmp_path / "project", sandbox, schema=schema, log_dir=tmp_path, **options)

    return make
