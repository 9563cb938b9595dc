"""The stream kinds that serve the catalogue: top-level collections and per-parent fan-out.

Every stream is an instance of ``CCStream`` configured by one ``catalogue.Endpoint`` row. The
SDK's parent-child mechanism is deliberately not used: it only visits children of parents that
were emitted in this run (an incremental parent would hide a new subject in an old study), keeps
one state partition per parent, and syncs partitions one after another. Instead a child stream
lists every parent id itself (once per run, shared by all children of that parent), fetches
partitions on a worker pool and keeps one bookmark for the whole stream.
"""

from __future__ import annotations

import datetime as dt
import itertools
import typing as t
from collections import Counter

import msgspec
import msgspec.structs
from singer_sdk import Stream, metrics
from singer_sdk.helpers.conform import TypeConformanceLevel
from singer_sdk.mapper import SameRecordTransform
from typing_extensions import override

from tap_clinical_conductor.catalogue import CHANGE_FIELD_CANDIDATES, Endpoint
from tap_clinical_conductor.client import (
    BadRequest,
    CCClient,
    EndpointUnavailable,
    Page,
    RequestFailed,
)
from tap_clinical_conductor.fanout import Progress, ordered_map
from tap_clinical_conductor.records import (
    BadRecord,
    JSONObject,
    PageEncoder,
    build_record,
    dig,
    id_is_string,
    record_id,
)
from tap_clinical_conductor.schemas import data_schema
from tap_clinical_conductor.timestamps import (
    LITERAL_FORMATS,
    LiteralFormat,
    parse_datetime,
    to_bookmark,
)

if t.TYPE_CHECKING:
    from tap_clinical_conductor.tap import TapClinicalConductor

#: A child endpoint is declared missing when this many parents in a row answer 404 before any
#: parent answered 200: a few requests, not one per parent.
MISSING_AFTER = 3


def record_schema(endpoint: Endpoint) -> dict:
    """JSON schema of a staging record for ``endpoint``."""
    properties: dict[str, dict] = {"instance_id": {"type": "string"}}
    if endpoint.parent_key:
        properties[endpoint.parent_key] = {"type": "integer"}
    properties["id"] = {"type": "string" if id_is_string(endpoint) else "integer"}
    properties["modifiedDate"] = {
        "type": ["string", "null"],
        "format": "date-time",
        "description": "The record's change timestamp in UTC; null where the entity has none.",
    }
    properties["data"] = data_schema(endpoint.name)
    return {
        "type": "object",
        "properties": properties,
        "required": list(properties.keys() - {"modifiedDate"}),
    }


def key_reader(
    endpoint: Endpoint, change_field: str | None
) -> t.Callable[[msgspec.Raw], dict | None]:
    """A decoder that reads only the top-level fields the tap needs from a record's JSON.

    msgspec skips every other field without building Python objects for it; the record's JSON
    then goes to the target untouched. ``None`` for a record that is not an object.
    """
    wanted = {path.split(".")[0] for path in endpoint.id_from} or {endpoint.id_field}
    if change_field:
        wanted.add(change_field)
    if endpoint.parent_ref:
        wanted.add(endpoint.parent_ref.split(".")[0])
    names = sorted(wanted)
    struct = msgspec.defstruct(
        "Keys",
        [(f"f{i}", object, None) for i in range(len(names))],
        rename={f"f{i}": name for i, name in enumerate(names)},
    )
    decode = msgspec.json.Decoder(struct).decode
    astuple = msgspec.structs.astuple

    def read(raw: msgspec.Raw) -> dict | None:
        try:
            values = astuple(decode(raw))
        except msgspec.ValidationError:
            return None
        return {k: v for k, v in zip(names, values, strict=True) if v is not None}

    return read


def _with_plain_data(record: dict) -> dict:
    """``record`` with ``data`` as a plain dict (it may travel undecoded or wrapped)."""
    data = record["data"]
    if isinstance(data, msgspec.Raw):
        record["data"] = msgspec.json.decode(data)
    elif isinstance(data, JSONObject):
        record["data"] = data.value
    return record


