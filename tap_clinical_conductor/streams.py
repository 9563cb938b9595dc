"""The stream that serves every catalogue row: a top-level collection or a per-parent fan-out.

Every stream is a ``CCStream`` configured by one ``catalogue.Endpoint`` row. The SDK's
parent-child mechanism is deliberately not used: it only visits children of parents that were
emitted in this run (an incremental parent would hide a new subject in an old study), keeps one
state partition per parent, and syncs partitions one after another. Instead a child stream asks
``selection`` which parents to read (listed once per run, shared by all children of that parent),
fetches partitions on a worker pool and keeps one bookmark for the whole stream.

A sync decides its ``ReadPlan`` once, from a sample of records, then reads with it. Records leave
as whole pages of RECORD lines when nothing is mapped, else one by one through the SDK.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import itertools
import typing as t
from collections import Counter

import msgspec
from singer_sdk import Tap, metrics
from singer_sdk.helpers.conform import TypeConformanceLevel
from singer_sdk.mapper import RemoveRecordTransform, SameRecordTransform
from singer_sdk.singerlib.catalog import REPLICATION_FULL_TABLE
from typing_extensions import override

from tap_clinical_conductor import completeness, readplan, selection
from tap_clinical_conductor.catalogue import Endpoint
from tap_clinical_conductor.errors import EndpointUnavailable, RequestFailed
from tap_clinical_conductor.fanout import Progress, ordered_map
from tap_clinical_conductor.output import RecordOutput
from tap_clinical_conductor.paging import Proof
from tap_clinical_conductor.records import (
    DROPPED_OLDER,
    BadRecord,
    JSONObject,
    PageEncoder,
    build_record,
    dig,
    key_properties,
    key_reader,
    record_schema,
    unreadable,
)
from tap_clinical_conductor.responses import Page
from tap_clinical_conductor.sdk_private import Emission, GuardedStream
from tap_clinical_conductor.tenant import Tenant

#: A per-parent stream whose first partitions are all empty decides its plan after this many.
DECIDE_AFTER_EMPTY_PARTITIONS = 25
#: A top-level stream logs its progress every this many pages.
LOG_EVERY_PAGES = 50

#: The pages of one parent and the proof they are all, or the answer that says the parent is gone.
Partition = tuple[list[Page], Proof] | EndpointUnavailable
#: A page, the parent id its records belong to, or where in a record to find it.
Located = tuple[Page, int | None, str | None]


class _Decoders:
    """What reads a page's records under one read plan."""

    def __init__(self, stream: CCStream, plan: readplan.ReadPlan) -> None:
        endpoint = stream.endpoint
        self.keys = key_reader(endpoint, plan.change_field)
        self.page: PageEncoder | None = None
        if PageEncoder.fits(endpoint):
            self.page = PageEncoder(
                endpoint,
                stream=stream.name,
                instance_id=stream.tenant.instance_id,
                change_field=plan.change_field,
                tenant_tz=stream.tenant.tz,
                lower=plan.lower_text,
            )


