"""Every capability the tap advertises works: flattening, batch, stream maps, selection."""

from __future__ import annotations

import gzip
import json
import secrets
import subprocess
from pathlib import Path

import yaml

from tap_clinical_conductor.sdk_private import Emission
from tap_clinical_conductor.tap import TapClinicalConductor

from .conftest import API_KEY, tap_config
from .tapio import TAP, catalog_selecting, key_of, run_tap, truth_by_key

MELTANO_YML = Path(__file__).resolve().parents[2] / "meltano.yml"


def test_about_and_meltano_yml_list_the_same_capabilities():
    out = subprocess.run(
        [*TAP, "--about", "--format", "json"], capture_output=True, text=True, check=True
    )
    about = set(json.loads(out.stdout)["capabilities"])
    project = yaml.safe_load(MELTANO_YML.read_text())
    (tap,) = [p for p in project["plugins"]["extractors"] if p["name"] == "tap-clinical-conductor"]
    assert set(tap["capabilities"]) == about


def test_flattening_gives_typed_columns_of_the_api_fields(sandbox, tmp_path):
    sb = sandbox()
    config = tap_config(sb, flattening_enabled=True, flattening_max_depth=1)
    streams = {"studies", "appointments", "subjects"}
    run = run_tap(config, catalog=catalog_selecting(config, streams, tmp_path))
    assert run.returncode == 0, run.stderr[-3000:]
    studies = run.schemas["studies"]["properties"]
    assert "data" not in studies
    assert studies["data__name"]["type"] == ["string", "null"]
    assert studies["data__status"]["type"] == ["string", "null"]
    assert studies["data__lastUpdatedOn"]["format"] == "date-time"
    assert studies["data__id"]["type"] == ["integer", "null"]
    # Objects below the first level are JSON text.
    assert studies["data__sponsor"]["type"] == ["string", "null"]
    assert run.schemas["appointments"]["properties"]["data__plannedStart"]["format"] == "date-time"
    for stream in streams:
        truth = truth_by_key(sb, stream)
        records = run.records[stream]
        assert len(records) == len(truth), stream
        columns = set(run.schemas[stream]["properties"])
        for record in records:
            assert set(record) <= columns, (stream, set(record) - columns)
    by_id = {r["id"]: r for r in run.records["studies"]}
    for (rid,), data in truth_by_key(sb, "studies").items():
        assert by_id[rid]["data__name"] == data["name"]
        assert by_id[rid]["data__status"] == data["status"]
        assert json.loads(by_id[rid]["data__sponsor"]) == data["sponsor"]


