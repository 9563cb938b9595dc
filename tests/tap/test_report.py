"""A run's log reads like a report, and what a run learnt about the tenant is kept for the next.

Pure logic (the report's lines, warnings once, the format negotiation) is tested in process; the
log and the state are tested on the tap's real process against the fake tenant.
"""

from __future__ import annotations

import logging
import re

import pytest

from tap_clinical_conductor.catalogue import BY_NAME
from tap_clinical_conductor.errors import BadRequest, RequestFailed
from tap_clinical_conductor.filters import FilterFormats
from tap_clinical_conductor.report import RunReport
from tap_clinical_conductor.timestamps import LITERAL_BY_NAME, LITERAL_FORMATS

from .conftest import tap_config
from .tapio import catalog_selecting, run_tap

#: singer-sdk's routine lines, which the report moves to DEBUG.
SDK_NOISE = re.compile(
    r"Skipping deselected stream|Beginning sync of|Starting incremental sync of|"
    r"assumed to be unsorted|METRIC|Skipping parse of env var"
)
STUDIES_BOOKMARK = {
    "bookmarks": {
        "studies": {
            "replication_key": "modifiedDate",
            "replication_key_value": "2025-01-01T00:00:00.000000+00:00",
        }
    }
}


def messages(stderr: str) -> list[str]:
    """The text of each log line (after the SDK console format's last ``| ``)."""
    return [line.split("| ", 3)[-1] for line in stderr.splitlines() if "| " in line]


# -- the report's lines (pure logic) ---------------------------------------------------------


def test_stream_lines_and_summary_carry_the_figures_and_extras(caplog):
    logger = logging.getLogger("test-report")
    requests = iter([10, 17, 17, 17])
    report = RunReport(logger, lambda: next(requests))
    with caplog.at_level(logging.INFO, logger="test-report"):
        report.stream_started("studies", incremental=True, bookmark="2025-01-01T00:00:00")
        report.stream_finished(
            "studies",
            records=1234,
            seconds=2.5,
            bookmark="2025-02-01T00:00:00",
            extra={"parents read": "12 changed, 88 swept"},
        )
        lines = report.summary(
            {"requests": 7, "retries": 1}, extra={"studies": {"staleness bound": "3 days"}}
        )
    said = [r.getMessage() for r in caplog.records]
    assert said[0] == "studies: started, incremental from 2025-01-01T00:00:00"
    assert said[1] == (
        "studies: finished, 1,234 records, 7 requests, 2.5 s, bookmark 2025-02-01T00:00:00, "
        "parents read 12 changed, 88 swept"
    )
    assert lines[0].startswith("Run summary: 1 streams (1 with records), 1,234 records, 7 requests")
    assert "1 retries" in lines[0]
    assert "  studies: parents read 12 changed, 88 swept, staleness bound 3 days" in lines
    assert said[2:] == lines


def test_a_warning_is_said_once_and_its_repeats_counted(caplog):
    logger = logging.getLogger("test-report-once")
    report = RunReport(logger, lambda: 0)
    report.watch(logger)
    with caplog.at_level(logging.INFO, logger="test-report-once"):
        for visit in range(5):
            logger.warning("/visits/%d: the server ignores $skip", visit)
        logger.warning("another warning")
        lines = report.summary({})
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings == ["/visits/0: the server ignores $skip", "another warning"]
    assert any("repeated 4 more times" in line and "ignores $skip" in line for line in lines)


# -- the $filter format, remembered (pure logic) ---------------------------------------------


def test_a_remembered_format_is_tried_first_and_kept():
    formats = FilterFormats("auto", logging.getLogger("t"), remembered="datetimeoffset_utc")
    assert formats.current() is LITERAL_BY_NAME["datetimeoffset_utc"]
    assert not formats.confirmed() and formats.to_keep() is None
    formats.accepted(LITERAL_BY_NAME["datetimeoffset_utc"])
    assert formats.to_keep() == "datetimeoffset_utc"


def test_a_remembered_format_that_is_refused_falls_back_to_probing_every_other():
    formats = FilterFormats("auto", logging.getLogger("t"), remembered="datetimeoffset_utc")
    tried = [formats.current()]
    while True:
        try:
            tried.append(formats.refused(tried[-1], BadRequest("HTTP 400")))
        except RequestFailed:
            break
    assert tried[0] is LITERAL_BY_NAME["datetimeoffset_utc"]
    # Every other candidate, in the usual order, each once.
    assert tried[1:] == [f for f in LITERAL_FORMATS if f.name != "datetimeoffset_utc"]


def test_a_configured_format_is_not_kept_and_an_unknown_remembered_one_is_ignored():
    configured = FilterFormats("iso_local", logging.getLogger("t"), remembered="iso_utc")
    assert configured.current() is LITERAL_BY_NAME["iso_local"] and configured.to_keep() is None
    unknown = FilterFormats("auto", logging.getLogger("t"), remembered="no_such_format")
    assert unknown.current() is LITERAL_FORMATS[0]


def test_a_refusal_another_thread_already_answered_is_said_once(caplog):
    formats = FilterFormats("auto", logging.getLogger("t-once"))
    first = formats.current()
    with caplog.at_level(logging.INFO, logger="t-once"):
        moved = formats.refused(first, BadRequest("HTTP 400"))
        # A second worker's request, sent with the old format, is refused too.
        assert formats.refused(first, BadRequest("HTTP 400")) is moved
    assert len([r for r in caplog.records if "refused" in r.getMessage()]) == 1


