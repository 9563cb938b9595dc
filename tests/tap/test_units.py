"""Pure logic: timestamps, records, response shapes, the rate limiter and the ordered fan-out."""

from __future__ import annotations

import datetime as dt
import json
import threading
import time

import pytest

from tap_clinical_conductor.catalogue import BY_NAME, CATALOGUE
from tap_clinical_conductor.client import RateLimiter, _retry_after
from tap_clinical_conductor.errors import RequestFailed
from tap_clinical_conductor.fanout import ordered_map
from tap_clinical_conductor.records import BadRecord, JSONObject, build_record, record_id, strip_nul
from tap_clinical_conductor.responses import parse_body
from tap_clinical_conductor.timestamps import LITERAL_BY_NAME, normalise, zone

NY = zone("America/New_York")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2024-01-15T10:15:00", "2024-01-15T15:15:00.000000+00:00"),  # EST, naive local
        ("2024-07-15T10:15:00", "2024-07-15T14:15:00.000000+00:00"),  # EDT
        # A 7-digit .NET fraction is rounded to the microsecond, as PostgreSQL rounds it.
        ("2024-07-15T10:15:00.1234567", "2024-07-15T14:15:00.123457+00:00"),
        ("2024-12-31T23:59:59.9999996Z", "2025-01-01T00:00:00.000000+00:00"),
        ("2024-01-15T10:15", "2024-01-15T15:15:00.000000+00:00"),  # ISO 8601 without seconds
        ("2024-01-15T10:15:00Z", "2024-01-15T10:15:00.000000+00:00"),
        ("2024-01-15T10:15:00.5+02:00", "2024-01-15T08:15:00.500000+00:00"),
        ("2024-01-15 10:15:00", "2024-01-15T15:15:00.000000+00:00"),
    ],
)
def test_every_change_value_becomes_one_utc_format(value, expected):
    assert normalise(value, NY) == expected


def test_normalised_values_sort_as_strings_like_instants():
    values = ["2024-01-15T10:15:00.9Z", "2024-01-15T10:15:01Z", "2024-01-15T05:15:00.5"]
    ordered = sorted(values, key=lambda v: normalise(v, NY))
    assert ordered == ["2024-01-15T05:15:00.5", "2024-01-15T10:15:00.9Z", "2024-01-15T10:15:01Z"]


def test_literal_formats_render_utc_or_tenant_local():
    instant = dt.datetime(2025, 12, 24, 5, 0, tzinfo=dt.timezone.utc)
    assert LITERAL_BY_NAME["iso_utc"].render(instant, NY) == "2025-12-24T05:00:00Z"
    assert LITERAL_BY_NAME["iso_local"].render(instant, NY) == "2025-12-24T00:00:00"
    assert LITERAL_BY_NAME["datetime_local"].render(instant, NY) == "datetime'2025-12-24T00:00:00'"
    assert (
        LITERAL_BY_NAME["datetimeoffset_utc"].render(instant, NY)
        == "datetimeoffset'2025-12-24T05:00:00Z'"
    )


def test_ids_numeric_strings_and_bad_ids():
    studies = BY_NAME["studies"]
    assert record_id(studies, {"id": 7}) == 7
    assert record_id(studies, {"id": "7"}) == 7
    for bad in ({}, {"id": None}, {"id": "abc"}, {"id": True}):
        with pytest.raises(BadRecord):
            record_id(studies, bad)
    assert record_id(BY_NAME["study_arms"], {"Id": 3}) == 3


def test_synthetic_ids_are_stable_and_distinct():
    statuses = BY_NAME["subject_statuses"]
    a = {"subject": {"Id": 1}, "status": "Screened", "eventDate": "2024-01-01T00:00:00"}
    b = {**a, "status": "Enrolled"}
    assert record_id(statuses, a) == record_id(statuses, dict(a))
    assert record_id(statuses, a) != record_id(statuses, b)
    assert record_id(BY_NAME["system_lookup_lists"], "Gender") == "Gender"


