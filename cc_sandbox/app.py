"""The sandbox's behaviour, apart from HTTP: configuration, routing, pages, schedules.

``server.py`` turns HTTP requests into calls here and writes the answers; keeping the two apart
lets the paging logic be read (and tested) without sockets.
"""

from __future__ import annotations

import json
import math
import re
import threading
from collections import OrderedDict
from dataclasses import asdict, dataclass, field, fields
from typing import Any
from urllib.parse import urlencode

import numpy as np

from cc_sandbox import endpoints as ep
from cc_sandbox.faults import (
    ANSWER_FAULTS,
    TokenBucket,
    answer_fault,
    capped_top,
    fault_rates,
    literal_zone,
)
from cc_sandbox.model import Row, RowSeq, Tenant
from cc_sandbox.odata import DATETIME_FORMS, ODataError, parse_query, sort_positions, sort_rows
from cc_sandbox.stats import Stats

#: Default datetime literal form in ``$filter`` per profile.
DEFAULT_FORMS = {"spec": "naive", "plan": "datetimeoffset"}
_OVERRIDE_KEYS = {
    "shape",
    "change_field",
    "ignores_skip",
    "ignores_filter",
    "status",
    *ANSWER_FAULTS,
}


@dataclass
class Config:
    """Settings a running sandbox can change (``Sandbox.configure``, ``POST /_sandbox/config``).

    Attributes:
        api_key: Key clients must send.
        api_key_header: Header that carries it.
        rate_limit: Requests per second for the whole server, ``None`` for no limit.
        latency_ms: Base delay of every answer.
        jitter_ms: Extra uniform delay in ``[0, jitter_ms)``, deterministic from the seed.
        skip_latency_ms: Extra delay per 1000 rows of ``$skip`` (the cost of SQL OFFSET).
        fault_rate: Probability of a fault, spread evenly over all kinds.
        faults: Extra probability per fault kind.
        slow_seconds: How long a ``slow`` fault stalls before answering.
        filter_datetime_format: Datetime literal form accepted in ``$filter``; ``None`` for the
            profile's default (``naive`` for spec, ``datetimeoffset`` for plan).
        overrides: Per-endpoint ``shape``, ``change_field``, ``ignores_skip``,
            ``ignores_filter``, ``status``.
        pretty: Serve indented, multi-line JSON, as a debug build or a proxy may.
        late_share: Share of a simulated day's child changes that are late (no parent signal).
    """

    api_key: str = "sandbox-key"
    api_key_header: str = "CCAPIKey"
    rate_limit: float | None = None
    latency_ms: float = 0.0
    jitter_ms: float = 0.0
    skip_latency_ms: float = 0.0
    fault_rate: float = 0.0
    faults: dict[str, float] = field(default_factory=dict)
    slow_seconds: float = 3.0
    filter_datetime_format: str | None = None
    overrides: dict[str, dict[str, Any]] = field(default_factory=dict)
    pretty: bool = False
    late_share: float = 0.05

    def public(self) -> dict[str, Any]:
        """The settings without the API key (never echoed)."""
        out = asdict(self)
        out.pop("api_key")
        return out


@dataclass(frozen=True)
class Answer:
    """One response: status, body, content type and extra headers."""

    status: int
    body: bytes
    content_type: str = "application/json; charset=utf-8"
    headers: tuple[tuple[str, str], ...] = ()
    skip: int = 0


def error(status: int, message: str, headers: tuple[tuple[str, str], ...] = ()) -> Answer:
    """A JSON error in ASP.NET Web API's form, ``{"Message": ...}``."""
    return Answer(status, json.dumps({"Message": message}).encode(), headers=headers)


DENIED = error(401, "Authorization has been denied for this request.")
NOT_IMPLEMENTED = error(501, "The method or operation is not implemented.")


def _route_regex(template: str) -> re.Pattern[str]:
    pattern = re.sub(r"\\\{[A-Za-z]+\\\}", r"(-?\\d+)", re.escape(template))
    return re.compile(f"^{pattern}/?$", re.IGNORECASE)


_ROUTES: tuple[tuple[re.Pattern[str], ep.EndpointSpec], ...] = tuple(
    (_route_regex(spec.path), spec) for spec in ep.ENDPOINTS
)


def route(path: str) -> tuple[ep.EndpointSpec | None, int | None]:
    """The endpoint serving ``path`` (below the base URL) and its parent id, if any."""
    for regex, spec in _ROUTES:
        match = regex.match(path)
        if match:
            return spec, (int(match.group(1)) if match.groups() else None)
    return None, None


