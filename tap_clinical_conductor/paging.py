"""Every page of one OData query, without skipping or repeating rows.

A plain (non-OData) list is one request. Keyset paging (``id gt <last>``, ordered by id) where
the model has an id: it neither skips nor repeats rows when data changes between pages, and costs
the server no OFFSET. Models without an id page with ``$skip``. A server that ignores the id
filter is detected (the page starts at or before the last id) and paged with ``$skip``; a server
that ignores ``$skip`` too is detected by a repeated page, which ends the read without duplicates.

Paging also keeps the proof that the read is complete (``Proof``): it ends on an empty page, on
a page shorter than the server's page size (``PageCap``: a server that caps ``$top`` below
``page_size`` and gives no next link is found by asking once more), never on a repeated page, and
each ``$skip`` page starts with the last row of the page before it (asked for again: a row
deleted before the cursor would otherwise let the next row slip by unseen).
"""

from __future__ import annotations

import logging
import threading
import typing as t
from dataclasses import dataclass, field

from tap_clinical_conductor.catalogue import Endpoint
from tap_clinical_conductor.client import CCClient
from tap_clinical_conductor.errors import BadRequest
from tap_clinical_conductor.filters import ChangeFilter, FilterFormats
from tap_clinical_conductor.records import BadRecord, record_id
from tap_clinical_conductor.responses import Page
from tap_clinical_conductor.timestamps import LiteralFormat


class PageCap:
    """What the server's page size is known to be for one endpoint, shared by its reads.

    Per endpoint: a server may cap ``$top`` on one endpoint and not on another.

    A short page without a next link ends a read only when it is shorter than a page the server
    was seen to return (``honoured``) or than a cap already found; otherwise one more request
    shows whether it was the end or the server's own limit on ``$top``.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.honoured = 0
        self.cap: int | None = None

    def saw(self, size: int) -> None:
        """A page of ``size`` records arrived."""
        with self._lock:
            self.honoured = max(self.honoured, size)

    def ends(self, size: int, page_size: int) -> bool | None:
        """Whether a short page of ``size`` records ends the read (``None``: ask once more)."""
        with self._lock:
            if self.cap is not None:
                return size < self.cap
            return True if size < self.honoured else None if size < page_size else False

    def found(self, size: int) -> bool:
        """A page of ``size`` was followed by more rows: the server caps ``$top`` at ``size``."""
        with self._lock:
            first = self.cap is None
            self.cap = size if self.cap is None else min(self.cap, size)
            return first


class PageCaps:
    """One ``PageCap`` per endpoint, for the whole run (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._caps: dict[str, PageCap] = {}

    def of(self, endpoint: Endpoint) -> PageCap:
        """The cap of ``endpoint``."""
        with self._lock:
            return self._caps.setdefault(endpoint.name, PageCap())


@dataclass
class Proof:
    """Whether the pages of one read are proven to be all of them (``unproven`` says why not)."""

    unproven: str | None = None
    pages: int = 0

    def fail(self, reason: str) -> None:
        """The read is not proven complete, for ``reason`` (the first reason is kept)."""
        if self.unproven is None:
            self.unproven = reason


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
    cap: PageCap = field(default_factory=PageCap)
    proof: Proof = field(default_factory=Proof)

    def __iter__(self) -> t.Iterator[Page]:
        """Yield pages until the query is exhausted; ``proof`` says whether that is proven."""
        endpoint = self.endpoint
        if not endpoint.odata:
            # A plain list (a per-parent one, e.g. a visit's elements) answers whole and ignores
            # $top, $skip and $filter: one request is the read, and its answer is all of it.
            page = self.client.get_page(self.path, None)
            self.proof.pages += 1
            if page:
                yield page
            return
        keyset = not endpoint.id_from and endpoint.order_by is None
        order_by = endpoint.order_by or endpoint.id_field
        last_id: int | str | None = None
        skip = 0
        previous: tuple[object, object, int] | None = None
        short: int | None = None  # a short page whose successor decides: end, or a capped $top
        last_by_skip: int | str | None = None
        while True:
            # $skip pages overlap by one row: the row at the cursor must be the last one read.
            overlap = not keyset and skip > 0
            try:
                page, fmt = self._get(
                    order_by, last_id if keyset else None, 0 if keyset else skip - overlap
                )
            except BadRequest:
                if not (keyset and last_id is not None):
                    raise
                # The server cannot compare this id (a GUID typed field, say): page by $skip.
                self.logger.warning(
                    "%s: the server refuses the id filter; paging with $skip", self.path
                )
                keyset = False
                continue
            size = len(page)
            self.proof.pages += 1
            if short is not None:
                if size > overlap and self.cap.found(short):
                    self.logger.warning(
                        "%s: the server returns at most %d rows per page although $top is %d, "
                        "without a next link; paging on",
                        self.path,
                        short,
                        self.page_size,
                    )
                short = None
            if size:
                self.cap.saw(size)
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
                    "%s: the server repeated a page (it ignores $skip); stopping, and the read "
                    "is not complete: it deletes nothing and moves no bookmark",
                    self.path,
                )
                self.proof.fail(f"{self.path}: the server repeated a page")
                return
            if fmt is not None:
                self.formats.accepted(fmt)
            previous = signature
            fresh = page
            if overlap:
                if size and first is not None and first == last_by_skip:
                    fresh = page.without_first()
                else:
                    self.proof.fail(f"{self.path}: rows moved while paging with $skip")
            if fresh:
                yield fresh
            skip += size - overlap
            if size:
                last_by_skip = last
            if keyset and last is not None:
                last_id = last
            elif keyset and size:
                keyset = False
            if size <= overlap:
                return
            if size < self.page_size and not page.next_link:
                ends = self.cap.ends(size, self.page_size)
                if ends:
                    return
                if ends is None:
                    short = size

    def _get(
        self, order_by: str, after: int | str | None, skip: int, *, top: int | None = None
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
            params: dict[str, object] = {"$orderby": order_by, "$top": top or self.page_size}
            if clauses:
                params["$filter"] = " and ".join(
                    f"({c})" if len(clauses) > 1 else c for c in clauses
                )
            if skip:
                params["$skip"] = skip
            try:
                page = self.client.get_page(self.path, params)
            except BadRequest as exc:
                if self.change is None or (after is not None and self.formats.confirmed()):
                    # A proven datetime format: the id condition was refused (see __iter__).
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
