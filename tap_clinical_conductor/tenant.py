"""What every stream of one run shares about the tenant.

The settings, the one HTTP client (rate limit and counters are shared), the tenant's identity and
time zone, the negotiated ``$filter`` format (verified against a known record), the server's page
size and the parent listings. Built by the tap, handed to each stream; nothing here is computed
before a stream first asks, so discovery needs no server and no valid time zone. It also knows
whether the tenant answered anything at all: a run whose every endpoint answers 404 fails. The
run's report (``report.RunReport``) lives here too, beside the request counters it reads; the
tap-level part of the Singer state it is given holds what a run learnt for the next one (the
accepted ``$filter`` format).
"""

from __future__ import annotations

import datetime as dt
import logging
import time
import typing as t
from functools import cached_property
from urllib.parse import urlparse

from tap_clinical_conductor.catalogue import BY_NAME, Endpoint
from tap_clinical_conductor.client import CCClient
from tap_clinical_conductor.errors import EndpointUnavailable, RequestFailed
from tap_clinical_conductor.filters import (
    FORMAT_KEY,
    STATE_KEY,
    ChangeFilter,
    FilterFormats,
    remembered_format,
)
from tap_clinical_conductor.paging import PageCaps, Pager
from tap_clinical_conductor.parents import ParentListing
from tap_clinical_conductor.readplan import ReadPlan
from tap_clinical_conductor.report import RunReport
from tap_clinical_conductor.responses import Page
from tap_clinical_conductor.selection import KEEP, ParentSelector
from tap_clinical_conductor.settings import Settings
from tap_clinical_conductor.timestamps import TimestampError, parse_datetime, zone

#: A path every Clinical Conductor tenant serves: asked when the first endpoint answers 404.
KNOWN_PATH = BY_NAME["sites"].path