@dataclass
class _Scheduled:
    at_request: int
    action: str
    endpoint: str
    kwargs: dict[str, Any]


class App:
    """State and behaviour of one sandbox: tenant, settings, counters, schedules.

    Args:
        tenant: The data.
        config: Initial settings.
    """

    def __init__(self, tenant: Tenant, config: Config) -> None:
        self.tenant = tenant
        self.stats = Stats(lambda: tenant.day)
        self.config = config
        self._lock = threading.Lock()
        self._requests = 0
        self._fault_index = 0
        self._scheduled: list[_Scheduled] = []
        self.executed: list[dict[str, Any]] = []
        self._cache: OrderedDict[tuple[Any, ...], list[Row]] = OrderedDict()
        self._cache_lock = threading.Lock()
        self.bucket: TokenBucket | None = None
        self.rates: dict[str, float] = {}
        self.configure()

    # ------------------------------------------------------------------------------ settings

    def configure(self, **changes: Any) -> Config:
        """Change settings (keys of :class:`Config`); unknown keys raise ``ValueError``.

        Changing ``rate_limit`` refills the bucket; changing fault settings restarts the fault
        sequence, so that the faults after a ``configure`` are the same on every run.
        """
        names = {f.name for f in fields(Config)}
        unknown = set(changes) - names
        if unknown:
            raise ValueError(f"unknown settings {sorted(unknown)}; expected {sorted(names)}")
        late = changes.get("late_share")
        if late is not None and not 0.0 <= float(late) <= 1.0:
            raise ValueError("late_share must be within [0, 1]")
        form = changes.get("filter_datetime_format")
        if form is not None and form not in DATETIME_FORMS:
            raise ValueError(f"filter_datetime_format must be one of {list(DATETIME_FORMS)}")
        for name, over in (changes.get("overrides") or {}).items():
            if name not in ep.BY_NAME:
                raise ValueError(f"override for unknown endpoint {name!r}")
            bad = set(over) - _OVERRIDE_KEYS
            if bad or over.get("shape", ep.ARRAY) not in ep.SHAPES:
                raise ValueError(f"bad override for {name}: {over}")
        with self._lock:
            for key, value in changes.items():
                setattr(self.config, key, value)
            cfg = self.config
            self.rates = fault_rates(cfg.fault_rate, cfg.faults)
            if not changes or "rate_limit" in changes:
                self.bucket = TokenBucket(cfg.rate_limit) if cfg.rate_limit else None
            if not changes or {"fault_rate", "faults"} & set(changes):
                self._fault_index = 0
        if not changes or "overrides" in changes:
            self.tenant.set_overrides(self.config.overrides)
        return self.config

    @property
    def datetime_form(self) -> str:
        """The datetime literal form ``$filter`` accepts."""
        return self.config.filter_datetime_format or DEFAULT_FORMS[self.tenant.profile]

    # ------------------------------------------------------------------------------ days

    def advance_day(self, days: int = 1) -> list[dict[str, Any]]:
        """Simulate ``days`` days of a site's changes (see ``days.py``); one summary each."""
        return [self.tenant.advance_day(self.config.late_share) for _ in range(int(days))]

    # ------------------------------------------------------------------------------ schedules

    def schedule(self, after_requests: int, action: str, endpoint: str, **kwargs: Any) -> int:
        """Run a mutation once ``after_requests`` more API requests have been answered.

        Returns:
            The number of the API request before which the mutation runs.
        """
        if action not in ("update", "insert", "delete", "corrupt"):
            raise ValueError(f"unknown action {action!r}")
        if endpoint not in ep.BY_NAME:
            raise ValueError(f"unknown endpoint {endpoint!r}")
        with self._lock:
            at = self._requests + int(after_requests) + 1
            self._scheduled.append(_Scheduled(at, action, endpoint, kwargs))
            return at

    def next_request(self) -> int:
        """Number a new API request, running the mutations due before it.

        Returns:
            The index of the request in the fault sequence.
        """
        with self._lock:
            self._requests += 1
            number = self._requests
            due = [s for s in self._scheduled if s.at_request <= number]
            self._scheduled = [s for s in self._scheduled if s.at_request > number]
            self._fault_index += 1
            index = self._fault_index
        for job in due:
            ids = self.tenant.mutate(job.action, job.endpoint, **job.kwargs)
            self.executed.append(
                {"at_request": number, "action": job.action, "endpoint": job.endpoint, "ids": ids}
            )
        return index

    # -------------------------------------------------------------------------------- answers

    def authorised(self, supplied: str | None) -> bool:
        """Whether ``supplied`` is the API key (compared in constant time)."""
        import hmac

        return supplied is not None and hmac.compare_digest(
            supplied.encode(), self.config.api_key.encode()
        )

    def answer(
        self, spec: ep.EndpointSpec, parent_id: int | None, params: dict[str, str], link_base: str
    ) -> Answer:
        """The response of a GET on an endpoint of the catalogue.

        Args:
            spec: The endpoint.
            parent_id: The parent id in the path, for per-parent endpoints.
            params: Query options, one value each.
            link_base: Absolute URL of the request without its query (for ``NextPageLink``).
        """
        tenant = self.tenant
        over = tenant.override(spec.name)
        status = int(over.get("status", spec.status))
        if status == 501:
            return NOT_IMPLEMENTED
        if status != 200 or (
            parent_id is not None and spec.parent and not tenant.parent_exists(spec.kind, parent_id)
        ):
            return error(
                404, f"No HTTP resource was found that matches the request URI '{link_base}'."
            )
        faulty = answer_fault(over)
        if faulty is not None:
            return Answer(*faulty)
        rows = tenant.rows_for(spec.name, parent_id)  # one version of the table
        if rows is None:
            return error(
                404, f"No HTTP resource was found that matches the request URI '{link_base}'."
            )
        version = rows.snap.version
        source = spec.source
        if spec.shape == ep.OBJECT:
            return Answer(200, tenant.render(source, rows[0])[1] if rows else b"{}")
        shape = over.get("shape", spec.shape)
        if not spec.odata:
            blobs = rows.blobs(0, len(rows))
            return Answer(200, _wrap(shape, blobs, None, None))
        typer = self._typer(spec.name)
        try:
            query = parse_query(
                params,
                typer,
                self.datetime_form,
                tenant.tz,
                ignore_filter=bool(over.get("ignores_filter")),
                literal_tz=literal_zone(over, tenant.tz),
            )
        except ODataError as exc:
            return error(400, str(exc))
        selected = self._select(spec, parent_id, rows, version, query)
        start = 0 if over.get("ignores_skip") else query.skip
        top, capped = capped_top(over, query.top)
        if isinstance(selected, RowSeq):
            blobs = selected.blobs(start, start + top)
        else:
            blobs = [tenant.render(source, row)[1] for row in selected[start : start + top]]
        link = None
        if query.top and query.skip + query.top < len(selected) and not capped:
            nxt = dict(params)
            nxt["$skip"] = str(query.skip + query.top)
            nxt.setdefault("$top", str(query.top))
            link = f"{link_base}?{urlencode(nxt, safe='$')}"
        count = len(selected) if query.count else None
        return Answer(200, _wrap(shape, blobs, link, count), skip=query.skip)

    def _typer(self, name: str) -> Any:
        tenant = self.tenant
        return lambda path: tenant.field_type(name, path)

    def _select(
        self,
        spec: ep.EndpointSpec,
        parent_id: int | None,
        rows: RowSeq,
        version: int,
        query: Any,
    ) -> RowSeq | list[Row]:
        """Rows after ``$filter`` and ``$orderby``, cached: paging asks the same query again.

        Over columns where every property asked for is one (no record is generated); else
        record by record, as a last resort that costs a pass over the table.
        """
        if query.predicate is None and not query.orderby:
            return rows
        natural = self._select_in_id_order(spec, rows, query)
        if natural is not None:
            return natural
        key = (
            spec.name,
            parent_id,
            version,
            self.tenant.render_gen,
            query.filter_text,
            query.orderby_text,
            self.datetime_form,
        )
        with self._cache_lock:
            hit = self._cache.get(key)
            if hit is not None:
                self._cache.move_to_end(key)
                return hit
        selected = self._select_columns(spec, rows, query)
        if selected is None:
            selected = self._select_records(spec, rows, query)
        with self._cache_lock:
            self._cache[key] = selected
            while len(self._cache) > 32:
                self._cache.popitem(last=False)
        return selected

    def _select_in_id_order(self, spec: ep.EndpointSpec, rows: RowSeq,
                            query: Any) -> RowSeq | None:
        """Rows in id order (no ``$orderby``, or the id ascending), read no further than needed.

        This is keyset paging (``id gt <last>``, ordered by id): rows are stored in id order, so
        the page starts where the id bound says and the filter is tested on as many rows as the
        page needs (and one more, for ``NextPageLink``), not on the whole table; with
        ``$count`` every row from there is tested. ``None`` when the order is another, or a
        filtered property is not a column.
        """
        id_field = spec.id_field
        if not id_field or query.orderby not in ([], [(id_field, False)]):
            return None
        tenant, snap = self.tenant, rows.snap
        table_ids = snap.ids if rows.positions is None else snap.ids[rows.positions]
        low, high = 0, len(table_ids)
        predicate = query.predicate
        span = predicate.spans.get(id_field) if predicate is not None else None
        if span is not None:
            low, high = _id_range(table_ids, span)
        need = None if query.count else query.skip + query.top + 1
        if predicate is None:
            stop = high if need is None else min(high, low + need)
            picked = np.arange(low, stop) if rows.positions is None else rows.positions[low:stop]
            return RowSeq(tenant, rows.table, snap, picked)
        found: list[np.ndarray] = []
        total, chunk = 0, max(need or 0, 1024)
        while low < high and (need is None or total < need):
            stop = min(high, low + chunk)
            part = np.arange(low, stop) if rows.positions is None else rows.positions[low:stop]

            def columns(path: str, part: np.ndarray = part) -> Any:
                return tenant.column(spec.name, path, snap, part)

            mask = predicate.mask(columns)
            if mask is None:
                return None
            found.append(part[mask])
            total += len(found[-1])
            low, chunk = stop, chunk * 4  # a sparse filter reads ever larger chunks
        picked = np.concatenate(found) if found else np.zeros(0, dtype=np.int64)
        return RowSeq(tenant, rows.table, snap, picked if need is None else picked[:need])

    def _select_columns(self, spec: ep.EndpointSpec, rows: RowSeq, query: Any) -> RowSeq | None:
        tenant = self.tenant
        positions = rows.all_positions()

        def columns(path: str) -> Any:
            return tenant.column(spec.name, path, rows.snap, positions)

        if query.predicate is not None:
            mask = query.predicate.mask(columns)
            if mask is None:
                return None
            positions = positions[mask]
        if query.orderby:
            order = sort_positions(query.orderby, columns)
            if order is None:
                return None
            positions = positions[order]
        return RowSeq(tenant, rows.table, rows.snap, positions)

    def _select_records(self, spec: ep.EndpointSpec, rows: RowSeq, query: Any) -> list[Row]:
        render = self.tenant.render
        pairs = [(row, render(spec.source, row)[0]) for row in rows]
        if query.predicate is not None:
            predicate = query.predicate
            pairs = [pair for pair in pairs if predicate(pair[1])]
        if query.orderby:
            pairs = sort_rows(pairs, query.orderby, self._typer(spec.name), self.tenant.tz)
        return [row for row, _ in pairs]


