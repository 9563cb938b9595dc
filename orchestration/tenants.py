"""The orchestration settings: which tenants exist and how each is run (``tenants.yml``).

This module owns the file's format and its validation, and nothing else: it does not import
Dagster, so a bad file is reported with the same clear message by the code location, the tests and
``python -m orchestration.tenants FILE``. The file names environment variables that hold secrets
(API keys, the warehouse URL, the webhook URL); it never holds a secret itself, and no message
here ever prints a variable's value.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml

#: The file read when ``CC_TENANTS_FILE`` is not set: the documented example.
EXAMPLE_FILE = Path(__file__).with_name("tenants.example.yml")
FILE_ENV = "CC_TENANTS_FILE"

#: Tap settings a tenant's ``budgets`` may set (``TAP_CLINICAL_CONDUCTOR_<NAME>``).
BUDGET_SETTINGS = (
    "max_requests_per_second",
    "max_parallel_requests",
    "max_requests_per_run",
    "max_run_minutes",
)
#: Meltano's `daily` and `weekly-full` schedules (meltano.yml), the default of every tenant.
DEFAULT_SCHEDULE = {"daily": "0 2 * * 1-6", "weekly_full": "0 2 * * 0"}

_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_CRON = re.compile(r"^\S+( \S+){4}$")


class TenantsFileError(ValueError):
    """``tenants.yml`` is missing, malformed or inconsistent; the message names the problem."""


@dataclass(frozen=True)
class Tenant:
    """One Clinical Conductor instance: a static partition of the staging assets."""

    instance_id: str
    api_url: str
    api_key_env: str
    timezone: str = "UTC"
    budgets: Mapping[str, float] = field(default_factory=dict)
    schedule: Mapping[str, str | None] = field(default_factory=lambda: dict(DEFAULT_SCHEDULE))
    select: tuple[str, ...] = ()
    max_staleness_hours: float = 48.0

    def api_key(self) -> str:
        """The key, read from the environment at run time; a clear error when it is missing."""
        value = os.environ.get(self.api_key_env, "")
        if not value.strip():
            raise TenantsFileError(
                f"tenant {self.instance_id}: environment variable {self.api_key_env} "
                "(its API key) is not set"
            )
        return value


@dataclass(frozen=True)
class Settings:
    """Everything in ``tenants.yml``."""

    tenants: tuple[Tenant, ...]
    warehouse_url_env: str = "TARGET_POSTGRES_SQLALCHEMY_URL"
    staging_schema: str = "public"
    dbt_schema: str = "analytics"
    meltano_environment: str = "prod"
    webhook_url_env: str = "CC_ALERT_WEBHOOK_URL"
    max_retries: int = 3
    retry_delay_seconds: float = 300.0
    max_row_drop_fraction: float = 0.5
    source: Path | None = None

    def tenant(self, instance_id: str) -> Tenant:
        """The tenant of a partition key."""
        for t in self.tenants:
            if t.instance_id == instance_id:
                return t
        raise KeyError(f"no tenant {instance_id!r} in {self.source}")

    def warehouse_url(self) -> str:
        """The warehouse's SQLAlchemy URL, from the environment variable the file names."""
        value = os.environ.get(self.warehouse_url_env, "")
        if not value:
            raise TenantsFileError(
                f"environment variable {self.warehouse_url_env} (the warehouse URL) is not set"
            )
        return value

    def webhook_url(self) -> str | None:
        """The failure webhook, or None when its variable is unset (alerts are then only logged)."""
        return os.environ.get(self.webhook_url_env) or None


def _need(where: str, mapping: Mapping[str, Any], key: str, kind: type) -> Any:
    if key not in mapping or mapping[key] in (None, ""):
        raise TenantsFileError(f"{where}: `{key}` is required")
    value = mapping[key]
    if not isinstance(value, kind):
        raise TenantsFileError(f"{where}: `{key}` must be a {kind.__name__}")
    return value


def _env_name(where: str, value: Any) -> str:
    if not isinstance(value, str) or not _ENV_NAME.match(value):
        # Never echo the value: a pasted key in place of a variable name is a secret.
        raise TenantsFileError(
            f"{where} must be the NAME of an environment variable (letters, digits, _), "
            "not a value; put the secret in that variable"
        )
    return value


def _number(where: str, value: Any, *, minimum: float = 0) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value < minimum:
        raise TenantsFileError(f"{where} must be a number >= {minimum}")
    return value


def _unknown(where: str, mapping: Mapping[str, Any], known: set[str]) -> None:
    extra = sorted(set(mapping) - known)
    if extra:
        raise TenantsFileError(f"{where}: unknown key(s) {', '.join(extra)}")


