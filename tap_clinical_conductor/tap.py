"""The Clinical Conductor tap: its settings and its streams."""

from __future__ import annotations

import logging
import sys
import typing as t
from functools import cached_property

from singer_sdk import Stream, Tap
from singer_sdk.exceptions import ConfigValidationError
from singer_sdk.helpers.capabilities import CapabilitiesEnum, TapCapabilities
from typing_extensions import override

from tap_clinical_conductor import report
from tap_clinical_conductor.catalogue import CATALOGUE
from tap_clinical_conductor.errors import CCError
from tap_clinical_conductor.filters import STATE_KEY
from tap_clinical_conductor.output import LineWriter, RecordOutput
from tap_clinical_conductor.settings import SCHEMA, default, setting_errors
from tap_clinical_conductor.streams import CCStream
from tap_clinical_conductor.tenant import Tenant


class TapClinicalConductor(Tap):
    """Singer tap for Advarra Clinical Conductor."""

    name = "tap-clinical-conductor"
    message_writer_class = LineWriter
    config_jsonschema = SCHEMA

    @override
    def __init__(self, *args: t.Any, **kwargs: t.Any) -> None:
        super().__init__(*args, **kwargs)
        if kwargs.get("validate_config", True):
            errors = setting_errors(self.config)
            if errors:
                raise ConfigValidationError("Config validation failed", errors=errors)

    # ACTIVATE_VERSION retires every tenant's rows in target-postgres 0.8.1: deletes go through
    # `completeness` instead, and the tap never sends it.
    capabilities: t.ClassVar[list[CapabilitiesEnum]] = [
        c for c in Tap.capabilities if c != TapCapabilities.ACTIVATE_VERSION
    ]

    @classmethod
    @override
    def invoke(cls, *args: t.Any, **kwargs: t.Any) -> None:
        """Run the command line; the tap's own errors end the run with one line, exit status 1.

        The SDK's exception hook logs an uncaught error with its traceback. A refused key or an
        unreachable host is a fact to fix, not a bug to debug: the traceback follows only when
        debug logging is on (``LOGLEVEL=DEBUG``).
        """
        # singer-sdk's first lines come before the tap knows log_sdk_details.
        report.quiet_sdk(cls.logger)
        try:
            super().invoke(*args, **kwargs)
        except CCError as exc:
            debug = cls.logger.isEnabledFor(logging.DEBUG)
            cls.logger.error("%s", exc.fatal_line(), exc_info=exc if debug else None)  # noqa: TRY400
            sys.exit(1)

    @cached_property
    def tenant(self) -> Tenant:
        """What every stream of the run shares: settings, HTTP client, parent listings, report."""
        return Tenant(self.config, self.logger, self._state_dict)

    @property
    def _state_dict(self) -> dict[str, t.Any]:
        # singer-sdk types the state as bookmarks only, but writes the whole dict to STATE.
        return t.cast("dict[str, t.Any]", self.state)

    @override
    def discover_streams(self) -> list[CCStream]:
        output = RecordOutput(self)
        streams = [CCStream(self, endpoint, self.tenant, output) for endpoint in CATALOGUE]
        for stream in streams:
            self.tenant.report.watch(stream.logger)
        return streams

    @property
    @override
    def streams(self) -> dict[str, Stream]:
        """The SDK's streams (by name), top-level ones first: the order ``sync_all`` runs them.

        They are cheap and read whole; what they tell (the tenant's clock, the listings) comes
        before the run's budget is shared among the per-parent streams (``selection``).
        """
        return dict(sorted(super().streams.items(), key=lambda item: self._per_parent(item[1])))

    def _per_parent(self, stream: Stream) -> bool:
        """Whether ``stream`` reads one request per parent (not one per 1000 rows)."""
        prefer = bool(self.config.get("prefer_top_level", default("prefer_top_level")))
        return isinstance(stream, CCStream) and stream.endpoint.collection_path(prefer) is None

    @override
    def load_state(self, state: dict[str, t.Any]) -> None:
        """The SDK keeps only ``bookmarks``; the tenant's key (``filters.STATE_KEY``) too."""
        super().load_state(state)
        kept = state.get(STATE_KEY)
        if isinstance(kept, dict):
            self._state_dict[STATE_KEY] = dict(kept)

    # singer-sdk marks sync_all final but has no hook after the last stream; the override only
    # adds to the end of the SDK's own sync_all.
    @override  # type: ignore[misc]
    def sync_all(self) -> None:
        """Sync every selected stream, then keep what the run learnt and log the summary."""
        super().sync_all()
        tenant = self.tenant
        if tenant.keep():
            self.state_writer.write_state(self.state)
        tenant.report.summary(tenant.client.counters)
