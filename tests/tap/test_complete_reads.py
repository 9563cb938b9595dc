"""A read counts as complete only when proven; otherwise it deletes nothing and moves no bookmark.

Each case is a way a read can return normally and still miss rows (issue: "A read that is not
proven complete never deletes and never advances"), reproduced with the fake tenant. "Deletes"
are the tap's ``cc_complete_reads`` records (``TapRun.complete``), which the dbt staging layer
turns into deletions; ``Warehouse`` applies them the same way.
"""

from __future__ import annotations

from collections import Counter

import pytest

from tap_clinical_conductor.errors import EndpointUnavailable
from tap_clinical_conductor.responses import Page

from .conftest import tap_config
from .tapio import Warehouse, catalog_selecting, run_tap, truth_by_key


def bookmark(run, stream: str) -> str | None:
    return run.state.get("bookmarks", {}).get(stream, {}).get("replication_key_value")


@pytest.mark.parametrize(("broken", "selected"), [("sites", "sites"), ("studies", "study_notes")])
def test_http_200_with_an_error_object_fails_the_read(sandbox, tmp_path, broken, selected):
    sb = sandbox(profile="spec", overrides={broken: {"error_body": "An error has occurred."}})
    config = tap_config(sb, max_retries=1)
    run = run_tap(config, catalog=catalog_selecting(config, {selected}, tmp_path))
    assert run.returncode != 0
    assert "error object instead of records ('An error has occurred.')" in run.stderr
    assert not run.complete  # nothing is retired: neither the table nor any per-study table


def test_an_empty_answer_for_a_table_with_rows_deletes_nothing(sandbox, tmp_path):
    sb = sandbox(profile="spec")
    config = tap_config(sb)
    catalog = catalog_selecting(config, {"staff"}, tmp_path)
    warehouse = Warehouse()
    first = run_tap(config, catalog=catalog)
    warehouse.apply(first)
    assert first.complete_streams == {"staff"}
    sb.configure(overrides={"staff": {"empty": True}})
    second = run_tap(config, catalog=catalog)
    assert second.returncode == 0, second.stderr[-2000:]
    assert not second.complete
    warehouse.apply(second)
    assert not warehouse.diff(sb, "staff")


def test_a_repeated_page_is_not_the_end_of_the_data(sandbox, tmp_path):
    # A server that ignores $skip and the id filter: every page is the first one.
    sb = sandbox(
        profile="plan", overrides={"patients": {"ignores_skip": True, "ignores_filter": True}}
    )
    config = tap_config(sb, page_size=50)
    run = run_tap(config, catalog=catalog_selecting(config, {"patients"}, tmp_path))
    assert run.returncode == 0, run.stderr[-2000:]
    assert "not proven complete" in run.stderr
    assert not run.complete
    assert bookmark(run, "patients") is None  # no bookmark past rows that were never read


def test_skip_paging_with_a_row_deleted_between_pages_is_not_complete(sandbox, tmp_path):
    # Ignoring the id filter forces $skip paging; a row of the first page is deleted after it.
    sb = sandbox(profile="plan", overrides={"patients": {"ignores_filter": True}})
    config = tap_config(sb, page_size=50, lookback_minutes=0)
    catalog = catalog_selecting(config, {"patients"}, tmp_path)
    lowest = min(key[0] for key in truth_by_key(sb, "patients"))
    sb.schedule(after_requests=3, action="delete", endpoint="patients", ids=[lowest])
    warehouse = Warehouse()
    first = run_tap(config, catalog=catalog)
    assert first.returncode == 0, first.stderr[-2000:]
    assert not first.complete
    assert bookmark(first, "patients") is None
    warehouse.apply(first)
    # The row that moved into the deleted row's place arrives with the next run.
    second = run_tap(config, catalog=catalog, state=first.state)
    assert second.returncode == 0, second.stderr[-2000:]
    warehouse.apply(second)
    assert second.complete_streams == {"patients"}
    assert not warehouse.diff(sb, "patients")


@pytest.mark.parametrize(("stream", "cap"), [("patients", 20), ("study_notes", 1)])
def test_a_server_capping_top_without_a_next_link_truncates_nothing(
    sandbox, tmp_path, stream, cap
):
    # Capped on this endpoint only: other endpoints' full pages prove nothing about it.
    sb = sandbox(profile="plan", overrides={stream: {"max_top": cap}})
    config = tap_config(sb, page_size=50)
    run = run_tap(config, catalog=catalog_selecting(config, {"studies", stream}, tmp_path))
    assert run.returncode == 0, run.stderr[-2000:]
    warehouse = Warehouse()
    warehouse.apply(run)
    assert not warehouse.diff(sb, stream)
    assert f"at most {cap} rows per page" in run.stderr