def _tenant(index: int, raw: Any, defaults: Mapping[str, Any]) -> Tenant:
    where = f"tenants[{index}]"
    if not isinstance(raw, dict):
        raise TenantsFileError(f"{where} must be a mapping")
    _unknown(
        where,
        raw,
        {
            "instance_id",
            "api_url",
            "api_key_env",
            "timezone",
            "budgets",
            "schedule",
            "select",
            "max_staleness_hours",
        },
    )
    instance_id = str(_need(where, raw, "instance_id", str | int))
    if not _ID.match(instance_id):
        raise TenantsFileError(
            f"{where}: instance_id {instance_id!r} must be letters, digits, - or _ (max 63)"
        )
    where = f"tenant {instance_id}"
    api_url = _need(where, raw, "api_url", str)
    if not re.match(r"^https?://[^/\s]+", api_url):
        raise TenantsFileError(f"{where}: api_url must be an http(s) URL")
    api_key_env = _env_name(f"{where}: api_key_env", _need(where, raw, "api_key_env", str))
    timezone = raw.get("timezone", "UTC")
    try:
        ZoneInfo(str(timezone))
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise TenantsFileError(f"{where}: timezone {timezone!r} is not an IANA zone") from exc
    budgets = {**defaults.get("budgets", {}), **(raw.get("budgets") or {})}
    _unknown(f"{where}: budgets", budgets, set(BUDGET_SETTINGS))
    for k, v in budgets.items():
        _number(f"{where}: budgets.{k}", v, minimum=0)
    schedule = {**DEFAULT_SCHEDULE, **defaults.get("schedule", {}), **(raw.get("schedule") or {})}
    _unknown(f"{where}: schedule", schedule, set(DEFAULT_SCHEDULE))
    for k, cron in schedule.items():
        if cron is not None and not (isinstance(cron, str) and _CRON.match(cron.strip())):
            raise TenantsFileError(
                f"{where}: schedule.{k} must be a 5-field cron string or null (no schedule)"
            )
    select = raw.get("select") or defaults.get("select") or ()
    if not isinstance(select, list | tuple) or not all(isinstance(s, str) for s in select):
        raise TenantsFileError(f"{where}: select must be a list of Meltano select patterns")
    staleness = _number(
        f"{where}: max_staleness_hours",
        raw.get("max_staleness_hours", defaults.get("max_staleness_hours", 48)),
    )
    return Tenant(
        instance_id=instance_id,
        api_url=api_url.rstrip("/"),
        api_key_env=api_key_env,
        timezone=str(timezone),
        budgets=budgets,
        schedule=schedule,
        select=tuple(select),
        max_staleness_hours=float(staleness),
    )


def parse(data: Any, source: Path | None = None) -> Settings:
    """Validate the parsed YAML of a tenants file."""
    if not isinstance(data, dict):
        raise TenantsFileError("the tenants file must be a mapping with a `tenants:` list")
    _unknown(
        "tenants file",
        data,
        {"tenants", "defaults", "warehouse", "meltano", "alerts", "retries", "checks"},
    )
    defaults = data.get("defaults") or {}
    _unknown("defaults", defaults, {"budgets", "schedule", "select", "max_staleness_hours"})
    raw_tenants = data.get("tenants")
    if not isinstance(raw_tenants, list) or not raw_tenants:
        raise TenantsFileError("`tenants:` must be a non-empty list")
    tenants = tuple(_tenant(i, raw, defaults) for i, raw in enumerate(raw_tenants))
    seen: set[str] = set()
    for t in tenants:
        if t.instance_id in seen:
            raise TenantsFileError(f"tenant {t.instance_id} is listed twice")
        seen.add(t.instance_id)
    warehouse = data.get("warehouse") or {}
    _unknown("warehouse", warehouse, {"url_env", "staging_schema", "dbt_schema"})
    meltano = data.get("meltano") or {}
    _unknown("meltano", meltano, {"environment"})
    alerts = data.get("alerts") or {}
    _unknown("alerts", alerts, {"webhook_url_env"})
    retries = data.get("retries") or {}
    _unknown("retries", retries, {"max_retries", "delay_seconds"})
    checks = data.get("checks") or {}
    _unknown("checks", checks, {"max_row_drop_fraction"})
    drop = _number("checks.max_row_drop_fraction", checks.get("max_row_drop_fraction", 0.5))
    if drop > 1:
        raise TenantsFileError("checks.max_row_drop_fraction must be between 0 and 1")
    return Settings(
        tenants=tenants,
        warehouse_url_env=_env_name(
            "warehouse.url_env", warehouse.get("url_env", "TARGET_POSTGRES_SQLALCHEMY_URL")
        ),
        staging_schema=str(warehouse.get("staging_schema", "public")),
        dbt_schema=str(warehouse.get("dbt_schema", "analytics")),
        meltano_environment=str(meltano.get("environment", "prod")),
        webhook_url_env=_env_name(
            "alerts.webhook_url_env", alerts.get("webhook_url_env", "CC_ALERT_WEBHOOK_URL")
        ),
        max_retries=int(_number("retries.max_retries", retries.get("max_retries", 3))),
        retry_delay_seconds=float(
            _number("retries.delay_seconds", retries.get("delay_seconds", 300))
        ),
        max_row_drop_fraction=float(drop),
        source=source,
    )


def load(path: str | os.PathLike[str] | None = None) -> Settings:
    """Read ``path``, else ``$CC_TENANTS_FILE``, else the bundled example."""
    path = Path(path or os.environ.get(FILE_ENV) or EXAMPLE_FILE)
    try:
        text = path.read_text()
    except OSError as exc:
        raise TenantsFileError(f"cannot read the tenants file {path}: {exc.strerror}") from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise TenantsFileError(f"{path} is not valid YAML: {exc}") from exc
    try:
        return parse(data, path)
    except TenantsFileError as exc:
        raise TenantsFileError(f"{path}: {exc}") from None


def main(argv: list[str] | None = None) -> int:
    """``python -m orchestration.tenants [FILE]``: validate a tenants file and list its tenants."""
    args = sys.argv[1:] if argv is None else argv
    try:
        settings = load(args[0] if args else None)
    except TenantsFileError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for t in settings.tenants:
        print(f"{t.instance_id}: {t.api_url} (key in ${t.api_key_env}, {t.timezone})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
