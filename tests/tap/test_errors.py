"""The tap's error policy against a misbehaving fake tenant."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from tap_clinical_conductor.client import CCClient
from tap_clinical_conductor.errors import HostUnreachable, RequestFailed
from tap_clinical_conductor.settings import Settings

from .conftest import API_KEY, tap_config
from .tapio import Warehouse, catalog_selecting, run_tap

TOP = {"studies", "patients", "staff", "sites", "appointments", "patient_visits"}


def assert_no_secret(run) -> None:
    assert API_KEY not in run.stdout
    assert API_KEY not in run.stderr


def test_refused_key_stops_with_a_clear_message(sandbox, tmp_path):
    sb = sandbox()
    catalog = catalog_selecting(tap_config(sb), {"studies"}, tmp_path)
    config = tap_config(sb, api_key="wrong-key-123")
    run = run_tap(config, catalog=catalog)
    assert run.returncode != 0
    assert "refused the key (HTTP 401)" in run.stderr
    assert "wrong-key-123" not in run.stderr + run.stdout
    assert not run.records


@pytest.mark.parametrize(
    ("case", "fix"),
    [("refused key", "Check `api_key`"), ("unreachable host", "Check api_url")],
)
def test_fatal_error_ends_with_one_line_and_no_traceback(sandbox, case, fix):
    sb = sandbox()
    if case == "refused key":
        config = tap_config(sb, api_key="wrong-key-123")
    else:
        config = tap_config(sb, api_url="http://127.0.0.1:9/CCSWeb")
    quiet = run_tap(config, env={"LOGLEVEL": "INFO"})
    assert quiet.returncode == 1
    assert "Traceback" not in quiet.stderr
    last = quiet.stderr.strip().splitlines()[-1]
    assert "| ERROR" in last
    assert fix in last
    assert "wrong-key-123" not in quiet.stderr + quiet.stdout
    debug = run_tap(config, env={"LOGLEVEL": "DEBUG"})
    assert debug.returncode == 1
    assert "Traceback" in debug.stderr
    assert "wrong-key-123" not in debug.stderr + debug.stdout


def test_wrong_header_name_is_a_refused_key(sandbox, tmp_path):
    sb = sandbox()
    catalog = catalog_selecting(tap_config(sb), {"studies"}, tmp_path)
    run = run_tap(tap_config(sb, api_key_header="X-ApiKey"), catalog=catalog)
    assert run.returncode != 0
    assert "X-ApiKey" in run.stderr
    assert_no_secret(run)


@pytest.mark.parametrize(
    ("api_url", "host", "cause"),
    [
        ("http://127.0.0.1:9/CCSWeb", "127.0.0.1:9", "connection refused"),
        ("https://no-such-tenant.invalid/CCSWeb", "no-such-tenant.invalid", "does not resolve"),
    ],
)
def test_unreachable_host_fails_fast_naming_the_host(api_url, host, cause):
    # Default retry settings: a host that never answered is not retried with the full backoff.
    started = time.monotonic()
    run = run_tap({"api_url": api_url, "api_key": API_KEY})
    elapsed = time.monotonic() - started
    assert run.returncode != 0
    assert elapsed < 15, elapsed
    logged = [line for line in run.stderr.splitlines() if " | " in line]
    fatal = [line for line in logged if "cannot connect to the host" in line]
    assert len(fatal) == 1, run.stderr[-3000:]
    assert host in fatal[0]
    assert cause in fatal[0]
    assert "Check api_url" in fatal[0]
    assert_no_secret(run)


def test_refused_connection_after_the_tenant_answered_gets_every_retry(sandbox):
    # Only a host that never answered fails fast; a tenant that goes away mid-run is retried.
    sb = sandbox()
    settings = Settings.from_config(tap_config(sb, max_retries=3, backoff_base_seconds=0.01))
    client = CCClient(settings)
    assert client.get_page("/api/v1/sites").items
    sb.stop()
    # Another thread: a new session, not the kept-alive connection of the first request.
    with ThreadPoolExecutor(1) as pool:
        failure = pool.submit(client.get_page, "/api/v1/sites").exception()
    assert isinstance(failure, RequestFailed)
    assert not isinstance(failure, HostUnreachable)
    assert "after 4 attempts: cannot connect to the host" in str(failure)


def test_unreachable_host_fails_naming_the_url(tmp_path):
    config = {
        "api_url": "http://127.0.0.1:9/CCSWeb",
        "api_key": API_KEY,
        "max_retries": 1,
        "backoff_base_seconds": 0.01,
    }
    run = run_tap(config)
    assert run.returncode != 0
    assert "cannot connect" in run.stderr
    assert_no_secret(run)


@pytest.mark.parametrize("kind", ["http_500", "http_502", "http_503", "reset", "truncated", "html"])
def test_transient_faults_are_retried(sandbox, tmp_path, kind):
    sb = sandbox()
    config = tap_config(sb, max_retries=8)
    catalog = catalog_selecting(config, TOP | {"subjects", "study_notes"}, tmp_path)
    sb.configure(faults={kind: 0.25})
    run = run_tap(config, catalog=catalog)
    assert run.returncode == 0, run.stderr[-3000:]
    assert sb.stats()["faults"].get(kind, 0) > 0
    sb.configure(faults={})
    warehouse = Warehouse()
    warehouse.apply(run)
    problems = [d for s in TOP | {"subjects", "study_notes"} if (d := warehouse.diff(sb, s))]
    assert not problems
    assert_no_secret(run)


def test_slow_responses_time_out_and_are_retried(sandbox, tmp_path):
    sb = sandbox(slow_seconds=2)
    config = tap_config(sb, request_timeout_seconds=0.5, max_retries=8)
    catalog = catalog_selecting(config, {"studies", "staff"}, tmp_path)
    sb.configure(faults={"slow": 0.3})
    run = run_tap(config, catalog=catalog)
    assert run.returncode == 0, run.stderr[-3000:]
    assert "timed out" in run.stderr


def test_persistent_failure_names_the_url_without_secrets(sandbox, tmp_path):
    sb = sandbox()
    config = tap_config(sb, max_retries=2)
    catalog = catalog_selecting(config, {"studies"}, tmp_path)
    sb.configure(faults={"http_503": 1.0})
    run = run_tap(config, catalog=catalog)
    assert run.returncode != 0
    assert "/api/v1/studies/odata" in run.stderr
    assert "failed after 3 attempts" in run.stderr
    assert_no_secret(run)


def test_rate_limit_waits_as_retry_after_says(sandbox, tmp_path):
    sb = sandbox(rate_limit=5)
    config = tap_config(sb, max_requests_per_second=1000)  # deliberately faster than the server
    catalog = catalog_selecting(config, {"study_notes"}, tmp_path)
    started = time.monotonic()
    run = run_tap(config, catalog=catalog)
    assert run.returncode == 0, run.stderr[-3000:]
    stats = sb.stats()
    assert stats["throttled_429"] > 0
    # Everything arrived in spite of the 429s.
    warehouse = Warehouse()
    warehouse.apply(run)
    assert not warehouse.diff(sb, "study_notes")
    assert time.monotonic() - started >= stats["requests"] / 5 * 0.5


def test_shared_limiter_keeps_under_the_server_limit(sandbox, tmp_path):
    sb = sandbox(rate_limit=20)
    config = tap_config(sb, max_requests_per_second=18, max_parallel_requests=8)
    catalog = catalog_selecting(config, {"study_notes"}, tmp_path)
    sb.reset_stats()
    run = run_tap(config, catalog=catalog)
    assert run.returncode == 0, run.stderr[-3000:]
    assert sb.stats()["throttled_429"] == 0


def test_parent_deleted_during_the_run_is_skipped(sandbox, tmp_path):
    sb = sandbox()
    config = tap_config(sb, max_parallel_requests=1)
    catalog = catalog_selecting(config, {"study_notes"}, tmp_path)
    sb.schedule(after_requests=10, action="delete", endpoint="studies", n=3)
    run = run_tap(config, catalog=catalog)
    assert run.returncode == 0, run.stderr[-3000:]
    warehouse = Warehouse()
    warehouse.apply(run)
    assert not warehouse.diff(sb, "study_notes")


@pytest.mark.parametrize("override", [{"ignores_skip": True}, {"ignores_filter": True}])
def test_server_ignoring_paging_options_loses_nothing(sandbox, tmp_path, override):
    sb = sandbox(profile="plan", overrides={"patients": override})
    config = tap_config(sb, page_size=50, lookback_minutes=0)
    catalog = catalog_selecting(config, {"patients"}, tmp_path)
    warehouse = Warehouse()
    run = run_tap(config, catalog=catalog)
    assert run.returncode == 0, run.stderr[-3000:]
    warehouse.apply(run)
    keys = run.keys("patients")
    assert len(keys) == len(set(keys)), "duplicates"
    if override.get("ignores_filter"):
        assert not warehouse.diff(sb, "patients")
        sb.advance_clock(seconds=3600)
        sb.update("patients", n=3)
        run = run_tap(config, catalog=catalog, state=run.state)
        assert run.returncode == 0
        warehouse.apply(run)
        assert not warehouse.diff(sb, "patients")
        # Older rows were dropped on the client, not re-emitted.
        assert len(run.records.get("patients", [])) < 10


def test_data_changed_while_paging_arrives_by_the_next_run(sandbox, tmp_path):
    sb = sandbox(profile="plan")
    config = tap_config(sb, page_size=20, lookback_minutes=5)
    catalog = catalog_selecting(config, {"patients", "studies"}, tmp_path)
    sb.schedule(after_requests=3, action="update", endpoint="patients", n=30)
    sb.schedule(after_requests=4, action="insert", endpoint="patients", n=5)
    warehouse = Warehouse()
    run = run_tap(config, catalog=catalog)
    assert run.returncode == 0, run.stderr[-3000:]
    warehouse.apply(run)
    keys = run.keys("patients")
    assert len(keys) == len(set(keys))
    run = run_tap(config, catalog=catalog, state=run.state)
    assert run.returncode == 0
    warehouse.apply(run)
    assert not warehouse.diff(sb, "patients")
