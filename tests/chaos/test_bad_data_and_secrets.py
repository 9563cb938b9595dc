"""Bad records through the whole pipeline, a body that is not JSON, and the API key's secrecy.

One tenant serves broken records (``Sandbox.corrupt``) among good ones; a first `meltano run`
loads them into PostgreSQL, each by its documented policy:

* no ``id`` / ``null`` id: skipped, counted, one warning per reason and stream;
* a numeric id served as a string: loaded, as an integer;
* NUL characters in nested strings: stripped (JSONB cannot store ``\\u0000``), nothing else changes;
* a 1.5 MB record: loaded as is;
* an unreadable change timestamp: loaded with ``modifiedDate`` null, counted and warned; it does
  not move the bookmark.

A second run gets a 200 with an HTML page for every request: retried as transient, then the run
fails naming the request, and nothing changes (tables, state). Every byte both runs printed, the
files Meltano keeps (run folder with the catalog, system database with the state), ``meltano
state get`` and the staging tables are searched for the API key.
"""

from __future__ import annotations

import random
import secrets

import pytest

from cc_dev.warehouse import read_rows, table_counts
from tap_clinical_conductor.catalogue import BY_NAME
from tap_clinical_conductor.records import strip_nul

from .conftest import API_KEY
from .harness import DAILY_STATE_ID, Pipeline, secret_hits

STREAMS = ("studies", "patients", "subjects", "study_notes")
BROKEN = {
    "patients": {
        "no_id": 2,
        "null_id": 2,
        "string_id": 3,
        "nul_chars": 3,
        "huge": 1,
        "bad_timestamp": 2,
    },
    "study_notes": {"nul_chars": 3, "string_id": 2},
    "subjects": {"no_id": 1, "nul_chars": 2},
}


@pytest.fixture(scope="module")
def runs(installed, warehouse_server, tmp_path_factory):
    from cc_sandbox import Sandbox

    folder = tmp_path_factory.mktemp("chaos-bad-data")
    schema = f"chaos_{secrets.token_hex(4)}"
    rng = random.Random(99)
    with Sandbox(scale=0.001, profile="plan", api_key=API_KEY, seed=11) as sb:
        broken: dict[str, dict[str, list[int]]] = {}
        for stream, kinds in BROKEN.items():
            rows = sb.tenant.table(stream).rows
            picked = rng.sample([r.rid for r in rows], sum(kinds.values()))
            broken[stream] = {}
            for kind, n in kinds.items():
                ids, picked = picked[:n], picked[n:]
                broken[stream][kind] = sb.corrupt(stream, kind, ids=ids)
        make = lambda **settings: Pipeline(  # noqa: E731
            folder / "project",
            sb,
            warehouse_server,
            schema,
            api_key=API_KEY,
            streams=STREAMS,
            log_dir=folder,
            tap_settings=settings,
        )
        good = make().run()
        pipe = make(max_retries=1)
        state_before = pipe.saved_state()
        with warehouse_server.connect() as conn:
            counts_before = table_counts(conn, schema)
        sb.configure(faults={"html": 1.0})
        sb.reset_stats()
        bad = pipe.run()
        html_faults = sb.stats()["faults"].get("html", 0)
        sb.configure(faults={})
        state_get = pipe.command("state", "get", DAILY_STATE_ID)
        yield {
            "sb": sb,
            "pipe": pipe,
            "good": good,
            "bad": bad,
            "broken": broken,
            "state_before": state_before,
            "counts_before": counts_before,
            "html_faults": html_faults,
            "state_get": state_get,
        }
    with warehouse_server.connect() as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def rows_by_id(runs, stream) -> dict:
    pipe = runs["pipe"]
    with pipe.pg.connect() as conn:
        return {r["id"]: r for r in read_rows(conn, pipe.schema, BY_NAME[stream])}


