"""Every page of one OData query, without skipping or repeating rows.

Keyset paging (``id gt <last>``, ordered by id) where the model has an id: it neither skips nor
repeats rows when data changes between pages, and costs the server no OFFSET. Models without
an id page with ``$skip``. A server that ignores the id filter is detected (the page starts at
or before the last id) and paged with ``$skip``; a server that ignores ``$skip`` too is
detected by a repeated page, which ends the read without duplicates.
"""

from __future__ import annotations

import logging
import typing as t
from dataclasses import dataclass

from tap_clinical_conductor.catalogue import Endpoint
from tap_clinical_conductor.client import CCClient
from tap_clinical_conductor.errors import BadRequest
from tap_clinical_conductor.filters import ChangeFilter, FilterFormats
from tap_clinical_conductor.records import BadRecord, record_id
from tap_clinical_conductor.responses import Page
from tap_clinical_conductor.timestamps import LiteralFormat


@dataclass(frozen=True)
class Pager:
    """The pages of ``path`` for ``endpoint``, with an optional change condition."""

    client: CCClient
    endpoint: Endpoint
    path: str
    page_size: int
    change: ChangeFilter | None
    formats: FilterFormats
    logger: logging.Logger

    def __iter__(self) -> t.Iterator[Page]:
        """Yield pages until the query is exhausted."""
        endpoint = self.endpoint
        keyset = not endpoint.id_from and endpoint.order_by is None
        order_by = endpoint.order_by or endpoint.id_field
        last_id: int | str | None = None
        skip = 0
        previous: tuple[object, object, int] | None = None
        while True:
            page, fmt = self._get(order_by, last_id if keyset else None, 0 if keyset else skip)
            size = len(page)
            # First id, last id and size identify a page well enough to notice a repeat, and
            # keep the paging bookkeeping off the per-record path.
            first = _safe_id(endpoint, page.item(0)) if size else None
            last = _safe_id(endpoint, page.item(-1)) if size else None
            signature = (first, last, size)
            if keyset and last_id is not None and size and _at_or_before(first, last_id):
                self.logger.warning(
                    "%s: the server ignores the id filter; paging with $skip", self.path
                )
                keyset = False
                continue
            if previous is not None and signature == previous and size:
                self.logger.warning(
                    "%s: the server repeated a page (it ignores $skip); stopping", self.path
                )
                return
            if fmt is not None:
                self.formats.accepted(fmt)
            yield page
            skip += size
            previous = signature
            if keyset and last is not None:
                last_id = last
            elif keyset:
                keyset = False
            if size < self.page_size and not page.next_link:
                return
            if not size:
                return

    def _get(
        self, order_by: str, after: int | str | None, skip: int
    ) -> tuple[Page, LiteralFormat | None]:
        """One page, and the datetime format its filter was written in (if it had one)."""
        fmt = self.formats.current()
        while True:
            clauses = []
            if self.change is not None:
                clauses.append(self.change.clause(fmt))
            if after is not None:
                after_text = f"'{after}'" if isinstance(after, str) else str(after)
                clauses.append(f"{self.endpoint.id_field} gt {after_text}")
            params: dict[str, object] = {"$orderby": order_by, "$top": self.page_size}
            if clauses:
                params["$filter"] = " and ".join(
                    f"({c})" if len(clauses) > 1 else c for c in clauses
                )
            if skip:
                params["$skip"] = skip
            try:
                page = self.client.get_page(self.path, params)
            except BadRequest as exc:
                if self.change is None:
                    raise
                fmt = self.formats.refused(fmt, exc)
                continue
            return page, (fmt if self.change is not None else None)


def _safe_id(endpoint: Endpoint, item: object) -> int | str | None:
    try:
        return record_id(endpoint, item)
    except BadRecord:
        return None


def _at_or_before(first: int | str | None, last: int | str) -> bool:
    """Whether id ``first`` sorts at or before ``last`` (ids of one kind; mixed kinds never do)."""
    if isinstance(first, int) and isinstance(last, int):
        return first <= last
    if isinstance(first, str) and isinstance(last, str):
        return first <= last
    return False