def test_build_record_keeps_data_and_adds_keys():
    item = {"id": 4, "note": "a\x00b", "nested": {"x": ["c\x00"]}, "modifiedDate": "2024-01-01"}
    record = build_record(
        BY_NAME["study_notes"],
        item,
        instance_id="t1",
        parent_id=9,
        change_field="modifiedDate",
        tenant_tz=NY,
        scrub_nul=True,
    )
    assert record["instance_id"] == "t1"
    assert record["studyId"] == 9
    assert record["modifiedDate"] == "2024-01-01T05:00:00.000000+00:00"
    assert isinstance(record["data"], JSONObject)
    assert record["data"] == {**item, "note": "ab", "nested": {"x": ["c"]}}


def test_unreadable_change_value_loads_with_null():
    record = build_record(
        BY_NAME["studies"],
        {"id": 1, "lastUpdatedOn": "last tuesday"},
        instance_id="t",
        parent_id=None,
        change_field="lastUpdatedOn",
        tenant_tz=NY,
    )
    assert record["modifiedDate"] is None


def test_strip_nul_walks_everything():
    assert strip_nul({"a\x00": ["\x00x", {"y": "z\x00"}], "n": 1}) == {
        "a": ["x", {"y": "z"}],
        "n": 1,
    }


@pytest.mark.parametrize(
    ("payload", "items", "link", "count"),
    [
        ([{"id": 1}], [{"id": 1}], None, None),
        ({"Items": [{"id": 1}], "NextPageLink": "n", "Count": 5}, [{"id": 1}], "n", 5),
        ({"items": [], "nextPageLink": None, "count": 0}, [], None, 0),
        ({"value": [{"id": 2}], "@odata.nextLink": "m", "@odata.count": 9}, [{"id": 2}], "m", 9),
        ({"instanceUID": "u"}, [{"instanceUID": "u"}], None, None),
        ({"instance": {"uid": "u"}}, [{"instance": {"uid": "u"}}], None, None),
        # Nested values beside the records take the two-pass parser.
        ({"value": [{"id": 3}], "@odata.count": 1, "meta": {"a": 1}}, [{"id": 3}], None, 1),
        ({"Items": "none", "value": [{"id": 4}]}, [{"id": 4}], None, None),
    ],
)
def test_every_response_shape_is_accepted(payload, items, link, count):
    page = parse_body(json.dumps(payload).encode())
    assert (page.items, page.next_link, page.count) == (items, link, count)


@pytest.mark.parametrize(
    ("payload", "items_key"),
    [([{"id": 1}], None), ({"Items": [{"id": 1}], "Count": 1}, "Items"), ({"value": []}, "value")],
)
def test_one_pass_shapes_keep_the_body_for_the_page_encoder(payload, items_key):
    body = json.dumps(payload).encode()
    page = parse_body(body)
    assert (page.body, page.items_key) == (body, items_key)
    # Only object-free envelopes qualify: the encoder's typed decoder expects scalars beside.
    assert parse_body(json.dumps({"value": [], "meta": {}}).encode()).body is None


def test_a_scalar_body_is_not_a_page():
    with pytest.raises(RequestFailed):
        parse_body(b'"oops"')


def test_retry_after_seconds_and_dates():
    assert _retry_after("3") == 3.0
    assert _retry_after(None) is None
    assert _retry_after("garbage") is None
    assert _retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0


def test_rate_limiter_paces_all_threads_together():
    limiter = RateLimiter(50)
    stamps: list[float] = []
    lock = threading.Lock()

    def worker():
        for _ in range(10):
            limiter.acquire()
            with lock:
                stamps.append(time.monotonic())

    threads = [threading.Thread(target=worker) for _ in range(4)]
    start = time.monotonic()
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    # 40 requests at 50/s: at least 39 intervals of 20 ms, whatever the thread count.
    assert time.monotonic() - start >= 39 / 50 * 0.95
    assert len(stamps) == 40


def test_pause_stops_everyone():
    limiter = RateLimiter(None)
    limiter.pause(0.2)
    start = time.monotonic()
    limiter.acquire()
    assert time.monotonic() - start >= 0.15


