"""Whole-page writing produces exactly the messages of the per-record path.

The tap writes a page of records as preformatted lines when nothing is mapped (see
``CCStream.choose_emission``). The per-record path stays for stream maps, dry runs and records the
strict page decoder refuses; both must write the same records, the same bookmark and the same
skip counts.
"""

from __future__ import annotations

import datetime as dt
import io
import json
from collections import Counter
from contextlib import redirect_stdout

import msgspec
import pytest

from tap_clinical_conductor.catalogue import BY_NAME, CATALOGUE
from tap_clinical_conductor.output import LineWriter
from tap_clinical_conductor.records import BadRecord, PageEncoder, build_record, dig
from tap_clinical_conductor.responses import parse_body
from tap_clinical_conductor.timestamps import TimestampError, normalise, zone

from .conftest import tap_config
from .tapio import catalog_selecting, run_tap

NY = zone("America/New_York")
EXTRACTED = dt.datetime(2026, 11, 29, 12, 0, 0, 123456, tzinfo=dt.timezone.utc)


def per_record_lines(
    endpoint_name: str,
    body: bytes,
    *,
    parent_id: int | None,
    change_field: str | None,
    lower: str | None,
    version: int | None,
) -> tuple[bytes, int, str | None, Counter]:
    """What the per-record path writes for ``body``: built record by record, LineWriter lines."""
    endpoint = BY_NAME[endpoint_name]
    page = parse_body(body)
    writer = LineWriter()
    out = io.BytesIO()
    stdout = io.TextIOWrapper(out)
    skipped: Counter = Counter()
    best = None
    count = 0
    for item, raw in zip(page.items, page.raw or [], strict=True):
        pid = dig(item, endpoint.parent_ref) if endpoint.parent_ref else parent_id
        try:
            record = build_record(
                endpoint,
                item,
                instance_id="sandbox",
                parent_id=pid,
                change_field=change_field,
                tenant_tz=NY,
                data=raw,
            )
        except BadRecord:
            skipped["bad"] += 1
            continue
        changed = record["modifiedDate"]
        if changed is None and change_field and item.get(change_field) is not None:
            skipped[f"unreadable {change_field} (loaded with modifiedDate null)"] += 1
        if changed is not None and lower is not None and changed < lower:
            skipped["dropped, older than the bookmark (server ignored $filter)"] += 1
            continue
        if changed is not None and (best is None or changed > best):
            best = changed
        count += 1
        with redirect_stdout(stdout):  # the writer writes to sys.stdout.buffer, that is `out`
            writer.write_record(endpoint_name, record, version, EXTRACTED)
    stdout.detach()
    return out.getvalue(), count, best, skipped


def page_lines(
    endpoint_name: str,
    body: bytes,
    *,
    parent_id: int | None,
    change_field: str | None,
    lower: str | None,
    version: int | None,
) -> tuple[bytes, int, str | None, Counter] | None:
    page = parse_body(body)
    encoder = PageEncoder(
        BY_NAME[endpoint_name],
        stream=endpoint_name,
        instance_id="sandbox",
        change_field=change_field,
        tenant_tz=NY,
        lower=lower,
    )
    skipped: Counter = Counter()
    assert page.body is not None
    result = encoder.encode(
        page.body,
        page.items_key,
        page.raw,
        parent_id=parent_id,
        version=version,
        extracted_at=msgspec.json.encode(EXTRACTED),
        skipped=skipped,
    )
    if result is None:
        return None
    lines, count, best = result
    return lines, count, best, skipped


def visit(i: int, modified: object = "default") -> dict:
    record = {
        "id": 1000 + i,
        "name": f'Visit \u00e9\u201c{i}\u201d \\ "quoted"',
        "nested": {"list": [1, 2.5, None, True], "empty": {}},
        "study": {"id": 70 + i % 3, "name": "S"},
    }
    if modified == "default":
        record["modifiedDate"] = f"2025-0{1 + i % 9}-{10 + i % 19:02d}T{i % 24:02d}:15:00.{i}"
    elif modified is not None:
        record["modifiedDate"] = modified
    return record


