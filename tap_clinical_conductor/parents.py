"""Parent listing: the ids a per-parent stream fans out over, listed once per run and shared.

A listing is a keyset-paged read of the parent's collection that keeps only the ids (157
requests for 157k studies), optionally limited to parents whose own change field moved since a
given instant. Every child stream of the same parent and bound shares one listing. A listing
whose paging is not proven complete (``paging.Proof``) says so: its children then delete nothing
beyond the parents they read. ``exists`` asks whether one parent is still there.

A listing also keeps, in compact columns (``ParentRows``), the few fields of each parent that
``selection`` reads its activity signals from (a study's status and ``lastUpdatedOn``, a visit's
status and due dates): the parent's collection is read once per run either way.
"""

from __future__ import annotations

import datetime as dt
import logging
import math
import threading
import typing as t
from array import array
from dataclasses import dataclass, field

from tap_clinical_conductor.catalogue import Endpoint
from tap_clinical_conductor.client import CCClient
from tap_clinical_conductor.filters import ChangeFilter, FilterFormats
from tap_clinical_conductor.paging import PageCaps, Pager, Proof
from tap_clinical_conductor.readplan import find_change_field
from tap_clinical_conductor.records import BadRecord, dig, record_id
from tap_clinical_conductor.timestamps import TimestampError, parse_datetime

#: How a kept field is stored: an instant (POSIX seconds, NaN when null), text, or an integer id.
ColumnKind = t.Literal["time", "text", "int"]
#: The integer column's value when the field is null or not an integer.
NO_INT = -1


@dataclass(frozen=True)
class Column:
    """A field kept from every parent row: ``path`` is dotted (``study.id``)."""

    path: str
    kind: ColumnKind


@dataclass
class ParentRows:
    """Every parent id of one listing, ascending, with the kept columns in the same order."""

    ids: array[int]
    times: dict[str, array[float]] = field(default_factory=dict)
    texts: dict[str, list[str | None]] = field(default_factory=dict)
    ints: dict[str, array[int]] = field(default_factory=dict)


@dataclass
class ParentListing:
    """Lists and remembers parent ids for the run."""

    client: CCClient
    formats: FilterFormats
    page_size: int
    tenant_tz: dt.tzinfo
    logger: logging.Logger
    caps: PageCaps = field(default_factory=PageCaps)
    #: Parent stream name -> the columns kept from each of its rows.
    keep: t.Mapping[str, tuple[Column, ...]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False)
    _rows: dict[tuple[str, dt.datetime | None], ParentRows] = field(
        default_factory=dict, init=False
    )
    _proofs: dict[tuple[str, dt.datetime | None], Proof] = field(default_factory=dict, init=False)

    def ids(self, parent: Endpoint, changed_since: dt.datetime | None = None) -> array[int]:
        """Ids of every ``parent`` row, or of those changed at or after ``changed_since``.

        A parent without a change field cannot say what changed: then every id is listed.

        Raises:
            EndpointUnavailable: The parent's collection answered 404 or 501.
        """
        return self.rows(parent, changed_since).ids

    def rows(self, parent: Endpoint, changed_since: dt.datetime | None = None) -> ParentRows:
        """``ids`` with the columns ``keep`` names for ``parent``, sorted by id.

        Raises:
            EndpointUnavailable: The parent's collection answered 404 or 501.
        """
        key = (parent.name, changed_since)
        with self._lock:
            if key not in self._rows:
                proof = Proof()
                self._rows[key] = self._list(parent, changed_since, proof)
                self._proofs[key] = proof
            return self._rows[key]

    def listed(self, parent: Endpoint) -> bool:
        """Whether the whole ``parent`` collection was listed in this run already."""
        with self._lock:
            return (parent.name, None) in self._rows

    def unproven(self, parent: Endpoint, changed_since: dt.datetime | None = None) -> str | None:
        """Why the listing ``ids`` returned is not proven complete (``None``: it is)."""
        with self._lock:
            proof = self._proofs.get((parent.name, changed_since))
        return "not listed" if proof is None else proof.unproven

    def exists(self, parent: Endpoint, parent_id: int) -> bool:
        """Whether parent ``parent_id`` is still in its collection (one request).

        Raises:
            EndpointUnavailable: The parent's collection answered 404 or 501.
        """
        page = self.client.get_page(
            parent.path, {"$filter": f"{parent.id_field} eq {parent_id}", "$top": 2}
        )
        return any(_parent_id(parent, item) == parent_id for item in page.items)

    def _list(
        self, parent: Endpoint, changed_since: dt.datetime | None, proof: Proof
    ) -> ParentRows:
        change = None
        if changed_since is not None:
            sample = self.client.get_page(parent.path, {"$top": 1}).items
            found = find_change_field(sample, parent.change_candidates)
            if found is None:
                self.logger.warning(
                    "child_scope=changed_parents: %s has no change field; listing all of them",
                    parent.name,
                )
            else:
                change = ChangeFilter(found, changed_since, self.tenant_tz)
        pages = Pager(
            self.client,
            parent,
            parent.path,
            page_size=self.page_size,
            change=change,
            formats=self.formats,
            logger=self.logger,
            cap=self.caps.of(parent),
            proof=proof,
        )
        columns = self.keep.get(parent.name, ())
        kept = _Keeper(columns, self.tenant_tz)
        ids = array("q")
        unusable = 0
        for page in pages:
            for item in page.items:
                value = _parent_id(parent, item)
                if value is None:
                    unusable += 1
                else:
                    ids.append(value)
                    kept.add(item)
        if unusable:
            # A parent whose id cannot be read has children the run cannot read.
            proof.fail(f"{unusable} {parent.name} rows without a usable id")
            self.logger.warning(
                "%s listing: %d rows without a usable id; their children are not read",
                parent.name,
                unusable,
            )
        self.logger.info("Listed %d %s ids for per-parent streams", len(ids), parent.name)
        return kept.rows(ids)