def test_bad_records_load_by_policy_and_tables_equal_the_tenant(runs):
    good = runs["good"]
    assert good.ok, good.tail()
    result = runs["pipe"].check(runs["state_before"])
    assert result.ok, result.describe()  # truth as the tap keys it: skipped ones excluded
    broken = runs["broken"]["patients"]
    loaded = rows_by_id(runs, "patients")
    for rid in broken["no_id"] + broken["null_id"]:
        assert rid not in loaded
    for rid in broken["string_id"]:
        assert isinstance(loaded[rid]["id"], int) and loaded[rid]["data"]["id"] == str(rid)
    with runs["pipe"].pg.connect() as conn:
        schema = runs["pipe"].schema
        nul = conn.execute(
            f'SELECT count(*) FROM "{schema}".dim_patients_staging WHERE data::text LIKE %s',
            ("%\\u0000%",),
        ).fetchone()[0]
        null_changes = [
            r[0]
            for r in conn.execute(
                f'SELECT id FROM "{schema}".dim_patients_staging WHERE "modifiedDate" IS NULL'
            )
        ]
        huge = conn.execute(
            f'SELECT octet_length(data::text) FROM "{schema}".dim_patients_staging WHERE id = %s',
            (broken["huge"][0],),
        ).fetchone()[0]
    assert nul == 0
    truth = {r["data"].get("id"): r["data"] for r in runs["sb"].truth("patients")}
    for rid in broken["nul_chars"]:
        assert loaded[rid]["data"] == strip_nul(truth[rid]) != truth[rid]
    assert sorted(null_changes) == sorted(broken["bad_timestamp"])
    assert huge > 1_500_000
    # Child streams: strings ids and NULs in nested previews too.
    notes = runs["sb"].truth("study_notes")
    assert sum(1 for r in notes if isinstance(r["data"].get("id"), str)) == 2


def test_skips_and_unreadable_timestamps_are_counted_and_warned_once(runs):
    out = runs["good"].output
    assert out.count("patients: 4 skipped, record has no 'id'") == 1, out[-3000:]
    assert out.count("patients: 2 unreadable modifiedDate (loaded with modifiedDate null)") == 1
    assert out.count("subjects: 1 skipped, record has no 'id'") == 1


def test_unreadable_timestamp_does_not_move_the_bookmark(runs):
    state = runs["state_before"]
    bookmark = state["singer_state"]["bookmarks"]["patients"]["replication_key_value"]
    assert bookmark.startswith("20")  # a real instant, not the unreadable text
    assert not runs["pipe"].check_bookmarks(state)


def test_html_with_status_200_is_retried_then_fails_and_changes_nothing(runs):
    bad = runs["bad"]
    assert bad.returncode != 0
    assert "an HTML page instead of JSON" in bad.output
    assert "failed after 2 attempts" in bad.output and "/api/v1/" in bad.output, bad.tail()
    assert runs["html_faults"] >= 2
    pipe = runs["pipe"]
    assert pipe.saved_state() == runs["state_before"]
    with pipe.pg.connect() as conn:
        assert table_counts(conn, pipe.schema) == runs["counts_before"]


def test_api_key_never_appears_in_logs_errors_state_catalog_or_tables(runs):
    pipe = runs["pipe"]
    texts = {
        "succeeding run output": runs["good"].output,
        "failing run output": runs["bad"].output,
        "meltano state get": runs["state_get"].output,
        "system database": (pipe.project.root / "meltano.db").read_bytes().decode(errors="replace"),
        **pipe.project.texts(),
    }
    assert any(name.endswith("tap.properties.json") for name in texts), sorted(texts)
    assert runs["state_get"].returncode == 0 and "bookmarks" in runs["state_get"].output
    assert not secret_hits(API_KEY, texts)
    with pipe.pg.connect() as conn:
        for table in table_counts(conn, pipe.schema):
            hits = conn.execute(
                # The whole row as text: every column, not only the API object.
                f'SELECT count(*) FROM "{pipe.schema}"."{table}" AS t WHERE t::text LIKE %s',
                (f"%{API_KEY}%",),
            ).fetchone()[0]
            assert hits == 0, table
    # The scan can find the key: it really was this tenant's key.
    assert runs["sb"].app.config.api_key == API_KEY
    assert secret_hits(API_KEY, {"probe": f"x{API_KEY}x"}) == ["probe"]
