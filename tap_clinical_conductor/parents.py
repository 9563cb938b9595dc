"""Parent listing: the ids a per-parent stream fans out over, listed once per run and shared.

A listing is a keyset-paged read of the parent's collection that keeps only the ids (157
requests for 157k studies), optionally limited to parents whose own change field moved since a
given instant. Every child stream of the same parent and bound shares one listing.
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
from tap_clinical_conductor.paging import Pager
from tap_clinical_conductor.readplan import find_change_field


@dataclass
class ParentListing:
    """Lists and remembers parent ids for the run."""

    client: CCClient
    formats: FilterFormats
    page_size: int
    tenant_tz: dt.tzinfo
    logger: logging.Logger
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False)
    _ids: dict[tuple[str, dt.datetime | None], array[int]] = field(default_factory=dict, init=False)

    def ids(self, parent: Endpoint, changed_since: dt.datetime | None = None) -> array[int]:
        """Ids of every ``parent`` row, or of those changed at or after ``changed_since``.

        A parent without a change field cannot say what changed: then every id is listed.

        Raises:
            EndpointUnavailable: The parent's collection answered 404 or 501.
        """
        key = (parent.name, changed_since)
        with self._lock:
            if key not in self._ids:
                self._ids[key] = self._list(parent, changed_since)
            return self._ids[key]

    def _list(self, parent: Endpoint, changed_since: dt.datetime | None) -> array[int]:
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
        )
        ids = array("q")
        for page in pages:
            for item in page.items:
                value = item.get(parent.id_field) if isinstance(item, dict) else None
                if isinstance(value, int) and not isinstance(value, bool):
                    ids.append(value)
        self.logger.info("Listed %d %s ids for per-parent streams", len(ids), parent.name)
        return ids
