"""One odd value costs that value, never the run; the key never leaks, never travels elsewhere."""

from __future__ import annotations

import http.server
import threading
from collections import Counter

import pytest
from singer_sdk.exceptions import ConfigValidationError

from tap_clinical_conductor.client import CCClient
from tap_clinical_conductor.errors import RequestFailed
from tap_clinical_conductor.responses import parse_body
from tap_clinical_conductor.settings import Settings

from .test_requests import RecordingClient, make_tap, run_stream

KEY = "secret-key-4711"
EXTREME = ["9999-12-31T23:59:59.9999999", "0001-01-01T00:00:00"]


@pytest.mark.parametrize("zone", ["America/New_York", "Asia/Tokyo"])
def test_extreme_change_values_cost_only_that_value(zone):
    tap = make_tap({"tenant_timezone": zone})
    rows = [{"id": i, "modifiedDate": v} for i, v in enumerate(EXTREME, start=1)]
    rows.append({"id": 3, "modifiedDate": "2025-06-01T00:00:00"})
    records = run_stream(tap, "patients", RecordingClient([rows]))
    assert [r["id"] for r in records] == [1, 2, 3]
    changed = {r["id"]: r["modifiedDate"] for r in records}
    assert changed[3] is not None
    # Out of range in UTC in one zone or the other: null, counted, never an OverflowError.
    lost = [i for i in (1, 2) if changed[i] is None]
    assert lost
    assert sum(tap.streams["patients"].skipped.values()) == len(lost)


def test_a_lone_surrogate_costs_one_character():
    page = parse_body(b'[{"id":1,"name":"a\\ud800b","ok":"\\ud83d\\ude00"}]')
    assert page.items == [{"id": 1, "name": "a\ufffdb", "ok": "\U0001f600"}]


@pytest.mark.parametrize("key", [KEY + "\n", " " + KEY, KEY + "\r\n"])
def test_a_key_with_whitespace_is_refused_without_showing_it(key):
    with pytest.raises(ConfigValidationError) as info:
        make_tap({"api_key": key})
    text = " ".join(info.value.errors)
    assert "api_key has leading or trailing whitespace" in text
    assert KEY not in text and KEY not in str(info.value)


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"lookback_minutes": -1440}, "lookback_minutes"),
        ({"max_retries": -1}, "max_retries"),
        ({"api_url": "http://cc.example.com/CCSWeb"}, "plain http://"),
    ],
)
def test_accepted_but_wrong_settings_are_refused(config, message):
    with pytest.raises(ConfigValidationError) as info:
        make_tap(config)
    assert message in " ".join(info.value.errors) + str(info.value)


@pytest.mark.parametrize(
    "config",
    [
        {"api_url": "http://127.0.0.1:8642/CCSWeb"},
        {"api_url": "http://localhost:8642/CCSWeb"},
        {"api_url": "http://cc.example.com/CCSWeb", "allow_insecure_http": True},
    ],
)
def test_plain_http_to_this_machine_or_when_allowed(config):
    make_tap(config)


class _Recorder(http.server.BaseHTTPRequestHandler):
    """Answers every GET with ``self.server.answer`` and records the key header it got."""

    def do_GET(self):  # noqa: N802 - the stdlib's name
        self.server.keys.append(self.headers.get("CCAPIKey"))
        status, headers, body = self.server.answer(self)
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def _serve(answer):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    server.keys = []
    server.answer = answer
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def test_a_redirect_to_another_host_never_receives_the_key():
    other = _serve(lambda h: (200, [("Content-Type", "application/json")], b"[]"))
    # 127.0.0.2 is this machine under another name: another host as far as HTTP goes.
    target = f"http://127.0.0.2:{other.server_address[1]}/elsewhere"
    tenant = _serve(lambda h: (302, [("Location", target)], b""))
    try:
        base = f"http://127.0.0.1:{tenant.server_address[1]}/CCSWeb"
        settings = Settings.from_config({"api_url": base, "api_key": KEY, "max_retries": 0})
        with pytest.raises(RequestFailed, match="redirected to another host") as info:
            CCClient(settings).get_page("/api/v1/sites")
        assert KEY not in str(info.value)
        assert tenant.keys == [KEY]
        assert other.keys == []
    finally:
        tenant.shutdown()
        other.shutdown()


def test_a_redirect_within_the_tenant_is_followed():
    def answer(handler):
        if handler.path.startswith("/CCSWeb/api/v1/sites"):
            return 302, [("Location", "/CCSWEB/api/v1/sites")], b""
        return 200, [("Content-Type", "application/json")], b'[{"id": 1}]'

    tenant = _serve(answer)
    try:
        base = f"http://127.0.0.1:{tenant.server_address[1]}/CCSWeb"
        settings = Settings.from_config({"api_url": base, "api_key": KEY})
        assert CCClient(settings).get_page("/api/v1/sites").items == [{"id": 1}]
    finally:
        tenant.shutdown()


def test_whole_page_path_keeps_a_record_whose_change_value_leaves_the_calendar():
    import json
    from zoneinfo import ZoneInfo

    from tap_clinical_conductor.catalogue import BY_NAME
    from tap_clinical_conductor.records import PageEncoder

    body = (
        b'[{"id":1,"modifiedDate":"0001-01-01T00:00:00"},'
        b'{"id":2,"modifiedDate":"2025-01-01T00:00:00"}]'
    )
    page = parse_body(body)
    encoder = PageEncoder(
        BY_NAME["patients"],
        stream="patients",
        instance_id="x",
        change_field="modifiedDate",
        tenant_tz=ZoneInfo("Asia/Tokyo"),
        lower=None,
    )
    skipped: Counter[str] = Counter()
    lines, count, best = encoder.encode(
        page.body,
        None,
        page.raw,
        parent_id=None,
        version=None,
        extracted_at=b'"t"',
        skipped=skipped,
    )
    records = [json.loads(line)["record"] for line in lines.splitlines()]
    assert [r["modifiedDate"] for r in records] == [None, "2024-12-31T15:00:00.000000+00:00"]
    assert count == 2 and best == "2024-12-31T15:00:00.000000+00:00"
    assert sum(skipped.values()) == 1