class CCStream(GuardedStream):
    """A Clinical Conductor endpoint: a top-level collection or a per-parent fan-out."""

    # Parallel partitions and keyset paging by id mean records are not ordered by change
    # value; the SDK then keeps the maximum as a progress marker and only promotes it to the
    # bookmark when the stream completes, so a killed run never moves the bookmark.
    is_sorted = False
    # The tap builds records of exactly the declared types; re-walking them is pure cost.
    TYPE_CONFORMANCE_LEVEL = TypeConformanceLevel.NONE

    def __init__(self, tap: Tap, endpoint: Endpoint, tenant: Tenant, output: RecordOutput) -> None:
        """Create the stream for one catalogue row."""
        self.endpoint = endpoint
        self.tenant = tenant
        self.output = output
        super().__init__(tap=tap, schema=record_schema(endpoint), name=endpoint.name)
        self.primary_keys = key_properties(endpoint)
        self.selected_by_default = endpoint.default_selected
        # Non-OData lists arrive whole and cannot be filtered: always full table.
        self.replication_key = "modifiedDate" if endpoint.odata else None
        self.skipped: Counter[str] = Counter()
        self._plan: readplan.ReadPlan | None = None
        self._decoders: _Decoders | None = None
        self._record_counter: metrics.Counter | None = None
        self._started: dt.datetime | None = None
        self._written = 0
        self._why_unproven: str | None = None
        self._cc_tap = tap
        #: Parents are chosen under a budget: each is read whole, and no bookmark is kept.
        self._partial = False
        self._figures: dict[str, t.Any] | None = None

    @property
    def plan(self) -> readplan.ReadPlan:
        """The read plan of this sync (``UNDECIDED`` until a sample decided it)."""
        return self._plan or readplan.UNDECIDED

    # -- SDK hooks -----------------------------------------------------------------------------

    @property
    @override
    def emit_activate_version_messages(self) -> bool:
        # target-postgres 0.8.1 retires every row of the table with an older version, whatever
        # its instance_id. Deletes go through `completeness` instead.
        return False

    @override
    def get_records(self, context: t.Mapping[str, t.Any] | None) -> t.Iterable[dict[str, t.Any]]:
        """Read the endpoint; a missing endpoint is skipped with one warning.

        When the sync writes whole pages (``Emission.PAGES``) the records are written here and
        nothing is yielded.
        """
        emission = self.emission
        for page, parent_id, parent_ref in self._pages():
            if emission is Emission.PAGES:
                self._write_page(page, parent_id, parent_ref)
            else:
                for record in self._records(page, parent_id, parent_ref):
                    record["data"] = _as_data(record["data"], plain=emission is Emission.PLAIN)
                    self._written += 1
                    yield record

    @override
    def choose_emission(self, *, write_messages: bool) -> Emission:
        # singer-sdk's per-record loop (post_process, sort checks, a dry-run check, child
        # contexts, the stream-map dispatch, a RecordMessage, a counter) costs more than
        # everything else the tap does per record, and none of it does anything here when
        # nothing is mapped, flattened, deselected or limited.
        if not write_messages:
            return Emission.PLAIN
        maps = self.stream_maps
        if maps[0].flattening_enabled:
            return Emission.PLAIN
        if any(len(crumb) > 2 and not on for crumb, on in self.mask.items()):
            # A field deselected inside `data`: the SDK's property walk only enters dicts.
            return Emission.PLAIN
        if (
            self.selected
            and self.ABORT_AT_RECORD_COUNT is None
            and len(maps) == 1
            and type(maps[0]) is SameRecordTransform
            and all(self.mask[("properties", name)] for name in self.schema["properties"])
            and self.output.takes_lines()
        ):
            return Emission.PAGES
        return Emission.OBJECTS

    @override
    def get_record_counter(
        self,
        *,
        endpoint: str | None = None,
        log_interval: float = metrics.DEFAULT_LOG_INTERVAL,
    ) -> metrics.Counter:
        # Kept so that whole-page writes count their records in the SDK's record_count metric.
        self._record_counter = super().get_record_counter(
            endpoint=endpoint, log_interval=log_interval
        )
        return self._record_counter

    @override
    def sync_started(self) -> None:
        full_table = self.replication_method == REPLICATION_FULL_TABLE
        incremental = bool(self.replication_key) and not full_table
        self.tenant.report.stream_started(
            self.name,
            incremental=incremental,
            bookmark=(self._bookmark() or self.tenant.settings.start_date) if incremental else None,
        )

    @override
    def sync_finished(self) -> None:
        extra: dict[str, object] = {}
        if self._plan is not None and self.endpoint.odata and not self._plan.incremental:
            extra["read"] = "whole table (no change field, or FULL_TABLE in the catalog)"
        if self._why_unproven is not None:
            extra["not proven complete"] = self._why_unproven
        self.tenant.report.stream_finished(
            self.name, records=self._written, bookmark=self._bookmark(), extra=extra
        )

    # -- the read plan -------------------------------------------------------------------------

    def _bookmark(self) -> str | None:
        value = self.stream_state.get("replication_key_value")
        return str(value) if value else None

    def _has_lower_bound(self) -> bool:
        return bool(self._bookmark() or self.tenant.settings.start_date)

    def _decide(self, sample: t.Iterable[object]) -> None:
        """Fix this sync's read plan from config or a sample of records."""
        settings = self.tenant.settings
        # The catalog (or an earlier sync of this run) chose FULL_TABLE: no filter, no bookmark.
        # Parents chosen under a budget are read whole: a bookmark would skip the children that
        # changed under parents this run did not read.
        catalog_full = self.replication_method == REPLICATION_FULL_TABLE
        full_table = catalog_full or self._partial
        plan = readplan.decide(
            self.endpoint,
            sample,
            incremental_capable=bool(self.replication_key) and not full_table,
            overrides=settings.change_field_overrides,
            bookmark=None if full_table else self._bookmark(),
            start_date=settings.start_date,
            lookback=settings.lookback,
        )
        if full_table and self.replication_key:
            self.logger.info(
                "%s: %s; every record is read and no bookmark kept",
                self.name,
                "FULL_TABLE in the catalog" if catalog_full else "parents chosen under a budget",
            )
            self.switch_to_full_table()
            self.forget_bookmark()
        elif self.replication_key and not plan.incremental:
            # Most CC models have no change timestamp: read the whole table, emit no bookmark.
            # The end line says so ("whole table, no change field").
            self.logger.debug(
                "%s: no change field (looked for %s); full table this run",
                self.name,
                ", ".join(self.endpoint.change_candidates),
            )
            self.switch_to_full_table()
        elif plan.change_field:
            self.logger.debug("%s: change field %r", self.name, plan.change_field)
        self._plan = plan
        self._decoders = None

    # -- proven complete reads -----------------------------------------------------------------

    def _unproven(self, reason: str) -> None:
        """Note that the read is not proven complete: it deletes nothing, moves no bookmark."""
        if self._why_unproven is None:
            self._why_unproven = reason
            if self.replication_key:
                self.hold_bookmark()
            self.logger.warning(
                "%s: the read is not proven complete (%s); it deletes nothing and keeps the "
                "bookmark where it was",
                self.name,
                reason,
            )

    def _complete(self, parent_id: int | None, records: int) -> None:
        """A read of the whole stream (``parent_id`` ``None``) or one parent is proven complete."""
        plan = self.plan
        if not plan.whole_table or records == 0 or self._started is None:
            # Bounded by a bookmark: rows not asked for are not gone. Nothing read: no proof.
            return
        maps = self.stream_maps
        if any(isinstance(m, RemoveRecordTransform) for m in maps):
            return  # nothing was written
        # A tap-side alias names the table; otherwise the loader's map names it as the catalogue.
        alias = maps[0].stream_alias
        read = completeness.CompleteRead(
            stream=self.name,
            staging_table=alias if alias != self.name else self.endpoint.staging_table,
            parent_id=parent_id,
            started_at=self._started,
            lower_bound=plan.lower_bound,
            records=records,
        )
        self.output.declare(completeness.STREAM, completeness.SCHEMA, completeness.KEY)
        self.output.write_record(
            completeness.STREAM,
            read.record(self.tenant.instance_id),
            None,
            dt.datetime.now(dt.timezone.utc),
        )

    def _read_with(self) -> _Decoders:
        if self._decoders is None:
            self._decoders = _Decoders(self, self.plan)
        return self._decoders

    # -- building and writing records ----------------------------------------------------------

    def _records(
        self, page: Page, parent_id: int | None, parent_ref: str | None
    ) -> t.Iterator[dict[str, t.Any]]:
        """The page's staging records, one by one; ``data`` undecoded where it can be."""
        raws: t.Iterable[msgspec.Raw | None]
        items: t.Iterable[object]
        if page.has_nul or page.raw is None or self.endpoint.id_from == ("$value",):
            # Decode whole records: NUL characters must be scrubbed inside them.
            items = page.items
            raws = itertools.repeat(None)
        else:
            items = map(self._read_with().keys, page.raw)
            raws = page.raw
        plan = self.plan
        change_field = plan.change_field
        lower = plan.lower_text
        tenant = self.tenant
        for item, raw in zip(items, raws, strict=False):
            try:
                pid = parent_id
                if parent_ref is not None:
                    value = dig(item, parent_ref)
                    if not isinstance(value, int) or isinstance(value, bool):
                        raise BadRecord(f"no parent id at {parent_ref}")
                    pid = value
                record = build_record(
                    self.endpoint,
                    item,
                    instance_id=tenant.instance_id,
                    parent_id=pid,
                    change_field=change_field,
                    tenant_tz=tenant.tz,
                    scrub_nul=page.has_nul,
                    data=raw,
                )
            except BadRecord as exc:
                self.skipped[f"skipped, {exc}"] += 1
                continue
            changed = record["modifiedDate"]
            if changed is None:
                if change_field and isinstance(item, dict) and item.get(change_field) is not None:
                    self.skipped[unreadable(change_field)] += 1
            elif lower is not None and changed < lower:
                # The server ignored $filter: keep the bookmark semantics on the client.
                self.skipped[DROPPED_OLDER] += 1
                continue
            yield record

    def _write_page(self, page: Page, parent_id: int | None, parent_ref: str | None) -> None:
        """Write one page's records straight to the output and account for them."""
        extracted_at = dt.datetime.now(dt.timezone.utc)
        version = None
        # A body with NUL characters is decoded whole (they are scrubbed inside the records).
        encoder = None if page.has_nul else self._read_with().page
        written = None
        if encoder is not None and page.raw is not None and page.body is not None:
            written = encoder.encode(
                page.body,
                page.items_key,
                page.raw,
                parent_id=parent_id,
                version=version,
                extracted_at=msgspec.json.encode(extracted_at),
                skipped=self.skipped,
            )
        if written is None:
            # Records the strict page decoder refused, or NUL to scrub: one by one.
            records = list(self._records(page, parent_id, parent_ref))
            for record in records:
                self.output.write_record(self.name, record, version, extracted_at)
            count = len(records)
            best = max((r["modifiedDate"] for r in records if r["modifiedDate"]), default=None)
        else:
            lines, count, best = written
            self.output.write_lines(lines)
        self._written += count
        if self._record_counter is not None:
            self._record_counter.increment(count)
        if best is not None:
            self.advance_bookmark(best)
        self.records_written()

    def _report_skips(self) -> None:
        for reason, n in sorted(self.skipped.items()):
            self.logger.warning("%s: %d %s", self.name, n, reason)

    # -- what to read --------------------------------------------------------------------------

    def _pages(self) -> t.Iterator[Located]:
        """Every page of the endpoint, with the parent it belongs to (or where to find it)."""
        endpoint = self.endpoint
        collection = endpoint.collection_path(self.tenant.settings.prefer_top_level)
        self._started = dt.datetime.now(dt.timezone.utc)
        self._written = 0
        self._why_unproven = None
        self._figures = None
        requests_before = self.tenant.client.counters["requests"]
        try:
            if collection is None:
                yield from self._read_partitions()
            elif endpoint.parent_key is None:
                yield from self._read_collection(collection, parent_ref=None)
            else:
                try:
                    yield from self._read_collection(collection, parent_ref=endpoint.parent_ref)
                except EndpointUnavailable as exc:
                    self.logger.warning(
                        "%s: top-level %s answered HTTP %s; reading per %s instead",
                        self.name,
                        endpoint.top_level_path,
                        exc.status,
                        endpoint.parent_key,
                    )
                    self._written = 0
                    yield from self._read_partitions()
        except EndpointUnavailable as exc:
            self.tenant.unavailable(exc)
            if collection is None:
                self._keep_sweep(dataclasses.replace(self._sweep_state(), unavailable=True))
            self.logger.warning(
                "Skipping stream %s: %s answered HTTP %s (%s). Nothing was changed in its table.",
                self.name,
                exc.path,
                exc.status,
                "not implemented on this edition" if exc.status == 501 else "no such endpoint",
            )
            return
        self._report_skips()
        self._write_coverage(self.tenant.client.counters["requests"] - requests_before)

    def _write_coverage(self, requests: int) -> None:
        """The stream's ``cc_sync_coverage`` record: what it read, and how stale it can be."""
        parents = self.tenant.parents
        record = selection.coverage_record(
            self.tenant.instance_id,
            self.name,
            parents.run_started_at,
            parents.today,
            requests=requests,
            records=self._written,
            figures=self._figures,
        )
        self.output.declare(
            selection.COVERAGE_STREAM, selection.COVERAGE_SCHEMA, selection.COVERAGE_KEY
        )
        self.output.write_record(
            selection.COVERAGE_STREAM, record, None, dt.datetime.now(dt.timezone.utc)
        )

    # -- the sweep state -----------------------------------------------------------------------

    def _sweep_state(self) -> selection.SweepState:
        return selection.SweepState.load(self.stream_state.get(selection.STATE_KEY))

    def _keep_sweep(self, state: selection.SweepState) -> None:
        self.keep_in_state(selection.STATE_KEY, state.dump())

    def _peers(self) -> list[selection.Peer]:
        """The selected per-parent streams of the run, with their states (for the budget split)."""
        prefer = self.tenant.settings.prefer_top_level
        states = self._cc_tap.state.get("bookmarks", {})
        return [
            selection.Peer(
                stream.name,
                stream.endpoint.parent,
                selection.SweepState.load(states.get(stream.name, {}).get(selection.STATE_KEY)),
            )
            for stream in self._cc_tap.streams.values()
            if isinstance(stream, CCStream)
            and stream.selected
            and stream.endpoint.collection_path(prefer) is None
        ]

    # -- top-level collections -----------------------------------------------------------------

    def _read_collection(self, path: str, parent_ref: str | None) -> t.Iterator[Located]:
        """Every page of a collection; ``EndpointUnavailable`` only before the first page."""
        client = self.tenant.client
        if not self.endpoint.odata:
            page = client.get_page(path, None, single=self.endpoint.single)
            self.tenant.answered()
            self._decide(page.items)
            yield page, None, parent_ref
            self._complete(None, self._written)
            return
        if self._has_lower_bound():
            # The filter of the first page depends on the change field: look at one record.
            probe = client.get_page(path, {"$top": 1})
            self.tenant.answered()
            self._decide(probe.items)
            self.tenant.verify_filter(self.endpoint, path, self.plan, probe)
        pages = self.tenant.pages(
            self.endpoint, path, self.plan.change_filter(self.tenant.tz), self.logger
        )
        number = 0
        try:
            for number, page in enumerate(pages, start=1):
                if number == 1:
                    self.tenant.answered()
                if self._plan is None:
                    # No lower bound: the first page is unfiltered anyway and doubles as the probe.
                    self._decide(page.items)
                if number % LOG_EVERY_PAGES == 0:
                    self.tenant.report.progress(self.name, pages=number, records=self._written)
                yield page, None, parent_ref
        except EndpointUnavailable as exc:
            if number:
                raise RequestFailed(f"{self.name}: {exc} after {number} pages") from None
            raise
        if self._plan is None:
            self._decide([])
        if pages.proof.unproven is not None:
            self._unproven(pages.proof.unproven)
        else:
            self._complete(None, self._written)

    # -- per-parent fan-out --------------------------------------------------------------------

    def _read_partitions(self) -> t.Iterator[Located]:
        endpoint = self.endpoint
        parent = endpoint.parent
        parents = self.tenant.parents
        try:
            plan = parents.begin(
                self.name, parent, self._sweep_state(), self._peers(), self._bookmark()
            )
        except EndpointUnavailable as exc:
            raise EndpointUnavailable(str(exc), exc.status, f"{parent.name} listing") from None
        self._partial = plan.budgeted
        client = self.tenant.client
        progress = Progress(self.logger, self.name, plan.total, lambda: client.counters["requests"])
        partitions = self._partitions(iter(plan))
        proven: list[tuple[int, int]] = []  # (parent id, records) of partitions proven complete
        all_proven = plan.unproven is None
        answered = False
        try:
            for parent_id, fetched in partitions:
                yield from self._partition_pages(parent_id, fetched, proven, progress)
                plan.read(parent_id)
                answered = answered or not isinstance(fetched, EndpointUnavailable)
                all_proven = all_proven and (
                    isinstance(fetched, EndpointUnavailable) or fetched[1].unproven is None
                )
                if plan.checkpoint_due():
                    # A run killed after this STATE message resumes from here.
                    self._keep_sweep(plan.state())
                    self.checkpoint()
        except EndpointUnavailable as exc:
            if answered:
                # Some parents answered, one that still exists did not: not a missing endpoint.
                raise RequestFailed(
                    f"{self.name}: HTTP {exc.status} for a {parent.name} row that still exists, "
                    "after other parents answered"
                ) from None
            raise
        progress.log(final=True)
        state = plan.state()
        self._keep_sweep(state)
        self._figures = plan.coverage(parents.tenant_now(), state)
        self._log_coverage(plan, self._figures)
        if plan.unproven is not None and not plan.segments.fixed:
            self.logger.warning(
                "%s: the %s listing is not proven complete (%s); only the parents read are "
                "reconciled",
                self.name,
                parent.name,
                plan.unproven,
            )
        if all_proven and plan.read_every_parent() and not plan.segments.fixed:
            self._complete(None, self._written)
        else:
            for parent_id, records in proven:
                self._complete(parent_id, records)

    def _log_coverage(self, plan: selection.ParentPlan, figures: t.Mapping[str, t.Any]) -> None:
        if plan.stopped:
            self.logger.warning(
                "%s: the run's budget is spent after %d of %d %s (%d new ones wait); the next "
                "run goes on from sweep position %s",
                self.name,
                plan.consumed,
                plan.total,
                self.endpoint.parent.name,
                figures["unread_new"],
                figures["sweep_cursor"],
            )
        # The stream's end line and the run's summary carry the selection's figures.
        self.tenant.report.note(
            self.name,
            parents=f"{plan.consumed:,} of {plan.total:,}",
            **{f"by {reason}": figures[f"read_{reason}"] for reason in selection.REASONS},
            **{"sweep period (days)": figures["sweep_period_days"]},
            **{"staleness bound (hours)": figures["staleness_bound_hours"]},
        )

    def _partition_pages(
        self,
        parent_id: int,
        fetched: Partition,
        proven: list[tuple[int, int]],
        progress: Progress,
    ) -> t.Iterator[Located]:
        """One partition's pages; a proven one is noted in ``proven`` with its record count."""
        if isinstance(fetched, EndpointUnavailable):
            # Proven gone (see `_fetch_partition`): its children are gone too.
            self.skipped["partitions skipped, parent gone (HTTP 404)"] += 1
            progress.step(0)
            return
        pages, proof = fetched
        before = self._written
        for page in pages:
            yield page, parent_id, None
        if proof.unproven is None:
            proven.append((parent_id, self._written - before))
        else:
            self._unproven(proof.unproven)
        progress.step(sum(map(len, pages)))

    def _partitions(self, ids: t.Iterator[int]) -> t.Iterator[tuple[int, Partition]]:
        """Each parent's pages, in parent order.

        Sequential until one partition shows whether there is a change field (every later
        request's filter depends on it), then on the worker pool. A 404 on a parent's first page
        is either a parent deleted since the listing or an endpoint this tenant lacks: the
        parent's own collection decides (``_fetch_partition``).
        """
        answered = 0
        for parent_id in ids:
            fetched = self._fetch_partition(parent_id)
            if isinstance(fetched, EndpointUnavailable):
                yield parent_id, fetched
                continue
            answered += 1
            items = [item for page in fetched[0] for item in page.items]
            if items or answered >= DECIDE_AFTER_EMPTY_PARTITIONS:
                self._decide(items)
                yield parent_id, fetched
                break
            yield parent_id, fetched
        else:
            self._decide([])
            return
        workers = self.tenant.settings.max_parallel_requests
        yield from ordered_map(self._fetch_partition, ids, workers)

    def _fetch_partition(self, parent_id: int) -> Partition:
        """All pages of one parent; runs on worker threads (HTTP and parsing only).

        A 404 or 501 on the first page of a parent that is gone from its collection is the
        parent's absence (returned); for a parent that is still there it is the endpoint's
        (``EndpointUnavailable`` raised). A 404 or 501 after the first page fails the run.
        """
        endpoint = self.endpoint
        path = endpoint.path.replace("{" + (endpoint.parent_key or "") + "}", str(parent_id))
        pages = self.tenant.pages(
            endpoint, path, self.plan.change_filter(self.tenant.tz), self.logger
        )
        got: list[Page] = []
        try:
            for page in pages:
                got.append(page)
        except EndpointUnavailable as exc:
            if got:
                raise RequestFailed(
                    f"{self.name}: HTTP {exc.status} on page {len(got) + 1} of {path}"
                ) from None
            if self.tenant.listing.exists(endpoint.parent, parent_id):
                raise EndpointUnavailable(str(exc), exc.status, endpoint.path) from None
            return exc
        self.tenant.answered()
        return got, pages.proof


def _as_data(data: object, *, plain: bool) -> object:
    """A record's ``data`` for the SDK: an opaque ``JSONObject``, or a plain dict when ``plain``.

    ``JSONObject`` keeps the SDK's per-record property walk out of the API object (``data`` is
    one JSONB column: nothing below it can be deselected); batch files and flattening need the
    object itself.
    """
    if isinstance(data, msgspec.Raw):
        data = msgspec.json.decode(data)
    if plain:
        return data.value if isinstance(data, JSONObject) else data
    return data if isinstance(data, JSONObject) else JSONObject(t.cast("dict[str, object]", data))
