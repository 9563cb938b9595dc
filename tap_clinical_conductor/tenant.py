"""What every stream of one run shares about the tenant.

The settings, the one HTTP client (rate limit and counters are shared), the tenant's identity and
time zone, the negotiated ``$filter`` format and the parent listings. Built by the tap, handed to
each stream; nothing here is computed before a stream first asks, so discovery needs no server
and no valid time zone.
"""

from __future__ import annotations

import datetime as dt
import logging
import typing as t
from functools import cached_property
from urllib.parse import urlparse

from tap_clinical_conductor.catalogue import Endpoint
from tap_clinical_conductor.client import CCClient
from tap_clinical_conductor.filters import ChangeFilter, FilterFormats
from tap_clinical_conductor.paging import Pager
from tap_clinical_conductor.parents import ParentListing
from tap_clinical_conductor.selection import ParentSelector
from tap_clinical_conductor.settings import Settings
from tap_clinical_conductor.timestamps import zone


class Tenant:
    """One Clinical Conductor tenant, as seen by one run of the tap."""

    def __init__(self, config: t.Mapping[str, t.Any], logger: logging.Logger) -> None:
        self._config = config
        self.logger = logger

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
        """Tenant identity: configured, or the API host name."""
        return self.settings.instance_id or str(urlparse(self.settings.api_url).hostname)

    @cached_property
    def tz(self) -> dt.tzinfo:
        """Zone of the API's naive datetimes."""
        return zone(self.settings.tenant_timezone)

    @cached_property
    def formats(self) -> FilterFormats:
        """The ``$filter`` datetime format of the run."""
        return FilterFormats(self.settings.filter_datetime_format, self.logger)

    @cached_property
    def listing(self) -> ParentListing:
        """Parent ids, listed once per run."""
        return ParentListing(
            self.client,
            self.formats,
            page_size=self.settings.page_size,
            tenant_tz=self.tz,
            logger=self.logger,
        )

    @cached_property
    def parents(self) -> ParentSelector:
        """Which parents per-parent streams read."""
        return ParentSelector(
            self.listing, child_scope=self.settings.child_scope, lookback=self.settings.lookback
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
        )