# -- the tap's process: log and state ----------------------------------------------------------


def test_the_log_is_one_start_and_end_line_per_stream_and_a_summary(sandbox):
    sb = sandbox(profile="plan")
    config = tap_config(sb)
    run = run_tap(config)
    assert run.returncode == 0, run.stderr[-3000:]
    said = messages(run.stderr)
    streams = set(run.records)
    assert streams
    for stream in streams:
        started = [m for m in said if m.startswith(f"{stream}: started, ")]
        finished = [m for m in said if m.startswith(f"{stream}: finished, ")]
        assert len(started) == len(finished) == 1, (stream, started, finished)
        assert f"{len(run.records[stream]):,} records" in finished[0], finished[0]
    assert not [m for m in said if SDK_NOISE.search(m)]
    summary = [m for m in said if m.startswith("Run summary:")]
    total = sum(len(r) for r in run.records.values())
    assert len(summary) == 1 and f"{total:,} records" in summary[0], summary
    assert said.index(summary[0]) > max(i for i, m in enumerate(said) if ": finished, " in m)
    # No warning is said twice.
    warnings = [line for line in run.stderr.splitlines() if "| WARNING" in line]
    texts = [line.split("| ", 3)[-1] for line in warnings]
    assert len(texts) == len(set(texts)), texts


def test_log_sdk_details_brings_the_sdk_lines_back(sandbox, tmp_path):
    sb = sandbox()
    config = tap_config(sb, log_sdk_details=True)
    run = run_tap(config, catalog=catalog_selecting(config, {"sites"}, tmp_path))
    assert run.returncode == 0, run.stderr[-3000:]
    said = messages(run.stderr)
    assert any(m.startswith("Skipping deselected stream") for m in said)
    assert any(m.startswith("Beginning sync of 'sites'") for m in said)
    assert any("METRIC" in m for m in said)


def test_the_accepted_filter_format_is_remembered_by_the_next_run(sandbox, tmp_path):
    sb = sandbox(profile="plan")
    config = tap_config(sb)
    catalog = catalog_selecting(config, {"studies"}, tmp_path)
    first = run_tap(config, catalog=catalog, state=STUDIES_BOOKMARK)
    assert first.returncode == 0, first.stderr[-3000:]
    assert any("refused (HTTP 400)" in m for m in messages(first.stderr))
    kept = first.state["tenant"]["filter_datetime_format"]
    assert kept == "datetimeoffset_utc"
    second = run_tap(config, catalog=catalog, state=first.state)
    assert second.returncode == 0, second.stderr[-3000:]
    said = messages(second.stderr)
    assert not [m for m in said if "refused" in m], said
    assert f"$filter datetime literal format: {kept} (remembered from an earlier run)" in said
    assert second.state["tenant"]["filter_datetime_format"] == kept
    assert second.state["bookmarks"]["studies"] == first.state["bookmarks"]["studies"]


def test_a_remembered_format_the_server_now_refuses_is_probed_past(sandbox, tmp_path):
    sb = sandbox(profile="plan", filter_datetime_format="naive")
    config = tap_config(sb)
    catalog = catalog_selecting(config, {"studies"}, tmp_path)
    state = {**STUDIES_BOOKMARK, "tenant": {"filter_datetime_format": "datetimeoffset_utc"}}
    run = run_tap(config, catalog=catalog, state=state)
    assert run.returncode == 0, run.stderr[-3000:]
    said = messages(run.stderr)
    assert any(
        "datetimeoffset_utc (remembered from an earlier run) refused (HTTP 400)" in m for m in said
    ), said
    now = run.state["tenant"]["filter_datetime_format"]
    assert now != "datetimeoffset_utc"
    # The read is the same as with no remembered format.
    fresh = run_tap(config, catalog=catalog, state=STUDIES_BOOKMARK)
    assert fresh.state["tenant"]["filter_datetime_format"] == now
    assert sorted(r["id"] for r in run.records["studies"]) == sorted(
        r["id"] for r in fresh.records["studies"]
    )


@pytest.mark.parametrize("stream", ["patient_visit_elements"])
def test_a_plain_list_per_parent_is_one_request_and_proven_complete(sandbox, tmp_path, stream):
    """A non-OData list answers whole: no paging options, no confirmation request, no warning."""
    assert not BY_NAME[stream].odata
    sb = sandbox(profile="plan")
    config = tap_config(sb)
    run = run_tap(config, catalog=catalog_selecting(config, {stream}, tmp_path))
    assert run.returncode == 0, run.stderr[-3000:]
    assert stream in run.complete_streams
    assert not [line for line in run.stderr.splitlines() if "| WARNING" in line]
    (finished,) = [m for m in messages(run.stderr) if m.startswith(f"{stream}: finished")]
    requests = int(re.search(r"([\d,]+) requests", finished)[1].replace(",", ""))
    parents = len(sb.truth(BY_NAME[stream].parent.name))
    # One per parent, and the parents' listing (a few pages at most).
    assert parents <= requests <= parents + 5, (requests, parents)
