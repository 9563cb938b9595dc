"""Bad configuration is refused before any request: exit non-zero, a message that names the setting
to fix (never the key), nothing written.

Every case runs the tap executable Meltano installed (``.meltano/extractors/.../bin``) with the
config Meltano would hand it; three cases also go through ``meltano run`` into PostgreSQL, where
nothing may be written: no table, no state.
"""

from __future__ import annotations

import json
import subprocess

import pytest

from cc_dev import project_root
from cc_dev.warehouse import table_counts

from .conftest import API_KEY
from .harness import secret_hits

TAP_BIN = project_root() / ".meltano/extractors/tap-clinical-conductor/venv/bin"
TAP_BIN = TAP_BIN / "tap-clinical-conductor"

#: name -> (config changes, text the message must contain, requests the tenant may see)
CASES = {
    "missing key": ({"api_key": None}, "api_key", 0),
    "empty key": ({"api_key": "  "}, "api_key is empty", 0),
    "malformed url": ({"api_url": "htp:/nowhere"}, "api_url must be an http(s) URL", 0),
    "page_size over 1000": (
        {"page_size": 5000},
        "greater than the maximum of 1000 in config['page_size']",
        0,
    ),
    "malformed start_date": ({"start_date": "last tuesday"}, "start_date must be an ISO-8601", 0),
    "unknown stream override": (
        {"change_field_overrides": {"studys": "modifiedDate"}},
        "change_field_overrides names unknown streams: studys",
        0,
    ),
    "unknown time zone": ({"tenant_timezone": "Mars/Olympus"}, "'Mars/Olympus' is not an IANA", 0),
    "unreachable host": (
        {"api_url": "http://127.0.0.1:9/CCSWeb", "max_retries": 1},
        "cannot connect to the host",
        0,
    ),
    "wrong header name": ({"api_key_header": "X-Api-Key"}, "refused the key (HTTP 401)", 1),
}


@pytest.fixture(scope="module")
def sb():
    from cc_sandbox import Sandbox

    with Sandbox(scale=0.0003, profile="plan", api_key=API_KEY, seed=3) as sandbox:
        yield sandbox


def run_tap(config: dict, tmp_path) -> subprocess.CompletedProcess:
    path = tmp_path / "config.json"
    path.write_text(json.dumps({k: v for k, v in config.items() if v is not None}))
    return subprocess.run(
        [str(TAP_BIN), "--config", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize("case", list(CASES))
def test_tap_refuses_bad_config(sb, tmp_path, case, installed):
    changes, message, max_requests = CASES[case]
    config = {
        "api_url": sb.base_url,
        "api_key": API_KEY,
        "backoff_base_seconds": 0.01,
        **changes,
    }
    sb.reset_stats()
    proc = run_tap(config, tmp_path)
    assert proc.returncode != 0
    assert message in proc.stderr, proc.stderr[-2000:]
    assert not [line for line in proc.stdout.splitlines() if '"RECORD"' in line]
    assert '"STATE"' not in proc.stdout
    assert sb.stats()["requests"] <= max_requests
    assert not secret_hits(API_KEY, {"stdout": proc.stdout, "stderr": proc.stderr})


@pytest.mark.parametrize(
    ("case", "env", "message"),
    [
        ("missing key", {"TAP_CLINICAL_CONDUCTOR_API_KEY": ""}, "api_key"),
        ("page_size over 1000", {"TAP_CLINICAL_CONDUCTOR_PAGE_SIZE": "5000"}, "page_size"),
        ("wrong header", {"TAP_CLINICAL_CONDUCTOR_API_KEY_HEADER": "X-Api-Key"}, "HTTP 401"),
    ],
)
def test_meltano_run_with_bad_config_writes_nothing(tenant, pipeline, case, env, message):
    sb = tenant(scale=0.0003)
    pipe = pipeline(sb, env=env)
    outcome = pipe.run()
    assert outcome.returncode != 0
    assert message in outcome.output, outcome.tail()
    assert sb.stats()["requests"] <= (1 if "header" in case else 0)
    with pipe.pg.connect() as conn:
        counts = table_counts(conn, pipe.schema)
    if "header" in case:
        # Refused on the first request: the SCHEMA message came before it, so target-postgres may
        # have created the first stream's table, but no row reaches it.
        assert sum(counts.values()) == 0, counts
    else:
        assert counts == {}, counts
    assert pipe.saved_state() == {}
    assert not secret_hits(API_KEY, {"output": outcome.output, **pipe.project.texts()})
