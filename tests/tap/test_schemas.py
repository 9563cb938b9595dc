"""Typed schemas: generated from the OpenAPI document, and true of every record the tap emits."""

from __future__ import annotations

import datetime as dt
import json

import jsonschema
import pytest

from cc_dev import gen_tap_schemas
from tap_clinical_conductor.catalogue import CATALOGUE, CHANGE_FIELD_CANDIDATES, Kind

from .conftest import tap_config
from .tapio import catalog_selecting, run_tap, truth_by_key

MISSING = {"screenings", "enrollments", "randomizations", "withdrawals", "concomitant_medications"}
ENTERPRISE = {"engagements", "monitor_queries"}


def test_generated_schemas_are_in_step_with_the_spec():
    path = gen_tap_schemas.spec_path()
    if path is None or not path.exists():
        pytest.skip(
            f"the OpenAPI document is not beside the repository (../shared/reference/"
            f"{gen_tap_schemas.SPEC_NAME}) and {gen_tap_schemas.SPEC_ENV} is unset"
        )
    expected = gen_tap_schemas.generate(json.loads(path.read_text()))
    on_disk = {p.name: p.read_text() for p in gen_tap_schemas.SCHEMA_DIR.glob("*.json")}
    assert sorted(on_disk) == sorted(expected), "run python -m cc_dev.gen_tap_schemas"
    stale = sorted(name for name in expected if on_disk[name] != expected[name])
    assert not stale, f"out of step with the spec: {stale}; run python -m cc_dev.gen_tap_schemas"


def test_data_schema_is_the_api_model_and_the_envelope_is_unchanged():
    run = run_tap({"api_url": "http://127.0.0.1:9/CCSWeb", "api_key": "k"}, discover=True)
    assert run.returncode == 0, run.stderr[-2000:]
    streams = {s["tap_stream_id"]: s["schema"] for s in json.loads(run.stdout)["streams"]}
    visits = streams["patient_visits"]
    assert list(visits["properties"]) == ["instance_id", "id", "modifiedDate", "data"]
    data = visits["properties"]["data"]
    assert data["type"] == "object" and data["additionalProperties"] is True
    fields = data["properties"]
    # The API's own case, date-times, nested objects and arrays, everything nullable.
    assert fields["targetDueDate"]["type"] == ["string", "null"]
    assert fields["targetDueDate"]["format"] == "date-time"
    assert fields["study"]["type"] == ["object", "null"]
    assert fields["study"]["properties"]["id"]["type"] == ["integer", "null"]
    assert "enum" not in fields["status"]
    studies = streams["studies"]["properties"]["data"]["properties"]
    assert studies["targetDates"]["type"] == ["array", "null"]
    assert studies["targetDates"]["items"]["type"] == ["object", "null"]
    assert streams["subjects"]["properties"]["studyId"] == {"type": "integer"}
    # Where the spec and the catalogue disagree on the key's type, the id field takes both.
    check_requests = streams["site_payment_check_requests"]["properties"]["data"]["properties"]
    assert check_requests["id"]["type"] == ["string", "integer", "null"]


def _validator(schema: dict) -> jsonschema.Draft7Validator:
    checker = jsonschema.FormatChecker(formats=())

    @checker.checks("date-time", raises=ValueError)
    def _date_time(value: object) -> bool:
        # CC writes tenant-local times without an offset (and up to seven fractional digits);
        # typed targets load them as timestamps without a zone.
        return not isinstance(value, str) or dt.datetime.fromisoformat(value) is not None

    return jsonschema.Draft7Validator(schema, format_checker=checker)


def _undeclared(schema: dict, record: dict) -> set[str]:
    """Top-level API fields of ``record`` that the schema does not name."""
    return set(record["data"]) - set(schema["properties"]["data"]["properties"])


@pytest.mark.parametrize("profile", ["spec", "plan"])
@pytest.mark.parametrize("kind", list(Kind))
def test_schema_validates_every_record_the_sandbox_serves(sandbox, tmp_path, kind, profile):
    sb = sandbox(profile=profile)
    config = tap_config(sb)
    streams = {e.name for e in CATALOGUE if e.kind is kind} - MISSING - ENTERPRISE
    run = run_tap(config, catalog=catalog_selecting(config, streams, tmp_path))
    assert run.returncode == 0, run.stderr[-3000:]
    for stream in sorted(streams):
        truth = truth_by_key(sb, stream)
        records = run.records.get(stream, [])
        assert truth and len(records) == len(truth), stream
        schema = run.schemas[stream]
        validator = _validator(schema)
        for record in records:
            errors = [e.message for e in validator.iter_errors(record)][:3]
            assert not errors, (stream, errors, record["data"])
        # The schema describes the fields, not just lets them through: only change fields
        # newer than the spec (the plan profile's modifiedDate) are undeclared.
        if schema["properties"]["data"]["properties"]:
            extra = set().union(*(_undeclared(schema, r) for r in records))
            assert extra <= set(CHANGE_FIELD_CANDIDATES), (stream, extra)