CHANGES = [
    "2024-03-10T02:30:00",  # a local time that does not exist (spring forward)
    "2024-11-03T01:30:00",  # a local time that exists twice
    "2024-01-31T23:59:59.9999999",  # a 7-digit .NET fraction at a month end
    "2024-02-29T12:00:00Z",  # UTC, a leap day
    "2024-01-15T10:15:00+00:00",
    "2024-01-15T10:15:00.5+02:00",  # an offset the fast path leaves to the slow one
    "2024-01-15 10:15:00",  # a space instead of T
    "2024-01-15t10:15:00.25z",  # lower case
    None,
]


@pytest.mark.parametrize("shape", ["odata", "array", "pageresult", "pretty"])
@pytest.mark.parametrize("lower", [None, "2024-06-01T00:00:00.000000+00:00"])
@pytest.mark.parametrize("version", [None, 1764417600])
def test_page_lines_are_byte_equal_to_per_record_lines(shape, lower, version):
    records = [visit(i) for i in range(40)]
    records += [visit(100 + i, change) for i, change in enumerate(CHANGES)]
    if shape == "odata":
        body = json.dumps({"@odata.count": 49, "value": records}).encode()
    elif shape == "array":
        body = json.dumps(records, ensure_ascii=False).encode()
    elif shape == "pageresult":
        body = json.dumps({"Items": records, "NextPageLink": None, "Count": 49}).encode()
    else:
        body = json.dumps({"value": records}, indent=2).encode()
    options = {"parent_id": None, "change_field": "modifiedDate", "lower": lower}
    fast = page_lines("patient_visits", body, version=version, **options)
    slow = per_record_lines("patient_visits", body, version=version, **options)
    assert fast is not None
    assert fast == slow
    assert fast[1] > 0
    assert b"\n" not in fast[0].rstrip(b"\n").replace(b"}\n{", b"")  # one message per line


@pytest.mark.parametrize(
    ("stream", "parent_id"),
    [("subjects", None), ("study_notes", 71), ("staff", None), ("studies", None)],
)
def test_child_parent_reference_and_id_kinds_match(stream, parent_id):
    endpoint = BY_NAME[stream]
    records = [visit(i) for i in range(12)]
    if endpoint.id_field != "id":
        for r in records:
            r[endpoint.id_field] = str(r.pop("id")) + "-uid"
    body = json.dumps({"value": records}).encode()
    for change_field in (None, "modifiedDate"):
        options = {"parent_id": parent_id, "change_field": change_field, "lower": None}
        fast = page_lines(stream, body, version=7, **options)
        assert fast is not None
        assert fast == per_record_lines(stream, body, version=7, **options)
        lines = [json.loads(line) for line in fast[0].splitlines()]
        if endpoint.parent_key:
            expected = [parent_id or r["study"]["id"] for r in records]
            assert [m["record"][endpoint.parent_key] for m in lines] == expected


@pytest.mark.parametrize(
    "broken",
    [
        {"name": "no id"},
        {"id": None},
        {"id": "123"},
        {"id": True},
        {"id": 5, "modifiedDate": 20240101},
        {"id": 5, "modifiedDate": "31/12/2025 23:59:60 (local)"},  # loaded with null, counted
        {"id": 5, "modifiedDate": "2024-01-15T10:15"},  # ISO 8601 but not RFC 3339
        {"id": 6, "study": {"name": "no id"}},
        {"id": 7, "study": None},
    ],
)
def test_a_record_the_strict_decoder_refuses_sends_the_page_per_record(broken):
    body = json.dumps({"value": [visit(1), broken, visit(2)]}).encode()
    options = {"parent_id": None, "change_field": "modifiedDate", "lower": None}
    stream = "subjects" if "study" in broken else "patient_visits"
    assert page_lines(stream, body, version=None, **options) is None


def test_endpoints_with_synthetic_ids_always_take_the_per_record_path():
    synthetic = [e for e in CATALOGUE if e.id_from]
    assert synthetic, "the catalogue has no synthetic-id endpoint to check"
    for endpoint in synthetic:
        assert not PageEncoder.fits(endpoint)
        with pytest.raises(ValueError, match="slow path"):
            PageEncoder(
                endpoint,
                stream=endpoint.name,
                instance_id="x",
                change_field=None,
                tenant_tz=NY,
                lower=None,
            )


