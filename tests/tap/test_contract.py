"""The tap's output contract holds on every way out of it, not only on the whole-page fast path.

Each run below changes how records leave the tap (a stream map that renames, filters or drops a
stream; flattening; BATCH files; a dry run) and is checked against a plain run of the same tenant,
which writes whole pages. An SDK feature the fast path would bypass shows up here as a difference.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from urllib.parse import urlparse

import pytest

from cc_sandbox import Sandbox

from .conftest import API_KEY, tap_config
from .tapio import TAP, TapRun, catalog_selecting, run_tap

STREAMS = {"studies", "staff", "study_notes"}  # incremental, full table, per parent


@pytest.fixture(scope="module")
def tenant():
    with Sandbox(scale=0.001, seed=5, api_key=API_KEY, profile="plan") as sb:
        yield sb


@pytest.fixture(scope="module")
def setup(tenant, tmp_path_factory) -> tuple[dict, Path, TapRun]:
    """Config, catalog, and the plain run everything is compared with."""
    config = tap_config(tenant)
    catalog = catalog_selecting(config, STREAMS, tmp_path_factory.mktemp("catalog"))
    plain = run_tap(config, catalog=catalog)
    assert plain.returncode == 0, plain.stderr[-3000:]
    assert set(plain.records) == STREAMS
    # Every stream read whole: a proven complete read of each, and never ACTIVATE_VERSION (it
    # would retire every tenant's rows in target-postgres 0.8.1).
    assert plain.complete_streams == STREAMS
    assert not plain.activated
    return config, catalog, plain


def canonical(records: list[dict]) -> list[str]:
    return sorted(json.dumps(r, sort_keys=True) for r in records)


def messages(run: TapRun, kind: str) -> list[dict]:
    return [m for m in map(json.loads, run.stdout.splitlines()) if m["type"] == kind]


def test_fast_path_was_taken_by_the_plain_run(setup):
    _, _, plain = setup
    # Whole pages share one extraction time per page; the SDK stamps each record separately.
    stamps = {m["time_extracted"] for m in messages(plain, "RECORD") if m["stream"] == "studies"}
    assert len(stamps) < len(plain.records["studies"])


def test_alias_renames_records_and_schema(setup):
    config, catalog, plain = setup
    run = run_tap({**config, "stream_maps": {"staff": {"__alias__": "people"}}}, catalog=catalog)
    assert run.returncode == 0, run.stderr[-3000:]
    assert "staff" not in run.records and "staff" not in run.schemas
    assert canonical(run.records["people"]) == canonical(plain.records["staff"])
    assert "people" in run.schemas
    assert not run.activated
    for stream in STREAMS - {"staff"}:
        assert canonical(run.records[stream]) == canonical(plain.records[stream]), stream
    assert run.state == plain.state


def test_filter_keeps_matching_records_and_the_state(setup):
    config, catalog, plain = setup
    maps = {"studies": {"__filter__": "record['id'] % 2 == 0"}}
    run = run_tap({**config, "stream_maps": maps}, catalog=catalog)
    assert run.returncode == 0, run.stderr[-3000:]
    even = [r for r in plain.records["studies"] if r["id"] % 2 == 0]
    assert 0 < len(even) < len(plain.records["studies"])
    assert canonical(run.records["studies"]) == canonical(even)
    assert canonical(run.records["study_notes"]) == canonical(plain.records["study_notes"])
    assert run.state == plain.state


def test_null_map_drops_a_stream_entirely(setup):
    config, catalog, plain = setup
    run = run_tap({**config, "stream_maps": {"staff": None}}, catalog=catalog)
    assert run.returncode == 0, run.stderr[-3000:]
    assert "staff" not in run.records and "staff" not in run.schemas
    assert not run.activated
    for stream in STREAMS - {"staff"}:
        assert canonical(run.records[stream]) == canonical(plain.records[stream]), stream


def test_flattening_writes_what_the_flattened_schema_declares(setup):
    config, catalog, plain = setup
    flat = {**config, "flattening_enabled": True, "flattening_max_depth": 1}
    run = run_tap(flat, catalog=catalog)
    assert run.returncode == 0, run.stderr[-3000:]
    for stream in STREAMS:
        # `data` carries the API model: one column per field, nested objects as JSON text.
        columns = run.schemas[stream]["properties"]
        assert "data" not in columns and "data__id" in columns, stream
        model = plain.schemas[stream]["properties"]["data"]["properties"]
        unflattened = []
        for record in run.records[stream]:
            fields = {k[6:]: v for k, v in record.items() if k.startswith("data__")}
            data = {k: _json_or_value(v, model.get(k)) for k, v in fields.items()}
            envelope = {k: v for k, v in record.items() if not k.startswith("data__")}
            unflattened.append({**envelope, "data": data})
        assert canonical(unflattened) == canonical(plain.records[stream]), stream
    assert run.state == plain.state


def _json_or_value(value: object, field: dict | None) -> object:
    """A flattened value: JSON text where the API field is an object or an array."""
    types = (field or {}).get("type", [])
    if isinstance(value, str) and ("object" in types or "array" in types):
        return json.loads(value)
    return value


def test_batch_files_hold_the_records(setup, tmp_path):
    config, catalog, plain = setup
    batch = {
        "encoding": {"format": "jsonl", "compression": "gzip"},
        "storage": {"root": tmp_path.as_uri(), "prefix": "batch-"},
    }
    run = run_tap({**config, "batch_config": batch}, catalog=catalog)
    assert run.returncode == 0, run.stderr[-3000:]
    assert not run.records
    loaded: dict[str, list[dict]] = {}
    for message in messages(run, "BATCH"):
        for url in message["manifest"]:
            with gzip.open(urlparse(url).path, "rt") as handle:
                loaded.setdefault(message["stream"], []).extend(map(json.loads, handle))
    assert set(loaded) == STREAMS
    for stream in STREAMS:
        assert canonical(loaded[stream]) == canonical(plain.records[stream]), stream
    assert run.state == plain.state


def test_dry_run_writes_one_true_record_per_stream(setup):
    import subprocess

    config, catalog, plain = setup
    config_path = catalog.parent / "dry-run-config.json"
    config_path.write_text(json.dumps(config))
    proc = subprocess.run(
        [*TAP, "--config", str(config_path), "--catalog", str(catalog), "--test"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    records: dict[str, list[dict]] = {}
    for line in proc.stdout.splitlines():
        message = json.loads(line)
        if message["type"] == "RECORD":
            records.setdefault(message["stream"], []).append(message["record"])
    # A dry run syncs every stream (the SDK ignores the catalog's selection there).
    assert set(records) >= STREAMS
    assert all(len(written) == 1 for written in records.values())
    for stream in STREAMS:
        assert canonical(records[stream])[0] in canonical(plain.records[stream]), stream
