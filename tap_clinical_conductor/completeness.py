"""Proven complete reads, and the record that tells the warehouse about each one.

Deletes in Clinical Conductor leave no trace in the API: a row is gone when a complete read no
longer returns it. target-postgres 0.8.1's ACTIVATE_VERSION cannot say that safely (it marks
every row of the table with an older version deleted, whatever its ``instance_id``), so the tap
never sends it. Instead, after every read it can prove complete, it writes one record to the
``cc_complete_reads`` stream: tenant, stream, scope (the whole stream, or one parent), the read's
start time, its lower bound and how many records it wrote. The dbt staging layer
(``transform/macros/cc_source.sql``) retires the rows of that tenant, stream and scope whose
last extraction is older than the read's start, once the warehouse holds at least as many rows
extracted since then as the read wrote (the load arrived whole).

A read is complete only when proven: every page had the endpoint's shape, paging ended on an
empty page or a short page the server's page size explains, no page was repeated, ``$skip``
paging saw the count it started with, and every parent that answered 404 is gone from its
listing. A read of a whole stream that wrote no record proves nothing (an empty answer never
deletes); one parent's empty read counts only when other parents of the run answered rows. A read
bounded by a bookmark is never complete; one bounded only by ``start_date`` (a first run,
``meltano state clear``, the weekly job) is complete for the rows changed at or after its bound.
"""

from __future__ import annotations

import datetime as dt
import typing as t
from dataclasses import dataclass

#: The stream (and staging table) of complete-read records.
STREAM = "cc_complete_reads"
#: ``scope`` of a read that covered every row of the stream (every parent, for a child stream).
WHOLE_STREAM = "*"

SCHEMA: dict[str, t.Any] = {
    "type": "object",
    "properties": {
        "instance_id": {"type": "string"},
        "stream": {"type": "string"},
        "scope": {"type": "string", "description": "'*' for the whole stream, else a parent id"},
        "staging_table": {"type": "string"},
        "parent_id": {"type": ["integer", "null"]},
        "started_at": {"type": "string", "format": "date-time"},
        "lower_bound": {"type": ["string", "null"], "format": "date-time"},
        "records": {"type": "integer"},
    },
    "required": ["instance_id", "stream", "scope", "staging_table", "started_at", "records"],
}
KEY = ["instance_id", "stream", "scope"]


@dataclass(frozen=True)
class CompleteRead:
    """A read proven to have returned every row of its scope that changed at or after its bound.

    Attributes:
        stream: The tap's stream name.
        staging_table: The table its rows land in (``catalogue.Endpoint.staging_table``).
        parent_id: The one parent the read covered; ``None``: the whole stream.
        started_at: Before the first request of the read (the tap's clock, as ``time_extracted``).
        lower_bound: Only rows whose change value is at or after it were asked for; ``None``: all.
        records: Records the read wrote.
    """

    stream: str
    staging_table: str
    parent_id: int | None
    started_at: dt.datetime
    lower_bound: dt.datetime | None
    records: int

    def record(self, instance_id: str) -> dict[str, t.Any]:
        """The ``cc_complete_reads`` record of this read."""
        return {
            "instance_id": instance_id,
            "stream": self.stream,
            "scope": WHOLE_STREAM if self.parent_id is None else str(self.parent_id),
            "staging_table": self.staging_table,
            "parent_id": self.parent_id,
            "started_at": _iso(self.started_at),
            "lower_bound": _iso(self.lower_bound) if self.lower_bound is not None else None,
            "records": self.records,
        }


def _iso(instant: dt.datetime) -> str:
    return instant.astimezone(dt.timezone.utc).isoformat(timespec="microseconds")


class Unproven(Exception):
    """Why a read that returned normally is not proven complete (it deletes nothing)."""
