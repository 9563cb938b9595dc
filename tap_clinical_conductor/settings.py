"""The tap's settings: one schema holds every name, type, default and range.

``SCHEMA`` is what ``--about`` prints and what Meltano's ``meltano.yml`` mirrors (a test checks the
two agree). ``Settings`` is the typed view of a config that the rest of the tap reads: a setting
that is absent or null takes the schema's default, so no default is written anywhere else.
``setting_errors`` checks what JSON schema cannot express, before any request.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import typing as t
from dataclasses import dataclass
from urllib.parse import urlparse
from zoneinfo import ZoneInfoNotFoundError

from singer_sdk import typing as th

from tap_clinical_conductor.catalogue import BY_NAME
from tap_clinical_conductor.timestamps import LITERAL_BY_NAME, TimestampError, parse_datetime, zone

#: The API's largest ``$top``.
MAX_PAGE_SIZE = 1000
#: Retries of a request that keeps answering 429; ``max_retries`` counts the other failures.
MAX_THROTTLED_RETRIES = 30
#: The longest wait between two retries, whatever ``backoff_base_seconds`` says.
MAX_BACKOFF_SECONDS = 60.0

CHILD_SCOPES = ("all_parents", "changed_parents")
#: Study status names of closed or never-started studies (CC's ``/system/study-statuses`` names
#: are the tenant's own; these are the common ones). Any other status makes a study live.
CLOSED_STUDY_STATUSES = (
    "Closed",
    "Terminated",
    "Withdrawn",
    "Not Selected",
    "Archived",
    "Feasibility Declined",
    "Completed",
    "Cancelled",
)


def _positive_number() -> th.CustomType:
    # Numbers may also arrive as text: Meltano 4.4 cannot pass a `decimal` setting from an
    # environment variable (it fails to serialise the Decimal), so meltano.yml declares them as
    # strings. `exclusiveMinimum` applies to the number form; `setting_errors` checks the text.
    return th.CustomType(
        {
            "type": ["number", "string"],
            "pattern": r"^\s*[0-9]+(\.[0-9]+)?\s*$",
            "exclusiveMinimum": 0,
        }
    )


_LITERAL_FORMAT_NAMES = ["auto", *LITERAL_BY_NAME]

SCHEMA: dict[str, t.Any] = th.PropertiesList(
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
        th.IntegerType(minimum=1, maximum=MAX_PAGE_SIZE),
        default=MAX_PAGE_SIZE,
        description=f"OData $top, 1 to {MAX_PAGE_SIZE}.",
    ),
    th.Property(
        "lookback_minutes",
        th.IntegerType(minimum=0),
        default=60,
        description="Re-read changes this far behind the bookmark (late or in-flight writes).",
    ),
    th.Property(
        "request_timeout_seconds",
        _positive_number(),
        default=60,
        description="Timeout of one HTTP request.",
    ),
    th.Property(
        "max_retries",
        th.IntegerType(minimum=0),
        default=5,
        description=(
            "Retries of a failing request (5xx, resets, timeouts, broken bodies); "
            f"HTTP 429 waits have their own limit of {MAX_THROTTLED_RETRIES}."
        ),
    ),
    th.Property(
        "backoff_base_seconds",
        _positive_number(),
        default=1.0,
        description=(
            "First retry wait; doubles each retry (with jitter), "
            f"at most {MAX_BACKOFF_SECONDS:.0f} s."
        ),
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
        allowed_values=_LITERAL_FORMAT_NAMES,
        description="Datetime literal in $filter; auto tries each and keeps the accepted one.",
    ),
    th.Property(
        "child_scope",
        th.StringType,
        default="all_parents",
        allowed_values=list(CHILD_SCOPES),
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
        _positive_number(),
        default=8,
        description="Shared rate limit of all requests of the run.",
    ),
    th.Property(
        "max_parallel_requests",
        th.IntegerType(minimum=1),
        default=4,
        description="Partitions fetched at once (the old ETL_PARALLEL_JOBS).",
    ),
    th.Property(
        "max_requests_per_run",
        th.IntegerType(minimum=1),
        description="Request budget of one run, shared by all streams; per-parent streams then "
        "read new, changed and live parents first and sweep the rest. Default: no budget.",
    ),
    th.Property(
        "max_run_minutes",
        th.IntegerType(minimum=1),
        description="Time budget of one run in minutes (at max_requests_per_second), like "
        "max_requests_per_run. Default: no budget.",
    ),
    th.Property(
        "active_window_days",
        th.IntegerType(minimum=0),
        default=7,
        description="A visit due, or an appointment or subject status event dated, this many "
        "days around the tenant's today makes its parent live.",
    ),
    th.Property(
        "closed_study_statuses",
        th.ArrayType(th.StringType),
        default=list(CLOSED_STUDY_STATUSES),
        description="Study status names of closed studies; any other status makes a study live.",
    ),
    th.Property(
        "allow_insecure_http",
        th.BooleanType,
        default=False,
        description="Allow a plain http:// api_url to a host other than this machine (the key "
        "then travels unencrypted).",
    ),
    th.Property(
        "log_sdk_details",
        th.BooleanType,
        default=False,
        description="Log singer-sdk's routine lines (deselected streams, sync starts, sort "
        "notices, METRIC lines) at INFO; otherwise they are DEBUG lines.",
    ),
).to_dict()

_PROPERTIES: dict[str, dict[str, t.Any]] = SCHEMA["properties"]


def default(name: str) -> t.Any:  # noqa: ANN401 - a JSON value of the schema
    """The schema's default of setting ``name`` (``None`` when it has none)."""
    return _PROPERTIES[name].get("default")


