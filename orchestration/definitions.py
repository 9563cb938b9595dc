"""The Dagster code location: tenants as partitions, Meltano loads, dbt marts, schedules, alerts.

* ``meltano_staging``: one multi-asset over every staging table, partitioned by tenant. A
  partition is one ``meltano run`` of that tenant (its own state id) into the shared tables.
* dbt: every model and snapshot of ``transform/`` through dagster-dbt; dbt's sources are the
  staging tables above, so the graph runs from each table to each mart. dbt builds all tenants at
  once, so its step takes pool ``cc_dbt`` (limit 1 in the instance): two tenants' runs never
  rebuild the marts at the same time.
* Jobs ``daily`` and ``weekly_full`` (Meltano's ``daily``/``weekly-full``: extract-load, then dbt
  build), and per tenant one schedule of each, in the tenant's time zone.
* One run per tenant at a time: the instance limits runs per ``dagster/partition`` tag to 1 (see
  ``dagster.yaml``), so a second run waits in the queue; a schedule tick that finds its tenant's
  run still going skips and says which run.
* Retries with exponential backoff on the Meltano step; a run-failure sensor POSTs to the webhook.
* Checks: no tenant's rows in a staging table may drop sharply in one run; each stream's
  staleness bound in ``sync_freshness`` must stay under the tenant's limit.
"""

import re

from dagster import (
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    AssetKey,
    AssetSelection,
    AssetSpec,
    Backoff,
    Config,
    DagsterRunStatus,
    DefaultScheduleStatus,
    DefaultSensorStatus,
    Definitions,
    Failure,
    Jitter,
    MaterializeResult,
    MetadataValue,
    RetryPolicy,
    RunConfig,
    RunFailureSensorContext,
    RunRequest,
    RunsFilter,
    ScheduleEvaluationContext,
    SkipReason,
    StaticPartitionsDefinition,
    define_asset_job,
    in_process_executor,
    multi_asset,
    multi_asset_check,
    run_failure_sensor,
    schedule,
)
from dagster_dbt import DbtCliResource, dbt_assets

from orchestration import alerts, checks, meltano_step
from orchestration import dbt as cc_dbt
from orchestration.tenants import Settings, TenantsFileError, load
from tap_clinical_conductor.catalogue import CATALOGUE
from tap_clinical_conductor.selection import COVERAGE_STREAM

#: The dbt step's concurrency pool; the instance gives it one slot.
DBT_POOL = "cc_dbt"
STAGING_OP = "meltano_staging"
ACTIVE = [
    DagsterRunStatus.QUEUED,
    DagsterRunStatus.NOT_STARTED,
    DagsterRunStatus.STARTING,
    DagsterRunStatus.STARTED,
]


def staging_tables() -> dict[str, str]:
    """Staging table -> stream: the default selection, and the tap's coverage table.

    The tap writes ``cc_sync_coverage`` in every run; the ``sync_freshness`` mart reads it.
    """
    tables = {e.staging_table: e.name for e in CATALOGUE if e.default_selected}
    tables[COVERAGE_STREAM] = COVERAGE_STREAM
    return tables


def staging_key(table: str) -> AssetKey:
    """The asset key of a staging table (the key dbt's source of that table maps to)."""
    return AssetKey([cc_dbt.STAGING_PREFIX, table])


def _name(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_]", "_", text)


class StagingConfig(Config):
    """``full_reload``: the ``weekly-full`` extractor (no state) instead of the incremental one."""

    full_reload: bool = False