class _Keeper:
    """Collects the kept columns of a listing, compactly (millions of visits fit in tens of MB)."""

    def __init__(self, columns: tuple[Column, ...], tenant_tz: dt.tzinfo) -> None:
        self.columns = columns
        self.tz = tenant_tz
        self.times = {c.path: array("d") for c in columns if c.kind == "time"}
        self.texts: dict[str, list[str | None]] = {c.path: [] for c in columns if c.kind == "text"}
        self.ints = {c.path: array("q") for c in columns if c.kind == "int"}
        # Due dates and statuses repeat: parse each distinct text once, store one string object.
        self._instants: dict[str, float] = {}
        self._names: dict[str, str] = {}

    def add(self, item: object) -> None:
        for column in self.columns:
            value = dig(item, column.path)
            if column.kind == "time":
                self.times[column.path].append(self._instant(value))
            elif column.kind == "text":
                text = value if isinstance(value, str) else None
                self.texts[column.path].append(
                    None if text is None else self._names.setdefault(text, text)
                )
            else:
                number = value if isinstance(value, int) and not isinstance(value, bool) else None
                self.ints[column.path].append(NO_INT if number is None else number)

    def _instant(self, value: object) -> float:
        if not isinstance(value, str):
            return math.nan
        cached = self._instants.get(value)
        if cached is None:
            try:
                cached = parse_datetime(value, self.tz).timestamp()
            except (TimestampError, OverflowError, ValueError):
                cached = math.nan
            if len(self._instants) < _INSTANT_CACHE:
                self._instants[value] = cached
        return cached

    def rows(self, ids: array[int]) -> ParentRows:
        """The listing, sorted by id (keyset listings already are; ``$skip`` ones may not be)."""
        if all(ids[i] < ids[i + 1] for i in range(len(ids) - 1)):
            return ParentRows(ids, self.times, self.texts, self.ints)
        order = sorted(range(len(ids)), key=ids.__getitem__)
        return ParentRows(
            array("q", (ids[i] for i in order)),
            {k: array("d", (v[i] for i in order)) for k, v in self.times.items()},
            {k: [v[i] for i in order] for k, v in self.texts.items()},
            {k: array("q", (v[i] for i in order)) for k, v in self.ints.items()},
        )


#: Distinct instants parsed once per listing (due dates repeat across visits).
_INSTANT_CACHE = 200_000


def _parent_id(parent: Endpoint, item: object) -> int | None:
    """A parent's id as the child records key it (a numeric string is the integer)."""
    try:
        value = record_id(parent, item)
    except BadRecord:
        return None
    return value if isinstance(value, int) else None
