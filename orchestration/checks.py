"""What the asset checks measure in the warehouse: row counts per tenant, and staleness.

Pure SQL and arithmetic on a psycopg connection; ``definitions.py`` turns the verdicts into
Dagster check results.

* Row count drop: every tenant's live rows in a staging table before and after one tenant's run. A
  sharp drop (more than ``max_row_drop_fraction``), of that tenant or any other, is what a wrong
  delete or a truncated read looks like.
* Staleness: the ``sync_freshness`` mart (issue 14) holds, per tenant and stream and run, the
  staleness bound: the longest time any parent has gone unread. The latest run's bound of each
  tenant and stream is held against the tenant's ``max_staleness_hours``. Until that mart is built
  the check passes and says so, rather than fail every run.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

FRESHNESS_RELATION = "sync_freshness"


def libpq_url(sqlalchemy_url: str) -> str:
    """``postgresql+psycopg://...`` -> ``postgresql://...`` (psycopg takes no driver suffix)."""
    return re.sub(r"^postgresql\+\w+://", "postgresql://", sqlalchemy_url)


def connect(sqlalchemy_url: str) -> Any:
    """An autocommit psycopg connection to the warehouse."""
    import psycopg

    return psycopg.connect(libpq_url(sqlalchemy_url), autocommit=True, connect_timeout=10)


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def rows_by_tenant(conn: Any, schema: str, table: str) -> dict[str, int] | None:
    """Live (not soft-deleted) rows per tenant in a staging table; None if it does not exist."""
    rel = f"{_quote(schema)}.{_quote(table)}"
    if conn.execute("SELECT to_regclass(%s)", (rel,)).fetchone()[0] is None:
        return None
    columns = {
        r[0]
        for r in conn.execute(
            "SELECT column_name FROM information_schema.columns "
            "WHERE table_schema = %s AND table_name = %s",
            (schema, table),
        )
    }
    live = " WHERE _sdc_deleted_at IS NULL" if "_sdc_deleted_at" in columns else ""
    rows = conn.execute(f"SELECT instance_id, count(*) FROM {rel}{live} GROUP BY 1").fetchall()
    return {str(i): int(n) for i, n in rows}


@dataclass(frozen=True)
class RowCountVerdict:
    """A staging table's live rows per tenant, before and after one tenant's run.

    Every tenant is compared, not only the one that ran: a load that marks another tenant's rows
    deleted (a table-wide ACTIVATE_VERSION) fails the check too.
    """

    tenant: str
    before: dict[str, int]
    after: dict[str, int]
    max_drop_fraction: float

    def dropped(self, instance_id: str) -> float:
        """Share of the tenant's rows lost in the run (0 for a first load or growth)."""
        was = self.before.get(instance_id, 0)
        return max(0.0, (was - self.after.get(instance_id, 0)) / was) if was else 0.0

    @property
    def failing(self) -> list[str]:
        """Tenants whose rows dropped by more than the limit."""
        return sorted(i for i in self.before if self.dropped(i) > self.max_drop_fraction)

    @property
    def passed(self) -> bool:
        return not self.failing

    def _line(self, instance_id: str) -> str:
        was, now = self.before.get(instance_id), self.after.get(instance_id, 0)
        if not was:
            return f"{instance_id}: first load, {now} rows"
        return f"{instance_id}: {was} -> {now} rows ({self.dropped(instance_id):.0%} dropped)"

    def describe(self) -> str:
        if self.failing:
            lines = "; ".join(self._line(i) for i in self.failing)
            return f"{lines} (limit {self.max_drop_fraction:.0%}, run of {self.tenant})"
        return self._line(self.tenant)


@dataclass(frozen=True)
class Staleness:
    """The latest staleness bound of one tenant and stream."""

    instance_id: str
    stream: str
    hours: float
    run_started_at: Any
    limit_hours: float | None

    @property
    def too_stale(self) -> bool:
        return self.limit_hours is not None and self.hours > self.limit_hours


def latest_staleness(conn: Any, schema: str, limits: dict[str, float]) -> list[Staleness] | None:
    """The newest row of every (tenant, stream) in ``schema.sync_freshness``.

    None if the mart is not built. ``limits``: ``instance_id`` -> allowed hours (tenants not listed
    have no limit).
    """
    rel = f"{_quote(schema)}.{_quote(FRESHNESS_RELATION)}"
    if conn.execute("SELECT to_regclass(%s)", (rel,)).fetchone()[0] is None:
        return None
    rows = conn.execute(
        f"SELECT DISTINCT ON (instance_id, stream) instance_id, stream, "
        f"staleness_bound_hours::float8, run_started_at FROM {rel} "
        "ORDER BY instance_id, stream, run_started_at DESC"
    ).fetchall()
    return [
        Staleness(str(i), str(s), float(h) if h is not None else 0.0, r, limits.get(str(i)))
        for i, s, h, r in rows
    ]
