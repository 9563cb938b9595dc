"""Per-tenant schedules: Meltano's daily and weekly-full, in the tenant's zone; a tick skips (and
says which run) while that tenant's run is still going."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="module")
def defs(tenant_env, settings_for, monkeypatch_module):
    from orchestration.definitions import build_definitions

    tenants = [
        {
            "instance_id": "site-a",
            "api_url": "https://a.example/CCSWeb",
            "api_key_env": "CC_KEY_A",
            "timezone": "America/Chicago",
        },
        {
            "instance_id": "site-b",
            "api_url": "https://b.example/CCSWeb",
            "api_key_env": "CC_KEY_B",
            "schedule": {"weekly_full": None},
        },
    ]
    return build_definitions(settings_for(tenants))


def test_schedules_follow_the_tenants_file(defs):
    schedules = {s.name: s for s in defs.schedules}
    assert set(schedules) == {
        "daily_site_a",
        "weekly_full_site_a",
        "daily_site_b",
        "freshness_hourly",
    }
    assert schedules["daily_site_a"].cron_schedule == "0 2 * * 1-6"
    assert schedules["weekly_full_site_a"].cron_schedule == "0 2 * * 0"
    assert schedules["daily_site_a"].execution_timezone == "America/Chicago"
    assert schedules["weekly_full_site_a"].job_name == "weekly_full"


def test_tick_skips_while_the_tenant_runs(defs):
    from dagster import DagsterRunStatus, build_schedule_context, instance_for_test
    from dagster._core.test_utils import create_run_for_test

    with instance_for_test() as instance:
        check_ticks(defs, instance, DagsterRunStatus, build_schedule_context, create_run_for_test)


def check_ticks(defs, instance, DagsterRunStatus, build_schedule_context, create_run_for_test):  # noqa: N803
    repo = defs.get_repository_def()
    schedule = next(s for s in defs.schedules if s.name == "daily_site_a")

    data = schedule.evaluate_tick(build_schedule_context(instance=instance, repository_def=repo))
    (request,) = data.run_requests
    assert request.partition_key == "site-a"

    running = create_run_for_test(
        instance,
        job_name="weekly_full",
        tags={"dagster/partition": "site-a"},
        status=DagsterRunStatus.STARTED,
    )
    create_run_for_test(
        instance,
        job_name="daily",
        tags={"dagster/partition": "site-b"},
        status=DagsterRunStatus.STARTED,
    )
    data = schedule.evaluate_tick(build_schedule_context(instance=instance, repository_def=repo))
    assert not data.run_requests
    assert data.skip_message == (
        f"tenant site-a: run {running.run_id} (weekly_full, STARTED) is still going; "
        "this daily tick is skipped"
    )
    # site-b's own run does not hold back site-a, and vice versa.
    other = next(s for s in defs.schedules if s.name == "daily_site_b")
    assert not other.evaluate_tick(
        build_schedule_context(instance=instance, repository_def=repo)
    ).run_requests
    instance.report_run_canceled(running)
    assert schedule.evaluate_tick(
        build_schedule_context(instance=instance, repository_def=repo)
    ).run_requests