@pytest.mark.parametrize("zone_name", ["America/New_York", "Asia/Kolkata", "UTC", "Pacific/Apia"])
def test_fast_timestamp_path_agrees_with_datetime_arithmetic(zone_name):
    from tap_clinical_conductor.timestamps import parse_datetime, to_bookmark

    tz = zone(zone_name)
    start = dt.datetime(2011, 12, 28, 0, 0, 0)
    for hours in range(0, 24 * 800, 7):
        local = start + dt.timedelta(hours=hours, minutes=hours % 60, seconds=hours % 59)
        for text in (local.isoformat(), local.isoformat() + ".1234567", local.isoformat() + "Z"):
            assert normalise(text, tz) == to_bookmark(parse_datetime(text, tz)), text
    for impossible in ("2023-02-29T10:00:00", "2024-04-31T00:00:00Z", "2024-01-01T24:00:00"):
        with pytest.raises(TimestampError):
            normalise(impossible, tz)


@pytest.mark.parametrize("profile", ["spec", "plan"])
def test_stream_maps_and_page_writing_load_the_same_records_and_state(sandbox, tmp_path, profile):
    """A stream map sends every record through the SDK; the result must not change."""
    sb = sandbox(profile=profile)
    broken = {"string_id": 2, "no_id": 1, "bad_timestamp": 3, "nul_chars": 2}
    for stream in ("studies", "patients", "subjects"):
        for kind, n in broken.items():
            sb.corrupt(stream, kind, n=n)
    streams = {"studies", "patients", "subjects", "study_notes", "staff", "patient_visits"}
    # METRIC lines are singer-sdk's routine lines: DEBUG unless log_sdk_details.
    config = tap_config(sb, log_sdk_details=True)
    catalog = catalog_selecting(config, streams, tmp_path)
    paged = run_tap(config, catalog=catalog)
    # An identity map per stream: the SDK then writes every record itself.
    mapped_config = {**config, "stream_maps": {name: {} for name in streams}}
    mapped = run_tap(mapped_config, catalog=catalog)
    assert paged.returncode == 0, paged.stderr[-3000:]
    assert mapped.returncode == 0, mapped.stderr[-3000:]
    assert set(paged.records) == streams
    for stream in streams:
        assert paged.records[stream], stream
        assert canonical(paged.records[stream]) == canonical(mapped.records[stream]), stream
    assert paged.state == mapped.state
    assert paged.activated == mapped.activated
    # Both runs reported the same skipped records, and there were some.
    assert skip_lines(paged.stderr) == skip_lines(mapped.stderr)
    assert any("studies:" in line for line in skip_lines(paged.stderr))
    # The record_count metric still counts every record written in whole pages.
    counted = record_counts(paged.stderr)
    assert counted == {s: len(paged.records[s]) for s in streams}


def test_a_pretty_printed_tenant_still_gives_one_message_per_line(sandbox, tmp_path):
    sb = sandbox()
    sb.configure(pretty=True)
    config = tap_config(sb)
    catalog = catalog_selecting(config, {"studies", "sites"}, tmp_path)
    run = run_tap(config, catalog=catalog)  # run_tap parses every line as JSON
    assert run.returncode == 0, run.stderr[-3000:]
    assert len(run.records["studies"]) == len(sb.truth("studies"))
    assert len(run.records["sites"]) == len(sb.truth("sites"))


def canonical(records: list[dict]) -> list[str]:
    return sorted(json.dumps(r, sort_keys=True) for r in records)


def skip_lines(stderr: str) -> list[str]:
    return sorted(
        line.split("| ", 3)[-1]
        for line in stderr.splitlines()
        if "skipped" in line or "dropped" in line or "unreadable" in line
    )


def record_counts(stderr: str) -> dict[str, int]:
    counts: Counter = Counter()
    for line in stderr.splitlines():
        if '"metric":"record_count"' in line.replace(" ", ""):
            metric = json.loads(line.split("METRIC: ", 1)[1])
            counts[metric["tags"]["stream"]] += metric["value"]
    return dict(counts)
