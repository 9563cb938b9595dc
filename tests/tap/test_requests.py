"""The requests a stream builds for a given config and state (no network; the tap-jira way)."""

from __future__ import annotations

from collections import Counter

import pytest

from tap_clinical_conductor.errors import BadRequest
from tap_clinical_conductor.responses import Page
from tap_clinical_conductor.tap import TapClinicalConductor

BASE = {"api_url": "https://acme.clinicalconductor.com/CCSWeb", "api_key": "secret-key"}


class RecordingClient:
    """Stands in for CCClient.get_page: records params, serves canned pages."""

    def __init__(self, pages: list[list[dict]], reject: set[str] | None = None) -> None:
        self.pages = list(pages)
        self.calls: list[tuple[str, dict]] = []
        self.reject = reject or set()
        self.counters: Counter[str] = Counter()

    def server_time(self, *, first: bool = False) -> None:
        return None  # no Date header

    def get_page(self, path: str, params: dict | None = None, *, single: bool = False) -> Page:
        self.calls.append((path, dict(params or {})))
        text = (params or {}).get("$filter", "")
        if any(bad in text for bad in self.reject):
            raise BadRequest("HTTP 400: bad literal")
        return Page(self.pages.pop(0) if self.pages else [], None, None)


def make_tap(config: dict | None = None, state: dict | None = None) -> TapClinicalConductor:
    return TapClinicalConductor(config={**BASE, **(config or {})}, state=state or {})


def bookmark_state(stream: str, value: str) -> dict:
    return {
        "bookmarks": {stream: {"replication_key": "modifiedDate", "replication_key_value": value}}
    }


def run_stream(tap: TapClinicalConductor, name: str, client: RecordingClient) -> list[dict]:
    tap.tenant.client = client  # type: ignore[assignment]
    return list(tap.streams[name].get_records(None))


def test_first_run_reads_everything_ordered_by_id():
    client = RecordingClient([[{"id": 1, "lastUpdatedOn": "2025-01-01T00:00:00"}]])
    records = run_stream(make_tap(), "studies", client)
    assert [r["id"] for r in records] == [1]
    # Without a bookmark the first page doubles as the probe for the change field. A short page
    # without a next link is confirmed by one more request: a server may cap $top below 1000.
    assert client.calls == [
        ("/api/v1/studies/odata", {"$orderby": "id", "$top": 1000}),
        ("/api/v1/studies/odata", {"$orderby": "id", "$top": 1000, "$filter": "id gt 1"}),
    ]


def test_incremental_filter_is_bookmark_minus_lookback_in_accepted_format():
    state = bookmark_state("studies", "2025-06-01T12:00:00.000000+00:00")
    tap = make_tap({"lookback_minutes": 30, "tenant_timezone": "America/New_York"}, state)
    sample = [{"id": 1, "lastUpdatedOn": "2025-06-01T08:00:00"}]
    # Probe, the literal checked on the probed record (it matches its own time, not a second
    # later), then the read.
    client = RecordingClient([sample, sample, [], sample], reject={"Z"})
    run_stream(tap, "studies", client)
    filters = [c[1].get("$filter") for c in client.calls[1:]]
    # iso_utc was refused with a 400; iso_local (tenant time, 11:30 UTC = 07:30 EDT) accepted.
    # Rows whose change value is null are read too: `ge` never matches them.
    assert filters[:3] == [
        "(lastUpdatedOn ge 2025-06-01T12:00:00Z or lastUpdatedOn eq null) and (id eq 1)",
        "(lastUpdatedOn ge 2025-06-01T08:00:00 or lastUpdatedOn eq null) and (id eq 1)",
        "(lastUpdatedOn ge 2025-06-01T08:00:01 or lastUpdatedOn eq null) and (id eq 1)",
    ]
    assert filters[3] == "lastUpdatedOn ge 2025-06-01T07:30:00 or lastUpdatedOn eq null"


def test_keyset_paging_combines_change_filter_and_last_id():
    state = bookmark_state("patients", "2025-06-01T00:00:00.000000+00:00")
    tap = make_tap({"page_size": 2, "lookback_minutes": 0}, state)
    rows = [{"id": i, "modifiedDate": "2025-07-01T00:00:00Z"} for i in (3, 4, 9)]
    # Probe, literal check (match, no match a second later), then two pages.
    client = RecordingClient([rows[:1], rows[:1], [], rows[:2], rows[2:]])
    records = run_stream(tap, "patients", client)
    assert [r["id"] for r in records] == [3, 4, 9]
    assert client.calls[-1][1]["$filter"] == (
        "(modifiedDate ge 2025-06-01T00:00:00Z or modifiedDate eq null) and (id gt 4)"
    )


def test_stream_without_change_field_downgrades_to_full_table():
    tap = make_tap()
    client = RecordingClient([[{"id": 5, "displayName": "x"}]])
    records = run_stream(tap, "staff", client)
    stream = tap.streams["staff"]
    assert stream.replication_method == "FULL_TABLE"
    assert records[0]["modifiedDate"] is None
    assert "$filter" not in client.calls[0][1]


def test_change_field_override_forces_full_table_with_null():
    tap = make_tap({"change_field_overrides": {"studies": None}})
    client = RecordingClient([[{"id": 1, "lastUpdatedOn": "2025-01-01T00:00:00"}]])
    run_stream(tap, "studies", client)
    assert tap.streams["studies"].replication_method == "FULL_TABLE"


def test_records_older_than_the_bound_are_dropped_when_server_ignores_filter():
    state = bookmark_state("patients", "2025-06-01T00:00:00.000000+00:00")
    tap = make_tap({"lookback_minutes": 0}, state)
    rows = [
        {"id": 1, "modifiedDate": "2025-01-01T00:00:00Z"},
        {"id": 2, "modifiedDate": "2025-06-02T00:00:00Z"},
    ]
    # The literal check gets every row back: the server ignores $filter.
    records = run_stream(tap, "patients", RecordingClient([rows[:1], rows, rows]))
    assert [r["id"] for r in records] == [2]


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"api_url": "not a url"}, "api_url"),
        ({"page_size": 5000}, "page_size"),
        ({"start_date": "yesterday"}, "start_date"),
        ({"tenant_timezone": "Mars/Olympus"}, "tenant_timezone"),
        ({"change_field_overrides": {"nope": "x"}}, "unknown streams: nope"),
    ],
)
def test_bad_config_is_refused_before_any_request(config, message):
    from singer_sdk.exceptions import ConfigValidationError

    with pytest.raises(ConfigValidationError) as info:
        make_tap(config)
    assert any(message in e for e in info.value.errors)
    assert "secret-key" not in " ".join(info.value.errors)


@pytest.mark.parametrize("value", ["2.5", 2.5, 10])
def test_rates_may_be_numbers_or_numeric_text(value):
    tap = make_tap({"max_requests_per_second": value, "backoff_base_seconds": "0.5"})
    assert tap.tenant.client.limiter.rate == float(value)
    assert tap.tenant.client.settings.backoff_base_seconds == 0.5


def test_non_numeric_rate_is_refused():
    from singer_sdk.exceptions import ConfigValidationError

    with pytest.raises(ConfigValidationError):
        make_tap({"max_requests_per_second": "fast"})
