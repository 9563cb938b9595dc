"""The in-memory warehouse of ``benchmarks/bench_scale.py``, and its comparison with the tenant.

The benchmark measures the tap's parent selection, not the loader, so target-postgres and dbt are
replaced by what they do to the rows: RECORD messages are upserted on the stream's key properties
(last write wins, ``time_extracted`` as ``_sdc_extracted_at``), ``cc_complete_reads`` records on
their own key, and a row is retired by the rule of ``cc_dev.warehouse.retired_sql`` (the dbt
staging views' ``cc_retired``). Row data is kept as a digest of its canonical JSON, so that a
tenant of a million rows fits in memory.

The comparison with the fake tenant (``cc_sandbox``) counts, per staging table:

* lost: a row of the tenant that is not in the warehouse although the run read its parent (for a
  top-level stream: although the run read the stream), and separately a row of the tenant that
  is in the warehouse but retired (a false deletion);
* duplicates: live rows beyond the first for one record id of a table (a second ``instance_id``,
  or the same id under two parents);
* whether each change of the sandbox's change log is visible: the warehouse's live row equals the
  tenant's row, or neither has one (a delete is visible once the row is retired).
"""

from __future__ import annotations

import collections
import datetime as dt
import hashlib
import json
import typing as t
from dataclasses import dataclass, field

from tap_clinical_conductor.catalogue import BY_NAME, Endpoint
from tap_clinical_conductor.completeness import KEY as READ_KEY
from tap_clinical_conductor.completeness import STREAM as COMPLETE_READS
from tap_clinical_conductor.records import BadRecord, record_id, strip_nul

#: A staging row's key: the values of the stream's key properties (``instance_id`` first).
Key = tuple[t.Any, ...]
#: A row's key without ``instance_id``: ``(parent id, id)`` or ``(id,)``, as the tenant keys it.
TenantKey = tuple[t.Any, ...]


def digest(data: object) -> bytes:
    """A short digest of ``data``'s canonical JSON (equal data, equal digest), NULs dropped.

    The tap drops NUL characters (PostgreSQL's JSONB refuses them): so does the digest, for the
    tenant's rows and the tap's alike.
    """
    text = json.dumps(data, sort_keys=True, separators=(",", ":"))
    if "\\u0000" in text:
        text = json.dumps(strip_nul(data), sort_keys=True, separators=(",", ":"))
    return hashlib.blake2b(text.encode(), digest_size=12).digest()


def instant(text: str) -> dt.datetime:
    """An ISO 8601 instant (``Z`` or an offset) as an aware datetime."""
    value = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    return value if value.tzinfo else value.replace(tzinfo=dt.timezone.utc)


def staging_table(stream: str) -> str:
    """The table a stream lands in (the catalogue's; other streams keep their name)."""
    endpoint = BY_NAME.get(stream)
    return endpoint.staging_table if endpoint else stream


@dataclass
class Row:
    """One staging row: its data's digest, ``_sdc_extracted_at`` and ``modifiedDate``."""

    digest: bytes
    extracted: dt.datetime
    modified: dt.datetime | None


@dataclass
class Warehouse:
    """Staging tables as dicts, upserted on their key, and the proven complete reads."""

    tables: dict[str, dict[Key, Row]] = field(default_factory=dict)
    key_properties: dict[str, list[str]] = field(default_factory=dict)
    reads: dict[Key, dict[str, t.Any]] = field(default_factory=dict)

    def schema(self, stream: str, key_properties: list[str]) -> None:
        """A SCHEMA message: the stream's key properties."""
        self.key_properties[stream] = list(key_properties)

    def record(self, stream: str, record: dict[str, t.Any], time_extracted: str) -> Key | None:
        """A RECORD message, upserted; returns the row's key (``None`` for a complete read)."""
        if stream == COMPLETE_READS:
            self.reads[tuple(record[k] for k in READ_KEY)] = record
            return None
        key = tuple(record[k] for k in self.key_properties[stream])
        modified = record.get("modifiedDate")
        self.tables.setdefault(staging_table(stream), {})[key] = Row(
            digest(record.get("data")),
            instant(time_extracted),
            instant(modified) if modified else None,
        )
        return key

    def retired(self, table: str) -> set[Key]:
        """Keys of ``table`` that a proven complete read retired (``retired_sql``'s rule)."""
        rows = self.tables.get(table, {})
        reads = [
            c
            for c in self.reads.values()
            if c["staging_table"] == table and (c["records"] > 0 or c.get("parent_id") is not None)
        ]
        if not rows or not reads:
            return set()
        scopes: dict[tuple[t.Any, t.Any], list[Key]] = collections.defaultdict(list)
        for key in rows:
            scopes[(key[0], key[1] if len(key) > 2 else None)].append(key)
            scopes[(key[0], "*")].append(key)
        out: set[Key] = set()
        for read in reads:
            parent = read.get("parent_id")
            scope = scopes.get((read["instance_id"], "*" if parent is None else parent), [])
            started = instant(read["started_at"])
            if read["records"] > sum(1 for k in scope if rows[k].extracted >= started):
                continue  # the load of that read did not arrive whole: it retires nothing
            bound = instant(read["lower_bound"]) if read.get("lower_bound") else None
            out.update(
                k
                for k in scope
                if rows[k].extracted < started
                and (bound is None or (rows[k].modified is not None and rows[k].modified >= bound))
            )
        return out


