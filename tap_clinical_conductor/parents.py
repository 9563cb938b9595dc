"""Parent listing: the ids a per-parent stream fans out over, listed once per run and shared.

A listing is a keyset-paged read of the parent's collection that keeps only the ids (157
requests for 157k studies), optionally limited to parents whose own change field moved since a
given instant. Every child stream of the same parent and bound shares one listing. A listing
whose paging is not proven complete (``paging.Proof``) says so: its children then delete nothing
beyond the parents they read. ``exists`` asks whether one parent is still there.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from array import array
from dataclasses import dataclass, field

from tap_clinical_conductor.catalogue import Endpoint
from tap_clinical_conductor.client import CCClient
from tap_clinical_conductor.filters import ChangeFilter, FilterFormats
from tap_clinical_conductor.paging import PageCaps, Pager, Proof
from tap_clinical_conductor.readplan import find_change_field
from tap_clinical_conductor.records import BadRecord, record_id


@dataclass
class ParentListing:
    """Lists and remembers parent ids for the run."""

    client: CCClient
    formats: FilterFormats
    page_size: int
    tenant_tz: dt.tzinfo
    logger: logging.Logger
    caps: PageCaps = field(default_factory=PageCaps)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False)
    _ids: dict[tuple[str, dt.datetime | None], array[int]] = field(default_factory=dict, init=False)
    _proofs: dict[tuple[str, dt.datetime | None], Proof] = field(default_factory=dict, init=False)

    def ids(self, parent: Endpoint, changed_since: dt.datetime | None = None) -> array[int]:
        """Ids of every ``parent`` row, or of those changed at or after ``changed_since``.

        A parent without a change field cannot say what changed: then every id is listed.

        Raises:
            EndpointUnavailable: The parent's collection answered 404 or 501.
        """
        key = (parent.name, changed_since)
        with self._lock:
            if key not in self._ids:
                proof = Proof()
                self._ids[key] = self._list(parent, changed_since, proof)
                self._proofs[key] = proof
            return self._ids[key]

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
    ) -> array[int]:
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
        ids = array("q")
        unusable = 0
        for page in pages:
            for item in page.items:
                value = _parent_id(parent, item)
                if value is None:
                    unusable += 1
                else:
                    ids.append(value)
        if unusable:
            # A parent whose id cannot be read has children the run cannot read.
            proof.fail(f"{unusable} {parent.name} rows without a usable id")
            self.logger.warning(
                "%s listing: %d rows without a usable id; their children are not read",
                parent.name,
                unusable,
            )
        self.logger.info("Listed %d %s ids for per-parent streams", len(ids), parent.name)
        return ids


def _parent_id(parent: Endpoint, item: object) -> int | None:
    """A parent's id as the child records key it (a numeric string is the integer)."""
    try:
        value = record_id(parent, item)
    except BadRecord:
        return None
    return value if isinstance(value, int) else None