@dataclass(frozen=True)
class Settings:
    """A config with every default filled in from ``SCHEMA`` and numbers made numbers."""

    api_url: str
    api_key: str
    api_key_header: str
    instance_id: str | None
    start_date: str | None
    tenant_timezone: str
    page_size: int
    lookback_minutes: int
    request_timeout_seconds: float
    max_retries: int
    backoff_base_seconds: float
    change_field_overrides: t.Mapping[str, str | None]
    filter_datetime_format: str
    child_scope: str
    prefer_top_level: bool
    max_requests_per_second: float
    max_parallel_requests: int
    max_requests_per_run: int | None
    max_run_minutes: int | None
    active_window_days: int
    closed_study_statuses: tuple[str, ...]
    allow_insecure_http: bool
    log_sdk_details: bool

    @classmethod
    def from_config(cls, config: t.Mapping[str, t.Any]) -> Settings:
        """Read a (validated) config; absent or null settings take the schema's default."""

        def get(name: str) -> t.Any:  # noqa: ANN401 - a JSON value of the schema
            value = config.get(name)
            return default(name) if value is None else value

        return cls(
            api_url=str(get("api_url")),
            api_key=str(get("api_key")),
            api_key_header=str(get("api_key_header")),
            instance_id=get("instance_id") or None,
            start_date=get("start_date") or None,
            tenant_timezone=str(get("tenant_timezone")),
            page_size=int(get("page_size")),
            lookback_minutes=int(get("lookback_minutes")),
            # Decimal (JSON fractions) or text (Meltano): the client does float maths.
            request_timeout_seconds=float(get("request_timeout_seconds")),
            max_retries=int(get("max_retries")),
            backoff_base_seconds=float(get("backoff_base_seconds")),
            change_field_overrides=dict(get("change_field_overrides") or {}),
            filter_datetime_format=str(get("filter_datetime_format")),
            child_scope=str(get("child_scope")),
            prefer_top_level=bool(get("prefer_top_level")),
            max_requests_per_second=float(get("max_requests_per_second")),
            max_parallel_requests=int(get("max_parallel_requests")),
            max_requests_per_run=_optional_int(get("max_requests_per_run")),
            max_run_minutes=_optional_int(get("max_run_minutes")),
            active_window_days=int(get("active_window_days")),
            closed_study_statuses=tuple(str(s) for s in get("closed_study_statuses")),
            allow_insecure_http=bool(get("allow_insecure_http")),
            log_sdk_details=bool(get("log_sdk_details")),
        )

    @property
    def lookback(self) -> dt.timedelta:
        """``lookback_minutes`` as a duration."""
        return dt.timedelta(minutes=self.lookback_minutes)


def _optional_int(value: object) -> int | None:
    return None if value is None else int(str(value))


def _loopback(host: str | None) -> bool:
    """Whether ``host`` is this machine (``localhost``, 127.0.0.0/8, ``::1``)."""
    if host is None:
        return False
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def setting_errors(config: t.Mapping[str, t.Any]) -> list[str]:
    """What JSON schema cannot say about a config (which passed the schema); no request made."""
    errors = []
    url = urlparse(str(config.get("api_url", "")))
    if url.scheme not in ("http", "https") or not url.hostname:
        errors.append(
            "api_url must be an http(s) URL with a host, e.g. https://x.clinicalconductor.com/CCSWeb"
        )
    elif (
        url.scheme == "http"
        and not _loopback(url.hostname)
        and not (config.get("allow_insecure_http") or default("allow_insecure_http"))
    ):
        errors.append(
            "api_url is plain http:// to another host: the API key would travel unencrypted. "
            "Use https://, or set allow_insecure_http"
        )
    key = str(config.get("api_key", ""))
    if not key.strip():
        errors.append("api_key is empty")
    elif key != key.strip() or any(c in key for c in "\r\n\t\x00"):
        # Never the key itself: only what is wrong with it.
        errors.append(
            "api_key has leading or trailing whitespace or a line break (a copy-paste?); "
            "remove it (the key is not shown here)"
        )
    header = str(config.get("api_key_header") or default("api_key_header"))
    if not header or any(c in header for c in " :\r\n\t"):
        errors.append(f"api_key_header {header!r} is not a valid HTTP header name")
    if config.get("start_date"):
        try:
            parse_datetime(config["start_date"], zone("UTC"))
        except TimestampError:
            errors.append("start_date must be an ISO-8601 date-time, e.g. 2024-01-01T00:00:00Z")
    timezone = config.get("tenant_timezone") or default("tenant_timezone")
    try:
        zone(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        errors.append(f"tenant_timezone {timezone!r} is not an IANA time zone")
    unknown = sorted(set(config.get("change_field_overrides") or {}) - set(BY_NAME))
    if unknown:
        errors.append(f"change_field_overrides names unknown streams: {', '.join(unknown)}")
    for name, prop in _PROPERTIES.items():
        # Numeric text passes the schema's pattern but not its bound.
        value = config.get(name)
        bound = prop.get("exclusiveMinimum")
        if bound is not None and isinstance(value, str) and float(value) <= bound:
            errors.append(f"{name} must be greater than {prop['exclusiveMinimum']}")
    return errors