def find_change_field(items: t.Iterable[object]) -> str | None:
    """The first change-field candidate present (non-null) in any of ``items``."""
    present: set[str] = set()
    for item in items:
        if isinstance(item, dict):
            present.update(k for k, v in item.items() if v is not None)
    return next((f for f in CHANGE_FIELD_CANDIDATES if f in present), None)


class CCStream(Stream):
    """A Clinical Conductor endpoint: a top-level collection or a per-parent fan-out."""

    # Parallel partitions and keyset paging by id mean records are not ordered by change
    # value; the SDK then keeps the maximum as a progress marker and only promotes it to the
    # bookmark when the stream completes, so a killed run never moves the bookmark.
    is_sorted = False
    # The tap builds records of exactly the declared types; re-walking them costs 20% of CPU.
    TYPE_CONFORMANCE_LEVEL = TypeConformanceLevel.NONE

    def __init__(self, tap: TapClinicalConductor, endpoint: Endpoint) -> None:
        """Create the stream for one catalogue row."""
        self.endpoint = endpoint
        self.cc = tap
        super().__init__(tap=tap, schema=record_schema(endpoint), name=endpoint.name)
        keys = ["instance_id", endpoint.parent_key, "id"]
        self.primary_keys = [k for k in keys if k]
        self.selected_by_default = endpoint.default_selected
        # Non-OData lists arrive whole and cannot be filtered: always full table.
        self.replication_key = "modifiedDate" if endpoint.odata else None
        self.change_field: str | None = None
        self.skipped: Counter[str] = Counter()
        self.lower_bound: dt.datetime | None = None
        self._lower_text: str | None = None
        self._whole_table = False
        self._decided = False
        self._page_mode = False
        self._encoder: PageEncoder | None = None
        self._record_counter: metrics.Counter | None = None
        self._keys: t.Callable[[msgspec.Raw], dict | None] | None = None
        self._max_seen: str | None = None
        self._missing_status = 404
        self._inside_data: bool | None = None

    # -- SDK hooks -----------------------------------------------------------------------------

    @property
    @override
    def emit_activate_version_messages(self) -> bool:
        # The SDK would send ACTIVATE_VERSION before the first record, which makes target-postgres
        # mark every existing row deleted until it is loaded again (and for good if the run dies).
        # The tap sends it itself after a complete read instead; see `_activate_version`.
        return False

    @override
    def get_records(self, context: t.Mapping[str, t.Any] | None) -> t.Iterable[dict]:
        """Read the endpoint; a missing endpoint is skipped with one warning.

        Inside a sync that writes whole pages (see ``_sync_records``) the records are written
        here and nothing is yielded.
        """
        for page, parent_id, parent_ref in self._pages():
            if self._page_mode:
                self._write_page(page, parent_id, parent_ref)
            else:
                yield from self._records(page, parent_id, parent_ref)

    @override
    def _sync_records(
        self, context: t.Mapping[str, t.Any] | None = None, *, write_messages: bool = True
    ) -> t.Generator[dict, t.Any, t.Any]:
        # singer-sdk's record loop costs about 8 µs a record (post_process, sort checks, a
        # dry-run check, child contexts, the stream-map dispatch, a RecordMessage, a counter),
        # most of the budget of a 100k records/s tap, and none of it does anything here when
        # nothing is mapped, flattened, deselected or limited. `sync()` is final and calls this
        # private method; there is no public hook to write records in bulk. So this switches
        # the stream to writing whole pages for the duration of the SDK's loop, which still
        # does the signpost, counters, timer, state finalisation and the final STATE message.
        self._page_mode = (
            write_messages
            and self.selected
            and self.ABORT_AT_RECORD_COUNT is None
            and self._can_write_directly()
            and self.cc.can_write_lines()
        )
        try:
            records = super()._sync_records(context, write_messages=write_messages)
            # Without messages the SDK writes batch files from the records themselves.
            yield from records if write_messages else map(_with_plain_data, records)
        finally:
            self._page_mode = False

    @override
    def get_record_counter(self) -> metrics.Counter:
        # Kept so that whole-page writes count their records in the SDK's record_count metric.
        self._record_counter = super().get_record_counter()
        return self._record_counter

    @override
    def _write_record_message(self, record: dict) -> None:
        # Records of the per-record path carry their JSON undecoded; a stream map or property
        # selection needs the object. Flattening and deselection inside `data` walk only dicts.
        if self._reaches_into_data():
            _with_plain_data(record)
        elif isinstance(record["data"], msgspec.Raw):
            record["data"] = JSONObject(msgspec.json.decode(record["data"]))
        super()._write_record_message(record)

    def _reaches_into_data(self) -> bool:
        """Whether flattening or a deselected field works inside ``data``."""
        if self._inside_data is None:
            deselected = any(len(crumb) > 2 and not on for crumb, on in self.mask.items())
            flattened = any(m.flattening_enabled for m in self.stream_maps)
            self._inside_data = deselected or flattened
        return self._inside_data

    @override
    def _increment_stream_state(
        self, latest_record: dict, *, context: t.Mapping[str, t.Any] | None = None
    ) -> None:
        # For an unsorted stream the SDK only ever keeps the greatest value, so a record that
        # does not raise it cannot change the state: skip the SDK's state bookkeeping (3 µs a
        # record) for it. A null change value would also log a warning per record.
        value = latest_record.get("modifiedDate")
        if value is None or (self._max_seen is not None and value <= self._max_seen):
            return
        self._max_seen = value
        super()._increment_stream_state(latest_record, context=context)

    def _can_write_directly(self) -> bool:
        maps = self.stream_maps
        if len(maps) != 1 or type(maps[0]) is not SameRecordTransform:
            return False
        if self._reaches_into_data():
            return False
        return all(self.mask[("properties", name)] for name in self.schema["properties"])

    # -- change field, filter and bookmark -----------------------------------------------------

    def _decide_change_field(self, sample: list, *, all_parents: bool = True) -> None:
        """Fix the change field from config or a sample of records; downgrade if there is none.

        ``all_parents`` is false when a per-parent read covers only changed parents: then even a
        read without a lower bound is not the whole table and must not retire unseen rows.
        """
        overrides = self.config.get("change_field_overrides") or {}
        if self.name in overrides:
            self.change_field = overrides[self.name]
        elif self.replication_key:
            self.change_field = find_change_field(sample)
        if self.replication_key and self.change_field is None:
            # Most CC models have no change timestamp: read the whole table, emit no bookmark.
            self.logger.info(
                "%s: no change field (looked for %s); full table this run",
                self.name,
                ", ".join(CHANGE_FIELD_CANDIDATES),
            )
            self.replication_key = None
            self.forced_replication_method = "FULL_TABLE"
        elif self.change_field:
            self.logger.info("%s: change field %r", self.name, self.change_field)
        self.lower_bound = self._lower_bound()
        self._lower_text = to_bookmark(self.lower_bound) if self.lower_bound else None
        self._encoder = self._keys = None  # both read the change field
        self._whole_table = self.lower_bound is None and all_parents
        if self._whole_table:
            self._start_version()
        self._decided = True

    def _has_lower_bound(self) -> bool:
        return bool(self.stream_state.get("replication_key_value") or self.config.get("start_date"))

    def _lower_bound(self) -> dt.datetime | None:
        """``bookmark - lookback`` (or ``start_date``); ``None`` means read everything."""
        if not self.replication_key or not self.change_field:
            return None
        candidates = []
        bookmark = self.stream_state.get("replication_key_value")
        if bookmark:
            candidates.append(parse_datetime(bookmark, dt.timezone.utc))
        if self.config.get("start_date"):
            candidates.append(parse_datetime(self.config["start_date"], dt.timezone.utc))
        if not candidates:
            return None
        return max(candidates) - dt.timedelta(minutes=self.config.get("lookback_minutes", 60))

    def _start_version(self) -> None:
        # A complete read carries a table version so that ACTIVATE_VERSION at the end can mark rows
        # that were not seen as deleted. `_stream_version` is what the SDK stamps on RECORD
        # messages; there is no public setter because the SDK only versions at sync start.
        self._stream_version = int(dt.datetime.now(dt.timezone.utc).timestamp())

    def _activate_version(self) -> None:
        # Batch files carry no table version: activating one would retire the rows just loaded.
        batched = self.get_batch_config(self.config) is not None
        if self._whole_table and self._stream_version is not None and not batched:
            # The SDK's writer names each stream map's alias, as the SCHEMA and RECORDs do.
            self._write_activate_version_message(self._stream_version)

    def _filter(self, fmt: LiteralFormat) -> str | None:
        if self.lower_bound is None or not self.change_field:
            return None
        return f"{self.change_field} ge {fmt.render(self.lower_bound, self.cc.tenant_tz)}"

    # -- building records ----------------------------------------------------------------------

    def _records(
        self, page: Page, parent_id: int | None, parent_ref: str | None
    ) -> t.Iterator[dict]:
        raws: t.Iterable[msgspec.Raw | None]
        if page.has_nul or page.raw is None or self.endpoint.id_from == ("$value",):
            # Decode whole records: NUL characters must be scrubbed inside them.
            items: t.Iterable[object] = page.items
            raws = itertools.repeat(None)
        else:
            read = self._key_reader()
            items = map(read, page.raw)
            raws = page.raw
        change_field = self.change_field
        lower = self._lower_text
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
                    instance_id=self.cc.instance_id,
                    parent_id=pid,
                    change_field=change_field,
                    tenant_tz=self.cc.tenant_tz,
                    scrub_nul=page.has_nul,
                    data=raw,
                )
            except BadRecord as exc:
                self.skipped[f"skipped, {exc}"] += 1
                continue
            changed = record["modifiedDate"]
            if changed is None:
                if change_field and isinstance(item, dict) and item.get(change_field) is not None:
                    self.skipped[f"unreadable {change_field} (loaded with modifiedDate null)"] += 1
            elif lower is not None and changed < lower:  # type: ignore[operator]
                # The server ignored $filter: keep the bookmark semantics on the client.
                self.skipped["dropped, older than the bookmark (server ignored $filter)"] += 1
                continue
            yield record

    def _write_page(self, page: Page, parent_id: int | None, parent_ref: str | None) -> None:
        """Write one page's records straight to the output and account for them."""
        extracted_at = dt.datetime.now(dt.timezone.utc)
        # A body with NUL characters is decoded whole (they are scrubbed inside the records).
        encoder = None if page.has_nul else self._page_encoder()
        written = None
        if encoder is not None and page.raw is not None and page.body is not None:
            written = encoder.encode(
                page.body,
                page.items_key,
                page.raw,
                parent_id=parent_id,
                version=self._stream_version,
                extracted_at=msgspec.json.encode(extracted_at),
                skipped=self.skipped,
            )
        if written is None:
            # Records the strict page decoder refused, or NUL to scrub: one by one.
            records = list(self._records(page, parent_id, parent_ref))
            for record in records:
                self.cc.write_record(self.name, record, self._stream_version, extracted_at)
            count = len(records)
            best = max((r["modifiedDate"] for r in records if r["modifiedDate"]), default=None)
        else:
            lines, count, best = written
            self.cc.write_lines(lines)
        if self._record_counter is not None:
            self._record_counter.increment(count)
        if best is not None:
            self._increment_stream_state({"modifiedDate": best})
        self.state_manager.is_flushed = False

    def _page_encoder(self) -> PageEncoder | None:
        """The stream's whole-page writer; ``None`` for endpoints keyed by a synthetic id."""
        if self._encoder is None and PageEncoder.fits(self.endpoint):
            self._encoder = PageEncoder(
                self.endpoint,
                stream=self.name,
                instance_id=self.cc.instance_id,
                change_field=self.change_field,
                tenant_tz=self.cc.tenant_tz,
                lower=self._lower_text,
            )
        return self._encoder

    def _key_reader(self) -> t.Callable[[msgspec.Raw], dict | None]:
        """Decode only the fields a record's key, parent and change value need."""
        if self._keys is None:
            self._keys = key_reader(self.endpoint, self.change_field)
        return self._keys

    def _report_skips(self) -> None:
        for reason, n in sorted(self.skipped.items()):
            self.logger.warning("%s: %d %s", self.name, n, reason)

    # -- top-level collections -----------------------------------------------------------------

    def _pages(self) -> t.Iterator[tuple[Page, int | None, str | None]]:
        """Every page of the endpoint, with the parent it belongs to (or where to find it)."""
        try:
            if self.endpoint.parent_key is None:
                yield from self._read_collection(self.endpoint.path, parent_ref=None)
            elif self.endpoint.top_level_path and self.config.get("prefer_top_level", True):
                try:
                    yield from self._read_collection(
                        self.endpoint.top_level_path, parent_ref=self.endpoint.parent_ref
                    )
                except _ProbeUnavailable as exc:
                    self.logger.warning(
                        "%s: top-level %s answered HTTP %s; reading per %s instead",
                        self.name,
                        self.endpoint.top_level_path,
                        exc.status,
                        self.endpoint.parent_key,
                    )
                    yield from self._read_partitions()
            else:
                yield from self._read_partitions()
        except _ProbeUnavailable as exc:
            self.logger.warning(
                "Skipping stream %s: %s answered HTTP %s (%s). Nothing was changed in its table.",
                self.name,
                exc.path,
                exc.status,
                "not implemented on this edition" if exc.status == 501 else "no such endpoint",
            )
            return
        self._report_skips()

    def _read_collection(
        self, path: str, parent_ref: str | None
    ) -> t.Iterator[tuple[Page, None, str | None]]:
        client = self.cc.client
        if not self.endpoint.odata:
            page = _probe(client, path, None)
            self._decide_change_field(page.items)
            yield page, None, parent_ref
            self._activate_version()
            return
        if self._has_lower_bound():
            # The filter of the first page depends on the change field: look at one record.
            self._decide_change_field(_probe(client, path, {"$top": 1}).items)
        number = 0
        try:
            for number, page in enumerate(self.cc.pages(self, path), start=1):
                if number == 1 and not self._decided:
                    # No bookmark: the first page is unfiltered anyway and doubles as the probe.
                    self._decide_change_field(page.items)
                if number % 50 == 0:
                    self.logger.info("%s: %d pages read", self.name, number)
                yield page, None, parent_ref
        except EndpointUnavailable as exc:
            if number:
                raise RequestFailed(f"{self.name}: {exc} after {number} pages") from None
            raise _ProbeUnavailable(path, exc.status) from None
        if not self._decided:
            self._decide_change_field([])
        self._activate_version()

    # -- per-parent fan-out --------------------------------------------------------------------

    def _read_partitions(self) -> t.Iterator[tuple[Page, int, None]]:
        endpoint = self.endpoint
        try:
            parent_ids = self.cc.parent_ids(self, endpoint.parent_stream or "")
        except EndpointUnavailable as exc:
            raise _ProbeUnavailable(f"{endpoint.parent_stream} listing", exc.status) from None
        all_parents = self.config.get("child_scope") != "changed_parents" or not (
            self.stream_state.get("replication_key_value")
        )
        progress = Progress(
            self.logger, self.name, len(parent_ids), lambda: self.cc.client.counters["requests"]
        )
        for parent_id, pages in self._partitions(iter(parent_ids), all_parents=all_parents):
            if pages is None:
                self.skipped["partitions skipped, parent gone (HTTP 404)"] += 1
                progress.step(0)
                continue
            for page in pages:
                yield page, parent_id, None
            progress.step(sum(map(len, pages)))
        progress.log(final=True)
        self._activate_version()

    def _partitions(
        self, ids: t.Iterator[int], *, all_parents: bool
    ) -> t.Iterator[tuple[int, list[Page] | None]]:
        """Each parent's pages (``None`` for a parent gone since the listing), in parent order.

        Sequential until one partition shows whether there is a change field (every later
        request's filter depends on it), then on the worker pool. An endpoint whose first
        ``MISSING_AFTER`` parents all answer 404 does not exist: a few requests, not one per parent.
        """
        missing = answered = 0
        for parent_id in ids:
            pages = self._fetch_partition(parent_id)
            if pages is None:
                missing += 1
                if not answered and missing >= MISSING_AFTER:
                    raise _ProbeUnavailable(self.endpoint.path, self._missing_status)
                yield parent_id, None
                continue
            answered += 1
            items = [item for page in pages for item in page.items]
            if items or answered >= 25:
                self._decide_change_field(items, all_parents=all_parents)
                yield parent_id, pages
                break
            yield parent_id, pages
        else:
            self._decide_change_field([], all_parents=all_parents)
            return
        workers = int(self.config.get("max_parallel_requests", 4))
        yield from ordered_map(self._fetch_partition, ids, workers)

    def _fetch_partition(self, parent_id: int) -> list[Page] | None:
        """All pages of one parent; runs on worker threads (HTTP and parsing only)."""
        try:
            return list(self.cc.pages(self, self._path(parent_id)))
        except EndpointUnavailable as exc:
            self._missing_status = exc.status
            return None

    def _path(self, parent_id: int) -> str:
        return self.endpoint.path.replace(
            "{" + (self.endpoint.parent_key or "") + "}", str(parent_id)
        )