def test_batch_files_hold_the_api_objects(sandbox, tmp_path):
    sb = sandbox()
    config = tap_config(sb, batch_config=_batch_config(tmp_path / "batches"))
    streams = {"studies", "subject_statuses", "study_notes"}
    proc = subprocess.run(
        [*TAP, "--config", _write(tmp_path, config)]
        + ["--catalog", str(catalog_selecting(config, streams, tmp_path))],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    messages = [json.loads(line) for line in proc.stdout.splitlines()]
    assert {m["stream"] for m in messages if m["type"] == "BATCH"} == streams
    # Only the proven complete reads travel as RECORDs; no ACTIVATE_VERSION ever.
    assert not [m for m in messages if m["type"] == "ACTIVATE_VERSION"]
    records = [m for m in messages if m["type"] == "RECORD"]
    assert {m["stream"] for m in records} == {"cc_complete_reads", "cc_sync_coverage"}
    assert {m["record"]["stream"] for m in records} == streams
    for stream in streams:
        manifest = [
            f
            for m in messages
            if m["type"] == "BATCH" and m["stream"] == stream
            for f in m["manifest"]
        ]
        records = [
            json.loads(line)
            for url in manifest
            for line in gzip.decompress(Path(url.removeprefix("file://")).read_bytes()).splitlines()
        ]
        truth = truth_by_key(sb, stream)
        got = {key_of(stream, r): r["data"] for r in records}
        assert len(records) == len(truth) and got == truth, stream


def test_batch_files_load_through_target_postgres(
    sandbox, tmp_path, warehouse_server, project_root
):
    """The ``batch`` capability through a real target: the rows of the BATCH files land."""
    target = project_root / ".meltano/loaders/target-postgres/venv/bin/target-postgres"
    assert target.exists(), "target-postgres is not installed: run `make install`"
    sb = sandbox()
    config = tap_config(sb, batch_config=_batch_config(tmp_path / "batches"))
    streams = {"studies", "sites"}
    tap = subprocess.run(
        [*TAP, "--config", _write(tmp_path, config)]
        + ["--catalog", str(catalog_selecting(config, streams, tmp_path))],
        capture_output=True,
        check=False,
    )
    assert tap.returncode == 0, tap.stderr[-3000:]
    assert b'"type":"BATCH"' in tap.stdout.replace(b" ", b"")
    schema = f"batch_{secrets.token_hex(4)}"
    target_config = {
        "sqlalchemy_url": warehouse_server.url,
        "default_target_schema": schema,
        "add_record_metadata": True,
        "validate_records": False,
    }
    try:
        loaded = subprocess.run(
            [str(target), "--config", _write(tmp_path, target_config)],
            input=tap.stdout,
            capture_output=True,
            check=False,
            timeout=300,
        )
        assert loaded.returncode == 0, loaded.stderr[-3000:]
        with warehouse_server.connect() as conn:
            for stream in streams:
                rows = conn.execute(f'SELECT id, data FROM "{schema}"."{stream}"').fetchall()
                assert {(rid,): data for rid, data in rows} == truth_by_key(sb, stream), stream
                assert len(rows) == len(truth_by_key(sb, stream)), stream
    finally:
        with warehouse_server.connect() as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def test_stream_map_alias_names_every_message(sandbox, tmp_path):
    sb = sandbox()
    config = tap_config(sb, stream_maps={"sites": {"__alias__": "cc_sites"}})
    run = run_tap(config, catalog=catalog_selecting(config, {"sites"}, tmp_path))
    assert run.returncode == 0, run.stderr[-3000:]
    assert set(run.records) == {"cc_sites"}
    assert set(run.schemas) == {"cc_sites", "cc_complete_reads", "cc_sync_coverage"}
    # The complete read names the aliased table, so the warehouse retires rows there.
    assert not run.activated
    assert [c["staging_table"] for c in run.complete] == ["cc_sites"]
    assert len(run.records["cc_sites"]) == len(truth_by_key(sb, "sites"))


def test_a_field_deselected_inside_data_is_not_sent(sandbox, tmp_path):
    sb = sandbox()
    config = tap_config(sb)
    path = catalog_selecting(config, {"study_notes", "studies"}, tmp_path)
    catalog = json.loads(path.read_text())
    for entry in catalog["streams"]:
        if entry["tap_stream_id"] == "study_notes":
            entry["metadata"].append(_deselected("data", "note"))
    path.write_text(json.dumps(catalog))
    run = run_tap(config, catalog=path)
    assert run.returncode == 0, run.stderr[-3000:]
    notes = run.records["study_notes"]
    assert len(notes) == len(truth_by_key(sb, "study_notes"))
    assert all("note" not in r["data"] and "date" in r["data"] for r in notes)
    assert all("sponsor" in r["data"] for r in run.records["studies"])


def test_whole_pages_are_written_unless_something_reaches_into_data():
    base = {"api_url": "http://127.0.0.1:9/CCSWeb", "api_key": API_KEY}
    nested = _catalog(base)
    assert _writes_pages(TapClinicalConductor(config=base, catalog=nested))
    flattened = {**base, "flattening_enabled": True, "flattening_max_depth": 1}
    assert not _writes_pages(TapClinicalConductor(config=flattened, catalog=nested))
    for entry in nested["streams"]:
        entry["metadata"].append(_deselected("data", "note"))
    assert not _writes_pages(TapClinicalConductor(config=base, catalog=nested))


def _catalog(config: dict) -> dict:
    """The discovered catalog with metadata for every nested property, as Meltano writes it."""
    catalog = TapClinicalConductor(config=config).catalog_dict
    for entry in catalog["streams"]:
        fields = entry["schema"]["properties"]["data"]["properties"]
        entry["metadata"] += [
            {"breadcrumb": ["properties", "data", "properties", f], "metadata": {"selected": True}}
            for f in fields
        ]
        for md in entry["metadata"]:
            if md["breadcrumb"] == []:
                md["metadata"]["selected"] = entry["tap_stream_id"] == "study_notes"
    return catalog


def _writes_pages(tap: TapClinicalConductor) -> bool:
    return tap.streams["study_notes"].choose_emission(write_messages=True) is Emission.PAGES


def _deselected(*path: str) -> dict:
    crumb = [part for name in path for part in ("properties", name)]
    return {"breadcrumb": crumb, "metadata": {"selected": False}}


def _batch_config(out: Path) -> dict:
    """Gzipped JSONL batch files in ``out`` (created)."""
    out.mkdir()
    return {
        "encoding": {"format": "jsonl", "compression": "gzip"},
        "storage": {"root": out.as_uri(), "prefix": "cc-"},
    }


def _write(tmp_path: Path, config: dict) -> str:
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config))
    return str(path)