def test_parent_ids_sent_as_numeric_strings_keep_their_children(sandbox, tmp_path):
    sb = sandbox(profile="spec")
    sb.corrupt("studies", "string_id", n=5)
    config = tap_config(sb)
    run = run_tap(config, catalog=catalog_selecting(config, {"study_notes"}, tmp_path))
    assert run.returncode == 0, run.stderr[-2000:]
    warehouse = Warehouse()
    warehouse.apply(run)
    assert not warehouse.diff(sb, "study_notes")
    assert run.complete_streams == {"study_notes"}


def test_deleted_first_parents_do_not_make_the_endpoint_look_missing(sandbox, tmp_path):
    sb = sandbox(profile="spec")
    config = tap_config(sb, max_parallel_requests=1)
    catalog = catalog_selecting(config, {"study_notes"}, tmp_path)
    lowest = sorted(key[0] for key in truth_by_key(sb, "studies"))[:3]
    # Right after the studies listing (one page, and the request that confirms its end).
    sb.schedule(after_requests=2, action="delete", endpoint="studies", ids=lowest)
    run = run_tap(config, catalog=catalog)
    assert run.returncode == 0, run.stderr[-2000:]
    assert "Skipping stream study_notes" not in run.stderr
    warehouse = Warehouse()
    warehouse.apply(run)
    assert not warehouse.diff(sb, "study_notes")
    assert run.complete_streams == {"study_notes"}  # the gone studies' notes are gone too


def test_a_child_endpoint_is_missing_only_when_its_parent_exists(sandbox, tmp_path):
    sb = sandbox(profile="spec")
    config = tap_config(sb)
    run = run_tap(config, catalog=catalog_selecting(config, {"screenings"}, tmp_path))
    assert run.returncode == 0, run.stderr[-2000:]
    assert "Skipping stream screenings" in run.stderr
    # The first parent's 404, then its own collection asked whether it still exists.
    assert sb.stats()["by_endpoint"]["screenings"] == {"404": 1}


class _SecondPage404:
    """One study with two pages of notes; the second page answers 404."""

    def __init__(self) -> None:
        self.notes = 0
        self.counters: Counter[str] = Counter()

    def get_page(self, path: str, params: dict | None = None, *, single: bool = False) -> Page:
        if path == "/api/v1/studies/odata":
            after = "id gt" in (params or {}).get("$filter", "")
            return Page([] if after else [{"id": 1}])
        self.notes += 1
        if self.notes == 1:
            return Page([{"id": 1}, {"id": 2}])
        raise EndpointUnavailable("HTTP 404", 404, path)

    def server_time(self, *, first: bool = False) -> None:
        return None  # no Date header: selection falls back to this machine's clock


def test_a_404_after_the_first_page_of_a_partition_fails_the_run():
    from tap_clinical_conductor.errors import RequestFailed
    from tap_clinical_conductor.tap import TapClinicalConductor

    tap = TapClinicalConductor(
        config={
            "api_url": "https://acme.clinicalconductor.com/CCSWeb",
            "api_key": "k",
            "page_size": 2,
        }
    )
    tap.tenant.client = _SecondPage404()  # type: ignore[assignment]
    with pytest.raises(RequestFailed, match="HTTP 404 on page 2"):
        list(tap.streams["study_notes"].get_records(None))


def test_a_wrong_api_url_path_fails_the_run_and_says_why(sandbox, tmp_path):
    sb = sandbox(profile="spec")
    config = tap_config(sb)
    catalog = catalog_selecting(config, {"staff", "studies", "study_notes"}, tmp_path)
    run = run_tap({**config, "api_url": sb.base_url + "/CCSWeb/api"}, catalog=catalog)
    assert run.returncode != 0
    assert "api_url does not reach a Clinical Conductor API" in run.stderr
    assert not run.complete and not run.records


def test_a_filter_literal_read_in_another_zone_is_caught_on_a_known_record(sandbox, tmp_path):
    # The server takes the tenant-local literal but reads it in another zone: a 13-14 hour shift.
    sb = sandbox(profile="spec", overrides={"studies": {"literal_tz": "Asia/Tokyo"}})
    config = tap_config(sb)
    catalog = catalog_selecting(config, {"studies"}, tmp_path)
    first = run_tap(config, catalog=catalog)
    assert first.returncode == 0, first.stderr[-2000:]
    second = run_tap(config, catalog=catalog, state=first.state)
    assert second.returncode != 0
    assert "reads the literal in another time zone" in second.stderr