class _ProbeUnavailable(Exception):
    def __init__(self, path: str, status: int) -> None:
        super().__init__(path)
        self.path = path
        self.status = status


def _probe(client: CCClient, path: str, params: dict | None) -> Page:
    try:
        return client.get_page(path, params)
    except EndpointUnavailable as exc:
        raise _ProbeUnavailable(path, exc.status) from None


class Pager:
    """Reads every page of one OData query with stable, duplicate-free paging.

    Keyset paging (``id gt <last>``, ordered by id) where the model has an id: it neither skips nor
    repeats rows when data changes between pages, and costs the server no OFFSET. Models without
    an id page with ``$skip``. A server that ignores the id filter is detected (the page starts at
    or before the last id) and paged with ``$skip``; a server that ignores ``$skip`` too is
    detected by a repeated page, which ends the read without duplicates.
    """

    def __init__(
        self,
        client: CCClient,
        endpoint: Endpoint,
        path: str,
        *,
        page_size: int,
        extra_filter: t.Callable[[LiteralFormat], str | None],
        literal_format: t.Callable[[], LiteralFormat],
        accept_format: t.Callable[[LiteralFormat], None],
        reject_format: t.Callable[[LiteralFormat, BadRequest], LiteralFormat],
        log: t.Callable[[str], None],
    ) -> None:
        self.client = client
        self.endpoint = endpoint
        self.path = path
        self.page_size = page_size
        self.extra_filter = extra_filter
        self.literal_format = literal_format
        self.accept_format = accept_format
        self.reject_format = reject_format
        self.log = log

    def __iter__(self) -> t.Iterator[Page]:
        """Yield pages until the query is exhausted."""
        endpoint = self.endpoint
        keyset = not endpoint.id_from and endpoint.order_by is None
        order_by = endpoint.order_by or endpoint.id_field
        last_id: int | str | None = None
        skip = 0
        previous: tuple | None = None
        while True:
            page, fmt = self._get(order_by, last_id if keyset else None, 0 if keyset else skip)
            size = len(page)
            # First id, last id and size identify a page well enough to notice a repeat, and
            # keep the paging bookkeeping off the per-record path.
            first = _safe_id(endpoint, page.item(0)) if size else None
            last = _safe_id(endpoint, page.item(-1)) if size else None
            signature = (first, last, size)
            if keyset and last_id is not None and size and _at_or_before(first, last_id):
                self.log(f"{self.path}: the server ignores the id filter; paging with $skip")
                keyset = False
                continue
            if previous is not None and signature == previous and size:
                self.log(f"{self.path}: the server repeated a page (it ignores $skip); stopping")
                return
            if fmt is not None:
                self.accept_format(fmt)
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
        fmt = self.literal_format()
        while True:
            clauses = []
            change = self.extra_filter(fmt)
            if change:
                clauses.append(change)
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
                return self.client.get_page(self.path, params), (fmt if change else None)
            except BadRequest as exc:
                if not change:
                    raise
                fmt = self.reject_format(fmt, exc)


def _safe_id(endpoint: Endpoint, item: object) -> int | str | None:
    try:
        return record_id(endpoint, item)
    except BadRecord:
        return None


def _at_or_before(first: int | str | None, last: int | str) -> bool:
    if first is None:
        return False
    try:
        return first <= last  # type: ignore[operator]
    except TypeError:
        return False


def next_format(current: LiteralFormat) -> LiteralFormat | None:
    """The next candidate after ``current`` in ``LITERAL_FORMATS``."""
    index = LITERAL_FORMATS.index(current)
    return LITERAL_FORMATS[index + 1] if index + 1 < len(LITERAL_FORMATS) else None
