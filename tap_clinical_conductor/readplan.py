"""How a stream reads this run, decided once: its change field, lower bound and completeness.

A stream looks at a sample of its records (or at ``change_field_overrides``), its bookmark and
``start_date``, and fixes a ``ReadPlan``: an immutable value that the rest of the sync reads.
Deciding is a pure function; the stream applies what follows from the plan (FULL_TABLE mode, a
table version) once.
"""

from __future__ import annotations

import datetime as dt
import typing as t
from dataclasses import dataclass

from tap_clinical_conductor.catalogue import Endpoint
from tap_clinical_conductor.filters import ChangeFilter
from tap_clinical_conductor.timestamps import UTC, parse_datetime, to_bookmark


def find_change_field(items: t.Iterable[object], candidates: t.Sequence[str]) -> str | None:
    """The first of ``candidates`` present (non-null) in any of ``items``."""
    present: set[str] = set()
    for item in items:
        if isinstance(item, dict):
            present.update(k for k, v in item.items() if v is not None)
    return next((f for f in candidates if f in present), None)


@dataclass(frozen=True)
class ReadPlan:
    """What a stream reads this run.

    Attributes:
        change_field: The records' change timestamp field (``None``: they have none).
        incremental: Whether the stream filters and bookmarks on ``change_field``; a stream
            without a change field is read in full (FULL_TABLE) and emits no bookmark.
        lower_bound: ``bookmark - lookback`` (or ``start_date``); ``None`` reads everything.
        whole_table: Whether no bookmark bounds the read: every row (of each parent read)
            changed at or after ``lower_bound`` is asked for, so, once the read is proven
            complete, rows of that scope it does not return are gone (``completeness``).
    """

    change_field: str | None
    incremental: bool
    lower_bound: dt.datetime | None
    whole_table: bool

    @property
    def lower_text(self) -> str | None:
        """``lower_bound`` in the bookmark format (what change values are compared with)."""
        return to_bookmark(self.lower_bound) if self.lower_bound is not None else None

    def change_filter(self, tenant_tz: dt.tzinfo) -> ChangeFilter | None:
        """The ``$filter`` condition of this read, if it has a lower bound."""
        if self.lower_bound is None or not self.change_field:
            return None
        return ChangeFilter(self.change_field, self.lower_bound, tenant_tz)


#: Before a stream has decided: no change field, no filter.
UNDECIDED = ReadPlan(change_field=None, incremental=False, lower_bound=None, whole_table=False)


def decide(
    endpoint: Endpoint,
    sample: t.Iterable[object],
    *,
    incremental_capable: bool,
    overrides: t.Mapping[str, str | None],
    bookmark: str | None,
    start_date: str | None,
    lookback: dt.timedelta,
) -> ReadPlan:
    """The plan of a stream from a sample of its records.

    ``incremental_capable`` is whether the stream can filter at all (OData, replication key).
    A per-parent read may cover only some parents; each parent it reads is still read whole when
    no bookmark bounds it (the stream decides what that proves).
    """
    change_field: str | None = None
    if endpoint.name in overrides:
        change_field = overrides[endpoint.name]
    elif incremental_capable:
        change_field = find_change_field(sample, endpoint.change_candidates)
    incremental = incremental_capable and change_field is not None
    lower_bound = None
    if incremental:
        candidates = [parse_datetime(value, UTC) for value in (bookmark, start_date) if value]
        if candidates:
            lower_bound = max(candidates) - lookback
    return ReadPlan(
        change_field=change_field,
        incremental=incremental,
        lower_bound=lower_bound,
        whole_table=not (incremental and bookmark),
    )
