"""Through a real ``dagster dev`` (webserver, daemon, run queue, sensors) and its GraphQL API.

Four runs are launched at once: site-a twice, site-b once, and site-c, whose key is wrong (every
request answers 401, so its Meltano step fails). Shown:

* the second site-a run waits in the queue while the first runs, and starts only after it ends,
  while site-b is not held back;
* site-c's step is retried (``retries.max_retries``), the run fails, and the failure sensor POSTs
  to the webhook (a local HTTP server) naming the tenant and the run; site-b succeeds.
"""

from __future__ import annotations

import json
import os
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from cc_sandbox import Sandbox
from orchestration import dev
from orchestration.definitions import staging_tables

RETRIES = 1
TERMINAL = {"SUCCESS", "FAILURE", "CANCELED"}


class Webhook(ThreadingHTTPServer):
    """Collects the JSON bodies POSTed to it."""

    def __init__(self) -> None:
        self.received: list[dict] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                outer.received.append(json.loads(body))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args):
                pass

        super().__init__(("127.0.0.1", 0), Handler)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/alerts/T000/secret-path"


@pytest.fixture(scope="module")
def webhook():
    server = Webhook()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def dagster_dev(tenant_env, orch_dir, settings_for, tenant_entry, webhook, monkeypatch_module):
    keys = {"CC_DEV_KEY_A": "dev-key-a", "CC_DEV_KEY_B": "dev-key-b", "CC_DEV_KEY_C": "wrong"}
    for k, v in keys.items():
        monkeypatch_module.setenv(k, v)
    monkeypatch_module.setenv("CC_ALERT_WEBHOOK_URL", webhook.url)
    with (
        Sandbox(scale=0.001, profile="plan", api_key="dev-key-a", seed=7) as a,
        Sandbox(scale=0.001, profile="plan", api_key="dev-key-b", seed=8) as b,
        Sandbox(scale=0.001, profile="plan", api_key="the-right-key", seed=9) as c,
    ):
        settings_for(
            [
                tenant_entry("site-a", a, "CC_DEV_KEY_A"),
                tenant_entry("site-b", b, "CC_DEV_KEY_B"),
                tenant_entry("site-c", c, "CC_DEV_KEY_C"),
            ],
            retries={"max_retries": RETRIES, "delay_seconds": 1},
        )
        home = dev.write_home(orch_dir / "dagster-home")
        port = dev.free_port()
        log = orch_dir / "dagster-dev.log"
        proc = dev.start_dagster_dev(home, dict(os.environ), port, log)
        url = f"http://127.0.0.1:{port}"
        try:
            started = time.monotonic()
            dev.wait_ready(url, proc)
            print(f"dagster dev ready in {time.monotonic() - started:.1f} s")
            yield url
        finally:
            dev.stop(proc)


RUN = """
query Run($runId: ID!) {
  runOrError(runId: $runId) {
    ... on Run {
      runId status startTime endTime tags { key value }
      stepStats { stepKey status attempts { startTime endTime } }
    }
  }
}
"""


def launch(url: str, tenant: str) -> str:
    # The Meltano step only (dbt is the in-process test's part): a multi-asset runs whole.
    return dev.launch(url, tenant, asset_keys=[["staging", t] for t in staging_tables()])


def run_info(url: str, run_id: str) -> dict:
    return dev.graphql(url, RUN, {"runId": run_id})["runOrError"]


@pytest.fixture(scope="module")
def scenario(dagster_dev):
    url = dagster_dev
    ids = {
        "a1": launch(url, "site-a"),
        "a2": launch(url, "site-a"),
        "b": launch(url, "site-b"),
        "c": launch(url, "site-c"),
    }
    seen: list[dict[str, str]] = []
    deadline = time.monotonic() + 420
    while time.monotonic() < deadline:
        statuses = {k: run_info(url, v)["status"] for k, v in ids.items()}
        seen.append(statuses)
        if all(s in TERMINAL for s in statuses.values()):
            break
        time.sleep(0.5)
    else:
        pytest.fail(f"runs not finished after 420 s: {seen[-1]}")
    return {
        "url": url,
        "ids": ids,
        "seen": seen,
        "runs": {k: run_info(url, v) for k, v in ids.items()},
    }


def test_second_run_of_a_tenant_waits_for_the_first(scenario):
    seen, runs = scenario["seen"], scenario["runs"]
    assert runs["a1"]["status"] == "SUCCESS"
    assert runs["a2"]["status"] == "SUCCESS"
    # Observed: a2 queued while a1 ran.
    assert any(s["a1"] == "STARTED" and s["a2"] == "QUEUED" for s in seen), seen
    # Never both running, and a2 began only after a1 ended.
    assert not any(s["a1"] == "STARTED" and s["a2"] == "STARTED" for s in seen)
    assert runs["a2"]["startTime"] >= runs["a1"]["endTime"]


def test_other_tenants_are_not_held_back(scenario):
    seen, runs = scenario["seen"], scenario["runs"]
    assert runs["b"]["status"] == "SUCCESS"
    # site-b started before site-a's first run ended.
    assert runs["b"]["startTime"] < runs["a1"]["endTime"]
    assert any(s["a1"] == "STARTED" and s["b"] in ("STARTING", "STARTED") for s in seen), seen


def test_failing_tenant_is_retried_then_alerts(scenario, webhook):
    runs, ids = scenario["runs"], scenario["ids"]
    failed = runs["c"]
    assert failed["status"] == "FAILURE"
    (step,) = [s for s in failed["stepStats"] if s["stepKey"] == "meltano_staging"]
    assert len(step["attempts"]) == RETRIES + 1, step
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline and not webhook.received:
        time.sleep(1)
    assert webhook.received, "the failure webhook was not called"
    (alert,) = webhook.received
    assert alert["run_id"] == ids["c"]
    assert alert["tenant"] == "site-c"
    assert alert["job"] == "daily"
    assert "site-c" in alert["text"]
    assert "wrong" not in json.dumps(alert)  # the key never travels