def _id_range(ids: np.ndarray, span: tuple[float, bool, float, bool]) -> tuple[int, int]:
    """Positions ``[low, high)`` of the ascending integer ``ids`` within ``span``.

    Bounds are turned into integers first: a float searched in an integer array would convert
    the whole array.
    """
    first, first_in, last, last_in = span
    low, high = 0, len(ids)
    if first > -math.inf:
        least = math.ceil(first) if first_in else math.floor(first) + 1  # smallest id allowed
        low = 0 if least < -(2**62) else len(ids) if least > 2**62 else int(
            ids.searchsorted(least, "left"))
    if last < math.inf:
        most = math.floor(last) if last_in else math.ceil(last) - 1  # largest id allowed
        high = 0 if most < -(2**62) else len(ids) if most > 2**62 else int(
            ids.searchsorted(most, "right"))
    return low, max(low, high)


def _wrap(shape: str, blobs: list[bytes], link: str | None, count: int | None) -> bytes:
    """Join pre-serialised records into a response body of the given shape.

    One ``join`` over all parts: concatenating a page of half a megabyte piecewise copies it
    several times, and that copying was most of the cost of a page.
    """
    items = [b"[", b",".join(blobs), b"]"]
    if shape == ep.PAGERESULT:
        tail = b',"NextPageLink":%s,"Count":%s}' % (
            json.dumps(link).encode(),
            json.dumps(count).encode(),
        )
        return b"".join([b'{"Items":', *items, tail])
    if shape == ep.ODATA4:
        parts = [b'{"value":', *items]
        if count is not None:
            parts.append(b',"@odata.count":%d' % count)
        if link is not None:
            parts.append(b',"@odata.nextLink":' + json.dumps(link).encode())
        parts.append(b"}")
        return b"".join(parts)
    return b"".join(items)
