"""The standalone recipe: the tap, flattened, into target-duckdb; typed tables equal the truth."""

from __future__ import annotations

import datetime as dt
import json
import shutil
import subprocess
import sys

import duckdb
import pytest

from .conftest import tap_config
from .tapio import TAP, catalog_selecting, truth_by_key

#: One stream or more of each kind, with date-times, integers, nested objects and a string list.
STREAMS = {
    "studies": None,
    "appointments": None,
    "system_lookup_lists": None,
    "subjects": "studyId",
    "study_notes": "studyId",
    "patient_allergies": "patientId",
    "patient_visit_elements": "patientVisitId",
}
INTEGER_TYPES = {"SMALLINT", "INTEGER", "BIGINT", "HUGEINT"}


def _column_type(prop: dict) -> set[str]:
    """The DuckDB types a flattened schema property may load as."""
    types = set(prop["type"]) if isinstance(prop["type"], list) else {prop["type"]}
    if prop.get("format") == "date-time":
        return {"TIMESTAMP"}
    if "integer" in types:
        return INTEGER_TYPES
    if "number" in types:
        return {"DOUBLE"}
    if "boolean" in types:
        return {"BOOLEAN"}
    return {"VARCHAR"}


def _naive(text: str | None) -> dt.datetime | None:
    if text is None:
        return None
    value = dt.datetime.fromisoformat(text)
    return value.astimezone(dt.timezone.utc).replace(tzinfo=None) if value.tzinfo else value


@pytest.mark.parametrize("profile", ["spec", "plan"])
def test_flattened_sync_into_duckdb_has_typed_columns_and_the_truth(sandbox, tmp_path, profile):
    sb = sandbox(profile=profile)
    config = tap_config(sb, flattening_enabled=True, flattening_max_depth=1)
    catalog = catalog_selecting(config, set(STREAMS), tmp_path)
    (tmp_path / "tap.json").write_text(json.dumps(config))
    database = tmp_path / "warehouse.duckdb"
    (tmp_path / "target.json").write_text(
        json.dumps({"path": str(database), "default_target_schema": "clinical_conductor"})
    )
    target = shutil.which("target-duckdb", path=str(sys.prefix) + "/bin")
    assert target, "target-duckdb is a dev dependency"
    singer = tmp_path / "singer.jsonl"
    with singer.open("wb") as out:
        tap = subprocess.run(
            [*TAP, "--config", str(tmp_path / "tap.json"), "--catalog", str(catalog)],
            stdout=out,
            stderr=subprocess.PIPE,
            check=False,
        )
    assert tap.returncode == 0, tap.stderr[-3000:]
    with singer.open("rb") as lines:
        load = subprocess.run(
            [target, "--config", str(tmp_path / "target.json")],
            stdin=lines,
            capture_output=True,
            text=True,
            check=False,
        )
    assert load.returncode == 0, load.stderr[-3000:]
    schemas = {
        m["stream"]: m["schema"]
        for m in map(json.loads, singer.read_text().splitlines())
        if m["type"] == "SCHEMA"
    }

    db = duckdb.connect(str(database), read_only=True)
    try:
        for stream, parent_key in STREAMS.items():
            table = f"clinical_conductor.{stream}"
            columns = dict(
                db.execute(
                    "select column_name, data_type from information_schema.columns "
                    "where table_schema = 'clinical_conductor' and table_name = ?",
                    [stream],
                ).fetchall()
            )
            properties = schemas[stream]["properties"]
            assert "data" not in properties and "data" not in columns, stream
            # One typed column per flattened property: date-times are timestamps, integers
            # integers, as the spec types them.
            assert set(columns) == {name.lower() for name in properties}, stream
            for name, prop in properties.items():
                assert columns[name.lower()] in _column_type(prop), (stream, name, prop)
            truth = truth_by_key(sb, stream)
            (count,) = db.execute(f"select count(*) from {table}").fetchone()
            assert count == len(truth) > 0, stream
            keys = ", ".join(k for k in (parent_key, "id") if k)
            assert set(db.execute(f"select {keys} from {table}").fetchall()) == set(truth), stream

        dated = db.execute(
            "select id, data__name, data__status, data__lastupdatedon, data__id "
            "from clinical_conductor.studies"
        ).fetchall()
        truth = truth_by_key(sb, "studies")
        for rid, name, status, updated, data_id in dated:
            assert (name, status, data_id) == (
                truth[(rid,)]["name"],
                truth[(rid,)]["status"],
                truth[(rid,)]["id"],
            )
            assert isinstance(updated, dt.datetime)
            assert updated == _naive(truth[(rid,)]["lastUpdatedOn"])
        planned = db.execute(
            "select id, data__plannedstart from clinical_conductor.appointments"
        ).fetchall()
        appointments = truth_by_key(sb, "appointments")
        for rid, start in planned:
            expected = _naive(appointments[(rid,)]["plannedStart"])
            # .NET writes seven fractional digits; both sides keep six.
            assert start == expected or abs(start - expected) <= dt.timedelta(microseconds=1)
    finally:
        db.close()