def test_ordered_map_keeps_order_and_bounds_work_in_flight():
    running = 0
    peak = 0
    lock = threading.Lock()

    def slow(x: int) -> int:
        nonlocal running, peak
        with lock:
            running += 1
            peak = max(peak, running)
        time.sleep(0.01 * (x % 3))
        with lock:
            running -= 1
        return x * x

    out = list(ordered_map(slow, range(30), 4))
    assert out == [(x, x * x) for x in range(30)]
    assert 1 < peak <= 4


def test_ordered_map_raises_for_the_failing_item_after_earlier_ones():
    def fail_on_5(x: int) -> int:
        if x == 5:
            raise ValueError("boom")
        return x

    seen = []
    with pytest.raises(ValueError, match="boom"):
        for item, _ in ordered_map(fail_on_5, range(10), 3):
            seen.append(item)
    assert seen == [0, 1, 2, 3, 4]


def test_catalogue_is_consistent():
    names = [e.name for e in CATALOGUE]
    assert len(names) == len(set(names))
    tables = [e.staging_table for e in CATALOGUE]
    assert len(tables) == len(set(tables))
    for e in CATALOGUE:
        if e.parent_key:
            assert "{" + e.parent_key + "}" in e.path, e.name
        else:
            assert "{" not in e.path, e.name
    plan = {e.name: e.job_id for e in CATALOGUE if e.job_id}
    assert len(plan) == 20
    assert BY_NAME["study_notes"].staging_table == "fact_study_documents_staging"
    assert BY_NAME["queries"].path.endswith("/monitor-queries/odata")


def test_readme_streams_table_is_the_catalogue():
    from pathlib import Path

    from tap_clinical_conductor.catalogue import markdown_table

    readme = (Path(__file__).parents[2] / "README.md").read_text()
    begin, end = "<!-- streams-table:begin -->\n", "\n<!-- streams-table:end -->"
    assert readme[readme.index(begin) + len(begin) : readme.index(end)] == markdown_table()


@pytest.mark.parametrize("value", ["2024-02-30T10:15:00Z", "2024-13-01T00:00:00", "yesterday"])
def test_impossible_datetimes_are_refused(value):
    from tap_clinical_conductor.timestamps import UTC, TimestampError

    with pytest.raises(TimestampError):
        normalise(value, UTC)


def test_fast_and_slow_paths_agree():
    from tap_clinical_conductor.timestamps import UTC, parse_datetime, to_bookmark

    for value in ("2024-01-15T10:15:00Z", "2024-01-28T23:59:59.1234567", "2024-01-31T00:00:00Z"):
        for tz in (UTC, NY):
            assert normalise(value, tz) == to_bookmark(parse_datetime(value, tz))


def test_proxy_and_ca_variables_are_read_once_per_session(monkeypatch):
    from tap_clinical_conductor.client import CCClient
    from tap_clinical_conductor.settings import Settings

    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example:3128")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", "/etc/ssl/site-ca.pem")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    settings = Settings.from_config({"api_url": "https://site.example/CCSWeb", "api_key": "k"})
    session = CCClient(settings)._session()
    assert session.proxies == {"https": "http://proxy.example:3128"}
    assert session.verify == "/etc/ssl/site-ca.pem"
    monkeypatch.setenv("NO_PROXY", "site.example")
    assert CCClient(settings)._session().proxies == {}


def test_tenants_on_one_host_get_different_stable_default_ids():
    from tap_clinical_conductor.tenant import default_instance_id

    site_a = default_instance_id("https://cc.example.com/SiteA/CCSWeb")
    site_b = default_instance_id("https://cc.example.com/SiteB/CCSWeb/")
    assert site_a != site_b
    assert site_a == default_instance_id("https://CC.example.com/SiteA/CCSWeb/")  # stable
    # The usual layout keeps the host name, the default before paths were part of it.
    assert default_instance_id("https://acme.clinicalconductor.com/CCSWeb") == (
        "acme.clinicalconductor.com"
    )
