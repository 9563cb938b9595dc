"""The Clinical Conductor tap: settings, validation and what streams share during a run."""

from __future__ import annotations

import datetime as dt
import sys
import threading
import typing as t
from array import array
from functools import cached_property
from urllib.parse import urlparse
from zoneinfo import ZoneInfoNotFoundError

import msgspec
from singer_sdk import Tap
from singer_sdk import typing as th
from singer_sdk.contrib.msgspec import MsgSpecWriter, enc_hook
from singer_sdk.exceptions import ConfigValidationError
from singer_sdk.singerlib import RecordMessage
from typing_extensions import override

from tap_clinical_conductor.catalogue import BY_NAME, CATALOGUE
from tap_clinical_conductor.client import BadRequest, CCClient, ClientSettings, RequestFailed
from tap_clinical_conductor.records import JSONObject
from tap_clinical_conductor.streams import CCStream, Pager, find_change_field, next_format
from tap_clinical_conductor.timestamps import (
    LITERAL_BY_NAME,
    LITERAL_FORMATS,
    LiteralFormat,
    TimestampError,
    parse_datetime,
    zone,
)

if t.TYPE_CHECKING:
    from singer_sdk.singerlib.encoding.simple import Message

MAX_PAGE_SIZE = 1000

# Numbers may also arrive as text: Meltano 4.4 cannot pass a `decimal` setting from an environment
# variable (it fails to serialise the Decimal), so meltano.yml declares them as strings.
_NUMBER = th.CustomType({"type": ["number", "string"], "pattern": r"^\s*[0-9]+(\.[0-9]+)?\s*$"})


def _enc_hook(obj: object) -> object:
    return obj.value if isinstance(obj, JSONObject) else enc_hook(obj)


class FastWriter(MsgSpecWriter):
    """MsgSpecWriter without its two per-record costs.

    ``Message.to_dict`` deep-copies every record through ``dataclasses.asdict`` and the stock
    writer flushes stdout after every message. Records are serialised straight from the message
    and stdout is flushed at every non-record message (SCHEMA, STATE, ACTIVATE_VERSION), which is
    all a target needs to see state in order.
    """

    _encoder = msgspec.json.Encoder(enc_hook=_enc_hook, decimal_format="number")
    _buffer = bytearray(4096)

    @override
    def serialize_message(self, message: Message) -> bytearray:
        if isinstance(message, RecordMessage):
            line: dict[str, object] = {
                "type": "RECORD",
                "stream": message.stream,
                "record": message.record,
            }
            if message.version is not None:
                line["version"] = message.version
            if message.time_extracted is not None:
                line["time_extracted"] = message.time_extracted
        else:
            line = message.to_dict()
        self._encoder.encode_into(line, self._buffer)
        self._buffer.extend(b"\n")
        return self._buffer

    @override
    def write_message(self, message: Message) -> None:
        sys.stdout.buffer.write(self.format_message(message))
        if not isinstance(message, RecordMessage):
            sys.stdout.flush()

    def write_record(
        self, stream: str, record: dict, version: int | None, extracted_at: dt.datetime
    ) -> None:
        """Write one RECORD line without building a message object (the tap's hot path)."""
        line: dict[str, object] = {"type": "RECORD", "stream": stream, "record": record}
        if version is not None:
            line["version"] = version
        line["time_extracted"] = extracted_at
        self._encoder.encode_into(line, self._buffer)
        self._buffer.extend(b"\n")
        sys.stdout.buffer.write(self._buffer)

    def write_lines(self, lines: bytes) -> None:
        """Write complete, newline-terminated messages (a page of records) at once."""
        sys.stdout.buffer.write(lines)