class Tenant:
    """One Clinical Conductor tenant, as seen by one run of the tap."""

    def __init__(
        self,
        config: t.Mapping[str, t.Any],
        logger: logging.Logger,
        state: t.MutableMapping[str, t.Any] | None = None,
    ) -> None:
        """``state``: the tap's Singer state (read when first needed, written by ``keep``)."""
        self._config = config
        self.logger = logger
        self._state: t.MutableMapping[str, t.Any] = {} if state is None else state
        self.caps = PageCaps()
        self._answered = False
        self._filter_verified = False
        #: The run's budget of minutes counts from here.
        self.started = time.monotonic()

    @cached_property
    def settings(self) -> Settings:
        """The run's settings, defaults filled in."""
        return Settings.from_config(self._config)

    @cached_property
    def client(self) -> CCClient:
        """The one HTTP client of the run."""
        return CCClient(self.settings)

    @cached_property
    def instance_id(self) -> str:
        """Tenant identity: configured, or derived from ``api_url`` (``default_instance_id``)."""
        return self.settings.instance_id or default_instance_id(self.settings.api_url)

    @cached_property
    def tz(self) -> dt.tzinfo:
        """Zone of the API's naive datetimes."""
        return zone(self.settings.tenant_timezone)

    @cached_property
    def formats(self) -> FilterFormats:
        """The ``$filter`` datetime format of the run."""
        return FilterFormats(
            self.settings.filter_datetime_format, self.logger, remembered_format(self._state)
        )

    @cached_property
    def report(self) -> RunReport:
        """The run's start and end lines per stream, and its summary."""
        return RunReport(
            self.logger,
            lambda: self.client.counters["requests"],
            sdk_details=self.settings.log_sdk_details,
        )

    def keep(self) -> bool:
        """Write what this run learnt into the state; whether that changed it (main thread)."""
        name = self.formats.to_keep() if "formats" in vars(self) else None
        kept = self._state.get(STATE_KEY)
        if name is None or (isinstance(kept, dict) and kept.get(FORMAT_KEY) == name):
            return False
        self._state[STATE_KEY] = {**(kept if isinstance(kept, dict) else {}), FORMAT_KEY: name}
        return True

    @cached_property
    def listing(self) -> ParentListing:
        """Parent ids, listed once per run."""
        return ParentListing(
            self.client,
            self.formats,
            page_size=self.settings.page_size,
            tenant_tz=self.tz,
            logger=self.logger,
            caps=self.caps,
            keep=KEEP,
        )

    @cached_property
    def parents(self) -> ParentSelector:
        """Which parents per-parent streams read, within the run's budget."""
        return ParentSelector(
            self.listing,
            self.client,
            self.formats,
            self.settings,
            self.tz,
            self.logger,
            started=self.started,
        )

    def pages(
        self, endpoint: Endpoint, path: str, change: ChangeFilter | None, logger: logging.Logger
    ) -> Pager:
        """Every page of ``path``, with ``change`` as its ``$filter`` condition."""
        return Pager(
            self.client,
            endpoint,
            path,
            page_size=self.settings.page_size,
            change=change,
            formats=self.formats,
            logger=logger,
            cap=self.caps.of(endpoint),
        )

    # -- is this the tenant? -------------------------------------------------------------------

    def answered(self) -> None:
        """An endpoint answered with records: ``api_url`` reaches a tenant."""
        self._answered = True

    def unavailable(self, error: EndpointUnavailable) -> None:
        """An endpoint answered 404 or 501; if nothing answered yet, check ``api_url``.

        A path every tenant serves is asked: a 404 there too means ``api_url`` misses the API.

        Raises:
            RequestFailed: The known path answers 404 as well.
        """
        if self._answered:
            return
        try:
            self.client.get_page(KNOWN_PATH, None)
        except EndpointUnavailable as known:
            raise RequestFailed(
                f"{error.path} and {KNOWN_PATH} both answer HTTP {known.status}: api_url does not "
                f"reach a Clinical Conductor API ({self.client.redact(self.settings.api_url)}). "
                "It must end at the web application folder (e.g. "
                "https://acme.clinicalconductor.com/CCSWeb), without /api/v1."
            ) from None
        self._answered = True

    def verify_filter(self, endpoint: Endpoint, path: str, plan: ReadPlan, probe: Page) -> None:
        """Check the ``$filter`` datetime literal against a known record, once per run.

        A server may accept a literal and compare it in another zone than the tap meant (a
        ``...Z`` read as tenant-local time): the filter then silently shifts by the UTC offset.
        The record must match ``field ge <its own value>`` and not ``field ge <value + 1 s>``.
        """
        field = plan.change_field
        if self._filter_verified or not plan.incremental or field is None or endpoint.id_from:
            return
        item = probe.items[0] if len(probe) else None
        if not isinstance(item, dict) or item.get(field) is None:
            return
        rid = item.get(endpoint.id_field)
        if not isinstance(rid, int) or isinstance(rid, bool):
            return
        try:
            instant = parse_datetime(item[field], self.tz)
        except (TimestampError, OverflowError):
            return

        def matches(fmt_instant: tuple[t.Any, dt.datetime]) -> bool:
            fmt, at = fmt_instant
            clause = ChangeFilter(field, at, self.tz).clause(fmt)
            params = {"$filter": f"({clause}) and ({endpoint.id_field} eq {rid})", "$top": 2}
            items = self.client.get_page(path, params).items
            if any(not isinstance(i, dict) or i.get(endpoint.id_field) != rid for i in items):
                raise _FilterIgnored
            return bool(items)

        self._filter_verified = True
        try:
            self.formats.verify(matches, instant)
        except _FilterIgnored:
            # Nothing to verify: rows older than the bound are dropped on the client.
            self.logger.info("%s ignores $filter; the datetime literal cannot be checked", path)


class _FilterIgnored(Exception):
    """The server answered a ``$filter`` on one id with other rows: it ignores ``$filter``."""


def default_instance_id(api_url: str) -> str:
    """The API host and path of ``api_url``, lower case, without scheme, port or ``/CCSWeb``.

    ``https://acme.clinicalconductor.com/CCSWeb`` is ``acme.clinicalconductor.com`` (the host
    name, as before paths were part of it); two tenants on one host differ by their path
    (``https://cc.example.com/SiteA/CCSWeb`` is ``cc.example.com/sitea``). The port is left out
    so that a tenant reached through a tunnel or test port keeps its id; tenants that differ
    only by port need ``instance_id`` set.
    """
    url = urlparse(api_url.strip())
    path = url.path.rstrip("/").lower().removesuffix("/ccsweb")
    return f"{(url.hostname or '').lower()}{path}"