@dataclass
class TableView:
    """One table's live rows keyed as the tenant keys them, and what is wrong with them."""

    live: dict[TenantKey, bytes]
    retired: set[TenantKey]
    duplicates: int


def view(warehouse: Warehouse, table: str) -> TableView:
    """The live (not retired) rows of ``table``, without ``instance_id`` in their key."""
    rows = warehouse.tables.get(table, {})
    gone = warehouse.retired(table)
    live: dict[TenantKey, bytes] = {}
    ids: collections.Counter[object] = collections.Counter()
    for key, row in rows.items():
        if key in gone:
            continue
        live[key[1:]] = row.digest
        ids[key[-1]] += 1
    duplicates = sum(n - 1 for n in ids.values())
    return TableView(live, {k[1:] for k in gone} - live.keys(), duplicates)


@dataclass
class TableCheck:
    """A table against the tenant after one run."""

    table: str
    expected: int
    live: int
    #: Tenant rows missing although their parent (or the top-level stream) was read this run.
    lost: set[TenantKey]
    #: Tenant rows retired by a complete read: false deletions.
    falsely_retired: set[TenantKey]
    #: Tenant rows whose parent was read this run whose data differs from the tenant's.
    wrong: int
    #: Live rows the tenant no longer has (deletes not yet retired).
    deletes_pending: int
    duplicates: int


def check_table(
    table: str,
    tables: TableView,
    truth: dict[TenantKey, bytes],
    *,
    read_parents: set[t.Any] | None,
) -> TableCheck:
    """``tables`` against the tenant's ``truth``; ``read_parents`` ``None``: a top-level table
    read this run; a set: the parents read this run (an empty set: nothing was read)."""
    live = tables.live

    def was_read(key: TenantKey) -> bool:
        return read_parents is None or (len(key) > 1 and key[0] in read_parents)

    missing = truth.keys() - live.keys()
    falsely = missing & tables.retired
    lost = {k for k in missing - falsely if was_read(k)}
    wrong = sum(1 for k, d in truth.items() if k in live and live[k] != d and was_read(k))
    return TableCheck(
        table,
        len(truth),
        len(live),
        lost,
        falsely,
        wrong,
        len(live.keys() - truth.keys()),
        tables.duplicates,
    )


def _nest(paths: tuple[str, ...], values: list[t.Any]) -> dict[str, t.Any]:
    """An object with ``values`` at the dotted ``paths`` (to rebuild a synthetic id's record)."""
    out: dict[str, t.Any] = {}
    for path, value in zip(paths, values, strict=True):
        node = out
        *heads, last = path.split(".")
        for head in heads:
            node = node.setdefault(head, {})
        node[last] = value
    return out


def change_key(change: dict[str, t.Any]) -> tuple[str, TenantKey] | None:
    """The staging table and key of a change-log entry (``None``: not a catalogue stream)."""
    endpoint: Endpoint | None = BY_NAME.get(change["endpoint"].removesuffix("_top"))
    if endpoint is None:
        return None
    rid: t.Any = change["id"]
    if endpoint.id_from and "key" in change:
        try:
            rid = record_id(endpoint, _nest(endpoint.id_from, list(change["key"])))
        except BadRecord:
            return None
    if endpoint.parent_key:
        parent = (change.get("parent") or {}).get(endpoint.parent_key)
        return endpoint.staging_table, (parent, rid)
    return endpoint.staging_table, (rid,)


def visible(
    table_key: tuple[str, TenantKey],
    views: dict[str, TableView],
    truth: dict[str, dict[TenantKey, bytes]],
) -> bool:
    """Whether the warehouse agrees with the tenant on one row: equal data, or both without it."""
    table, key = table_key
    live = views[table].live.get(key) if table in views else None
    return live == truth.get(table, {}).get(key)


@dataclass
class LateChange:
    """A change nothing signals; when it became visible, and the sweep period then."""

    day: int
    table_key: tuple[str, TenantKey]
    stream: str
    seen_day: int | None = None
    period_days: float | None = None

    def within(self, last_day: int, period_now: float | None) -> bool | None:
        """Visible within the sweep period: True, False, or ``None`` (not yet due).

        The period is the stream's ``sweep_period_days`` of the run that made it visible (or of
        the last run); a run without one (no budget: every parent every run) counts as one day.
        """
        if self.seen_day is not None:
            period = 1.0 if self.period_days is None else self.period_days
            return self.seen_day - self.day <= period
        period = 1.0 if period_now is None else period_now
        return False if last_day - self.day > period else None