class TapClinicalConductor(Tap):
    """Singer tap for Advarra Clinical Conductor."""

    name = "tap-clinical-conductor"
    message_writer_class = FastWriter

    config_jsonschema = th.PropertiesList(
        th.Property(
            "api_url",
            th.StringType,
            required=True,
            description="Base URL of the tenant, e.g. https://x.clinicalconductor.com/CCSWeb",
        ),
        th.Property(
            "api_key", th.StringType, required=True, secret=True, description="The CC API key."
        ),
        th.Property(
            "api_key_header",
            th.StringType,
            default="CCAPIKey",
            description="Request header that carries the key.",
        ),
        th.Property(
            "instance_id",
            th.StringType,
            description="Tenant identity stored on every row; default: the API host name.",
        ),
        th.Property(
            "start_date",
            th.DateTimeType,
            description="Earliest change timestamp to read on the first incremental run.",
        ),
        th.Property(
            "tenant_timezone",
            th.StringType,
            default="UTC",
            description="IANA zone of the API's naive datetimes (CC serialises local time).",
        ),
        th.Property(
            "page_size",
            th.IntegerType,
            default=MAX_PAGE_SIZE,
            description="OData $top, 1 to 1000.",
        ),
        th.Property(
            "lookback_minutes",
            th.IntegerType,
            default=60,
            description="Re-read changes this far behind the bookmark (late or in-flight writes).",
        ),
        th.Property(
            "request_timeout_seconds",
            _NUMBER,
            default=60,
            description="Timeout of one HTTP request.",
        ),
        th.Property(
            "max_retries",
            th.IntegerType,
            default=5,
            description="Retries of a failing request (5xx, resets, timeouts, broken bodies).",
        ),
        th.Property(
            "backoff_base_seconds",
            _NUMBER,
            default=1.0,
            description="First retry wait; doubles each retry (with jitter), at most 60 s.",
        ),
        th.Property(
            "change_field_overrides",
            th.ObjectType(additional_properties=th.CustomType({"type": ["string", "null"]})),
            description="Stream name -> change field, or null to force full table.",
        ),
        th.Property(
            "filter_datetime_format",
            th.StringType,
            default="auto",
            allowed_values=["auto", *LITERAL_BY_NAME],
            description="Datetime literal in $filter; auto tries each and keeps the accepted one.",
        ),
        th.Property(
            "child_scope",
            th.StringType,
            default="all_parents",
            allowed_values=["all_parents", "changed_parents"],
            description="Per-parent streams read all parents (complete) or only changed ones.",
        ),
        th.Property(
            "prefer_top_level",
            th.BooleanType,
            default=True,
            description="Read subjects and visits from their top-level collections, not per study.",
        ),
        th.Property(
            "max_requests_per_second",
            _NUMBER,
            default=8,
            description="Shared rate limit of all requests of the run.",
        ),
        th.Property(
            "max_parallel_requests",
            th.IntegerType,
            default=4,
            description="Partitions fetched at once (the old ETL_PARALLEL_JOBS).",
        ),
    ).to_dict()

    @override
    def __init__(self, *args: t.Any, **kwargs: t.Any) -> None:
        super().__init__(*args, **kwargs)
        if kwargs.get("validate_config", True):
            errors = self._setting_errors()
            if errors:
                raise ConfigValidationError("Config validation failed", errors=errors)
        self._parent_ids: dict[tuple, array] = {}
        self._format_lock = threading.Lock()
        self._format: LiteralFormat | None = None
        self._format_confirmed = False

    def _setting_errors(self) -> list[str]:
        """What JSON schema cannot say about the settings; checked before any request."""
        config = self.config
        errors = []
        url = urlparse(str(config.get("api_url", "")))
        if url.scheme not in ("http", "https") or not url.hostname:
            errors.append(
                "api_url must be an http(s) URL with a host, "
                "e.g. https://x.clinicalconductor.com/CCSWeb"
            )
        if not str(config.get("api_key", "")).strip():
            errors.append("api_key is empty")
        size = config.get("page_size", MAX_PAGE_SIZE)
        if not 1 <= size <= MAX_PAGE_SIZE:
            errors.append(f"page_size must be between 1 and {MAX_PAGE_SIZE} (got {size})")
        if config.get("start_date"):
            try:
                parse_datetime(config["start_date"], zone("UTC"))
            except TimestampError:
                errors.append("start_date must be an ISO-8601 date-time, e.g. 2024-01-01T00:00:00Z")
        try:
            zone(config.get("tenant_timezone", "UTC"))
        except (ZoneInfoNotFoundError, ValueError):
            errors.append(
                f"tenant_timezone {config.get('tenant_timezone')!r} is not an IANA time zone"
            )
        unknown = sorted(set(config.get("change_field_overrides") or {}) - set(BY_NAME))
        if unknown:
            errors.append(f"change_field_overrides names unknown streams: {', '.join(unknown)}")
        for key in ("max_requests_per_second", "max_parallel_requests", "request_timeout_seconds"):
            if key in config and config[key] is not None and float(config[key]) <= 0:
                errors.append(f"{key} must be positive")
        return errors

    @override
    def discover_streams(self) -> list[CCStream]:
        return [CCStream(self, endpoint) for endpoint in CATALOGUE]

    # -- what streams share ----------------------------------------------------------------------

    @cached_property
    def client(self) -> CCClient:
        """The one HTTP client of the run (rate limit and counters are shared)."""
        config = self.config
        return CCClient(
            ClientSettings(
                base_url=str(config["api_url"]).rstrip("/"),
                api_key=str(config["api_key"]),
                api_key_header=config.get("api_key_header", "CCAPIKey"),
                timeout=float(config.get("request_timeout_seconds") or 60),
                max_retries=int(config.get("max_retries", 5)),
                backoff_base=float(config.get("backoff_base_seconds") or 1.0),
                # Decimal (JSON fractions) or text (Meltano): the limiter does float maths.
                max_requests_per_second=_float_or_none(config.get("max_requests_per_second", 8)),
            )
        )

    @cached_property
    def instance_id(self) -> str:
        """Tenant identity: configured, or the API host name."""
        return self.config.get("instance_id") or str(urlparse(self.config["api_url"]).hostname)

    @cached_property
    def tenant_tz(self) -> dt.tzinfo:
        """Zone of the API's naive datetimes."""
        return zone(self.config.get("tenant_timezone", "UTC"))

    def can_write_lines(self) -> bool:
        """Whether records may be written as preformatted lines (the tap's own writer)."""
        return isinstance(self.message_writer, FastWriter)

    def write_lines(self, lines: bytes) -> None:
        """Write preformatted RECORD lines; only when ``can_write_lines()``."""
        t.cast("FastWriter", self.message_writer).write_lines(lines)

    def write_record(
        self, stream: str, record: dict, version: int | None, extracted_at: dt.datetime
    ) -> None:
        """Write a RECORD message for ``stream`` straight to stdout.

        ``extracted_at`` is the time the record's page arrived (one clock read per page).
        """
        writer = self.message_writer
        if isinstance(writer, FastWriter):
            writer.write_record(stream, record, version, extracted_at)
        else:
            self.write_message(
                RecordMessage(
                    stream=stream, record=record, version=version, time_extracted=extracted_at
                )
            )

    def pages(self, stream: CCStream, path: str) -> Pager:
        """Every page of ``path`` for ``stream``, with its change filter."""
        return Pager(
            self.client,
            stream.endpoint,
            path,
            page_size=int(self.config.get("page_size", MAX_PAGE_SIZE)),
            extra_filter=stream._filter,  # noqa: SLF001 - the stream's own filter builder
            literal_format=self._literal_format,
            accept_format=self._accept_format,
            reject_format=self._reject_format,
            log=stream.logger.warning,
        )

    def _literal_format(self) -> LiteralFormat:
        with self._format_lock:
            if self._format is None:
                name = self.config.get("filter_datetime_format", "auto")
                self._format = LITERAL_FORMATS[0] if name == "auto" else LITERAL_BY_NAME[name]
                self._format_confirmed = name != "auto"
            return self._format

    def _accept_format(self, fmt: LiteralFormat) -> None:
        with self._format_lock:
            if not self._format_confirmed and fmt == self._format:
                self._format_confirmed = True
                self.logger.info("$filter datetime literal format: %s", fmt.name)

    def _reject_format(self, fmt: LiteralFormat, error: BadRequest) -> LiteralFormat:
        """A 400 on a filter: move to the next literal format, unless one was already proven."""
        with self._format_lock:
            if self._format_confirmed and self._format is not None:
                if fmt != self._format:
                    return self._format
                raise RequestFailed(f"{error} (with the {fmt.name} datetime format)")
            following = next_format(fmt)
            if following is None:
                raise RequestFailed(
                    "the server accepted none of the datetime literal formats "
                    f"({', '.join(f.name for f in LITERAL_FORMATS)}) in $filter; last error: "
                    f"{error}. Set filter_datetime_format."
                )
            self.logger.info(
                "$filter format %s refused (HTTP 400); trying %s", fmt.name, following.name
            )
            self._format = following
            return following

    def parent_ids(self, child: CCStream, parent_name: str) -> array:
        """Ids of the parents ``child`` fans out over, listed once per run and shared.

        ``child_scope: changed_parents`` lists only parents changed since the child's bookmark
        (minus the lookback): far fewer requests, but children added to an unchanged parent are
        only seen by the next full run.
        """
        since = None
        if self.config.get("child_scope") == "changed_parents":
            bookmark = child.stream_state.get("replication_key_value")
            since = bookmark or None
        key = (parent_name, since)
        if key not in self._parent_ids:
            self._parent_ids[key] = self._list_ids(parent_name, since)
        return self._parent_ids[key]

    def _list_ids(self, parent_name: str, since: str | None) -> array:
        parent = self.streams[parent_name]
        lister = CCStream(self, parent.endpoint)
        if since is not None:
            sample = self.client.get_page(parent.endpoint.path, {"$top": 1}).items
            lister.change_field = find_change_field(sample)
            if lister.change_field is None:
                self.logger.warning(
                    "child_scope=changed_parents: %s has no change field; listing all of them",
                    parent_name,
                )
            else:
                lookback = dt.timedelta(minutes=self.config.get("lookback_minutes", 60))
                lister.lower_bound = parse_datetime(since, zone("UTC")) - lookback
        ids = array("q")
        for page in self.pages(lister, parent.endpoint.path):
            for item in page.items:
                value = item.get(parent.endpoint.id_field) if isinstance(item, dict) else None
                if isinstance(value, int) and not isinstance(value, bool):
                    ids.append(value)
        self.logger.info("Listed %d %s ids for per-parent streams", len(ids), parent_name)
        return ids


def _float_or_none(value: object) -> float | None:
    return None if value is None else float(value)  # type: ignore[arg-type]


if __name__ == "__main__":
    TapClinicalConductor.cli()
