"""The tap on its own: --about, --discover, and a sync piped into another Singer target."""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
import sys

from .conftest import API_KEY, tap_config
from .tapio import TAP, catalog_selecting, run_tap, truth_by_key


def test_about_lists_settings_and_marks_the_key_secret():
    out = subprocess.run(
        [*TAP, "--about", "--format", "json"], capture_output=True, text=True, check=True
    )
    about = json.loads(out.stdout)
    settings = about["settings"]["properties"]
    for name in (
        "api_url",
        "api_key",
        "api_key_header",
        "instance_id",
        "start_date",
        "tenant_timezone",
        "page_size",
        "lookback_minutes",
        "request_timeout_seconds",
        "max_retries",
        "change_field_overrides",
        "filter_datetime_format",
        "child_scope",
        "max_requests_per_second",
        "max_parallel_requests",
    ):
        assert name in settings, name
    assert settings["api_key"].get("secret") is True
    assert "state" in about["capabilities"]


def test_discover_needs_no_server_and_keeps_the_key_out(tmp_path):
    config = {"api_url": "http://127.0.0.1:9/CCSWeb", "api_key": API_KEY}
    run = run_tap(config, discover=True)
    assert run.returncode == 0, run.stderr[-2000:]
    catalog = json.loads(run.stdout)
    streams = {s["tap_stream_id"]: s for s in catalog["streams"]}
    assert len(streams) >= 60
    assert streams["subjects"]["key_properties"] == ["instance_id", "studyId", "id"]
    assert streams["studies"]["replication_key"] == "modifiedDate"
    assert "replication_key" not in streams["sites"] or not streams["sites"]["replication_key"]
    assert API_KEY not in run.stdout + run.stderr


def test_sync_piped_into_target_csv(sandbox, tmp_path):
    sb = sandbox()
    config = tap_config(sb)
    catalog = catalog_selecting(config, {"studies", "study_notes"}, tmp_path)
    config_path = tmp_path / "tap.json"
    config_path.write_text(json.dumps(config))
    target = shutil.which("target-csv", path=str(sys.prefix) + "/bin")
    assert target, "meltanolabs-target-csv is a dev dependency"
    target_config = tmp_path / "target.json"
    out_dir = tmp_path / "csv"
    out_dir.mkdir()
    target_config.write_text(json.dumps({"output_path": str(out_dir)}))
    tap = subprocess.Popen(
        [*TAP, "--config", str(config_path), "--catalog", str(catalog)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    result = subprocess.run(
        [target, "--config", str(target_config)],
        stdin=tap.stdout,
        capture_output=True,
        text=True,
        check=False,
    )
    assert tap.wait() == 0
    assert result.returncode == 0, result.stderr[-2000:]
    files = {p.stem.split("-")[0]: p for p in out_dir.glob("*.csv")}
    with files["study_notes"].open() as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == len(truth_by_key(sb, "study_notes"))
    assert {r["instance_id"] for r in rows} == {"sandbox"}