def build_definitions(settings: Settings) -> Definitions:
    """All definitions for the tenants of ``settings``."""
    tenants = StaticPartitionsDefinition([t.instance_id for t in settings.tenants])
    tables = staging_tables()
    retry = RetryPolicy(
        max_retries=settings.max_retries,
        delay=settings.retry_delay_seconds,
        backoff=Backoff.EXPONENTIAL,
        jitter=Jitter.PLUS_MINUS,
    )

    @multi_asset(
        name=STAGING_OP,
        specs=[
            AssetSpec(
                staging_key(table),
                group_name="meltano_staging",
                description=f"Staging table of stream {stream} (JSONB `data`), all tenants; "
                "a partition is one tenant's `meltano run`.",
                kinds={"meltano", "postgres"},
            )
            for table, stream in tables.items()
        ],
        check_specs=[
            AssetCheckSpec(
                "row_count_drop",
                asset=staging_key(table),
                description="The tenant's live rows did not drop sharply in this run.",
            )
            for table in tables
        ],
        partitions_def=tenants,
        retry_policy=retry,
        can_subset=False,
    )
    def meltano_staging(context: AssetExecutionContext, config: StagingConfig):  # noqa: ANN202
        tenant = settings.tenant(context.partition_key)
        job = "weekly_full" if config.full_reload else "daily"
        try:
            env = meltano_step.environment(settings, tenant)
        except TenantsFileError as exc:
            # Missing configuration is not transient: no retry.
            raise Failure(description=str(exc), allow_retries=False) from None
        url = settings.warehouse_url()
        with checks.connect(url) as conn:
            before = {t: checks.rows_by_tenant(conn, settings.staging_schema, t) for t in tables}
        state = meltano_step.state_id(settings, tenant, job)
        cmd = meltano_step.command(tenant, job)
        context.log.info(f"tenant {tenant.instance_id}: {' '.join(cmd[1:])} (state id {state})")
        result = meltano_step.run(cmd, env)
        if result.returncode:
            raise Failure(
                description=(
                    f"meltano run of tenant {tenant.instance_id} failed (exit "
                    f"{result.returncode}, {result.seconds:.0f} s); attempt "
                    f"{context.retry_number + 1} of {settings.max_retries + 1}"
                ),
                metadata={"log tail": MetadataValue.md("```\n" + "\n".join(result.tail) + "\n```")},
            )
        context.log.info(f"tenant {tenant.instance_id}: meltano run ok in {result.seconds:.0f} s")
        with checks.connect(url) as conn:
            after = {t: checks.rows_by_tenant(conn, settings.staging_schema, t) for t in tables}
        me = tenant.instance_id
        for table in tables:
            # Every table of the multi-asset is reported, so that dbt downstream always runs; a
            # stream outside this tenant's selection shows as not loaded, with no rows.
            was, now = before[table] or {}, after[table] or {}
            verdict = checks.RowCountVerdict(me, was, now, settings.max_row_drop_fraction)
            yield MaterializeResult(
                asset_key=staging_key(table),
                metadata={
                    "tenant_rows": now.get(me, 0),
                    "tenant_rows_before": was.get(me, 0),
                    "loaded": after[table] is not None,
                    "state_id": state,
                    "meltano_seconds": round(result.seconds, 1),
                },
            )
            yield AssetCheckResult(
                asset_key=staging_key(table),
                check_name="row_count_drop",
                passed=verdict.passed,
                severity=AssetCheckSeverity.ERROR,
                description=verdict.describe()
                if after[table] is not None
                else "not loaded for this tenant (stream not in its selection)",
                metadata={f"{i} before": n for i, n in was.items()}
                | {f"{i} after": n for i, n in now.items()},
            )

    dbt_project = cc_dbt.project()

    @dbt_assets(
        manifest=dbt_project.manifest_path,
        project=dbt_project,
        dagster_dbt_translator=cc_dbt.Translator(),
        name="cc_dbt",
        pool=DBT_POOL,
    )
    def cc_dbt_assets(context: AssetExecutionContext, dbt: DbtCliResource):  # noqa: ANN202
        with cc_dbt.environ(cc_dbt.environment(settings)):
            yield from dbt.cli(["build"], context=context).stream()

    freshness_specs = [
        AssetCheckSpec(
            "staleness_bound",
            asset=staging_key(table),
            description="sync_freshness: the stream's staleness bound is under each tenant's "
            "max_staleness_hours.",
        )
        for table in tables
    ]
    stream_table = {stream: table for table, stream in tables.items()}

    @multi_asset_check(specs=freshness_specs, name="sync_freshness_checks")
    def freshness(context: AssetCheckExecutionContext):  # noqa: ANN202
        limits = {t.instance_id: t.max_staleness_hours for t in settings.tenants}
        with checks.connect(settings.warehouse_url()) as conn:
            rows = checks.latest_staleness(conn, settings.dbt_schema, limits)
        for table in tables:
            key = staging_key(table)
            if rows is None:
                yield AssetCheckResult(
                    asset_key=key,
                    check_name="staleness_bound",
                    passed=True,
                    description=f"{settings.dbt_schema}.sync_freshness is not built yet",
                    metadata={"sync_freshness": "not built yet"},
                )
                continue
            mine = [r for r in rows if stream_table.get(r.stream) == table]
            stale = [r for r in mine if r.too_stale]
            yield AssetCheckResult(
                asset_key=key,
                check_name="staleness_bound",
                passed=not stale,
                severity=AssetCheckSeverity.ERROR,
                description=(
                    "; ".join(
                        f"{r.instance_id}: {r.hours:.1f} h > {r.limit_hours:g} h" for r in stale
                    )
                    or f"{len(mine)} tenant(s) within their limits"
                ),
                metadata={r.instance_id: MetadataValue.float(r.hours) for r in mine},
            )

    staging_and_dbt = AssetSelection.assets(meltano_staging) | AssetSelection.assets(cc_dbt_assets)
    daily = define_asset_job(
        "daily",
        selection=staging_and_dbt,
        description="Meltano's `daily` job for one tenant: incremental load, then dbt build.",
    )
    weekly_full = define_asset_job(
        "weekly_full",
        selection=staging_and_dbt,
        config=RunConfig(ops={STAGING_OP: StagingConfig(full_reload=True)}),
        description="Meltano's `weekly-full` job for one tenant: full reload, then dbt build.",
    )
    freshness_job = define_asset_job(
        "freshness_checks",
        selection=AssetSelection.checks(freshness),
        description="The sync_freshness staleness checks of every tenant and stream.",
    )

    schedules = []
    for tenant in settings.tenants:
        for job, cron in (
            (daily, tenant.schedule.get("daily")),
            (weekly_full, tenant.schedule.get("weekly_full")),
        ):
            if cron:
                schedules.append(_tenant_schedule(tenant.instance_id, tenant.timezone, job, cron))

    @schedule(
        name="freshness_hourly",
        cron_schedule="15 * * * *",
        job=freshness_job,
        default_status=DefaultScheduleStatus.RUNNING,
    )
    def freshness_hourly(context: ScheduleEvaluationContext) -> RunRequest:
        return RunRequest()

    @run_failure_sensor(
        name="failure_webhook",
        default_status=DefaultSensorStatus.RUNNING,
        minimum_interval_seconds=5,
    )
    def failure_webhook(context: RunFailureSensorContext) -> None:
        run = context.dagster_run
        body = alerts.payload(
            run_id=run.run_id,
            job=run.job_name,
            tenant=run.tags.get("dagster/partition"),
            message=context.failure_event.message or "run failed",
        )
        url = settings.webhook_url()
        if not url:
            context.log.warning(
                f"{settings.webhook_url_env} is not set: failure of {run.run_id} not posted"
            )
            return
        status = alerts.post(url, body)
        context.log.info(f"posted the failure of run {run.run_id} to the webhook (HTTP {status})")

    return Definitions(
        # A run's steps run one after the other (load, then dbt): in the run worker's process,
        # without a process per step (each would load the code location again).
        executor=in_process_executor,
        assets=[meltano_staging, cc_dbt_assets],
        asset_checks=[freshness],
        jobs=[daily, weekly_full, freshness_job],
        schedules=[*schedules, freshness_hourly],
        sensors=[failure_webhook],
        resources={
            "dbt": DbtCliResource(
                project_dir=dbt_project,
                profiles_dir=str(cc_dbt.PROFILES_DIR),
                dbt_executable=cc_dbt.dbt_executable(),
            )
        },
    )


def _tenant_schedule(instance_id: str, timezone: str, job, cron: str):  # noqa: ANN001, ANN202
    @schedule(
        name=f"{job.name}_{_name(instance_id)}",
        cron_schedule=cron,
        job=job,
        execution_timezone=timezone,
        default_status=DefaultScheduleStatus.RUNNING,
        description=f"{job.name} of tenant {instance_id} ({cron}, {timezone})",
    )
    def tenant_schedule(context: ScheduleEvaluationContext) -> RunRequest | SkipReason:
        running = context.instance.get_run_records(
            RunsFilter(tags={"dagster/partition": instance_id}, statuses=ACTIVE), limit=1
        )
        if running:
            run = running[0].dagster_run
            return SkipReason(
                f"tenant {instance_id}: run {run.run_id} ({run.job_name}, {run.status.value}) "
                f"is still going; this {job.name} tick is skipped"
            )
        return RunRequest(partition_key=instance_id, tags={"cc/tenant": instance_id})

    return tenant_schedule


defs = build_definitions(load())
