"""In process (``execute_in_process`` of the code location's jobs): two tenants, one warehouse.

Tenant site-a is loaded, then site-b's ``daily`` job loads it and builds the marts. Each tenant has
its own Meltano state id with its own bookmarks, the staging tables and the marts hold both
tenants' rows exactly, and every staging materialisation is recorded on its tenant's partition.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from cc_sandbox import Sandbox


@pytest.fixture(scope="module")
def tenants(monkeypatch_module):
    keys = {"CC_TEST_KEY_A": "key-a-5e1f", "CC_TEST_KEY_B": "key-b-77c2"}
    for k, v in keys.items():
        monkeypatch_module.setenv(k, v)
    with (
        Sandbox(scale=0.001, profile="plan", api_key=keys["CC_TEST_KEY_A"], seed=7) as a,
        Sandbox(scale=0.001, profile="plan", api_key=keys["CC_TEST_KEY_B"], seed=8) as b,
    ):
        yield {"site-a": a, "site-b": b}


@pytest.fixture(scope="module")
def loaded(tenants, tenant_env, settings_for, tenant_entry):
    from dagster import AssetKey, DagsterInstance

    from orchestration.definitions import build_definitions

    settings = settings_for(
        [
            tenant_entry("site-a", tenants["site-a"], "CC_TEST_KEY_A"),
            tenant_entry("site-b", tenants["site-b"], "CC_TEST_KEY_B"),
        ],
        retries={"max_retries": 0, "delay_seconds": 1},
    )
    defs = build_definitions(settings)
    daily = defs.resolve_job_def("daily")
    instance = DagsterInstance.ephemeral()
    staging = [k for k in defs.resolve_all_asset_keys() if k.path[0] == "staging"]
    first = daily.execute_in_process(
        partition_key="site-a", instance=instance, asset_selection=staging
    )
    second = daily.execute_in_process(partition_key="site-b", instance=instance)
    return {
        "settings": settings,
        "instance": instance,
        "runs": (first, second),
        "studies_key": AssetKey(["staging", "dim_studies_staging"]),
    }


def meltano_state(state_id: str, env: dict[str, str]) -> dict:
    meltano = Path(sys.executable).with_name("meltano")
    out = subprocess.run(
        [str(meltano), "state", "get", state_id],
        env={**__import__("os").environ, **env},
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).resolve().parents[2],
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_both_runs_succeed(loaded):
    for run in loaded["runs"]:
        assert run.success


def test_each_tenant_has_its_own_state(loaded, tenant_env):
    from orchestration.meltano_step import state_id

    settings = loaded["settings"]
    states = {
        t.instance_id: meltano_state(state_id(settings, t, "daily"), tenant_env)
        for t in settings.tenants
    }
    assert set(states) == {"site-a", "site-b"}
    for instance_id, state in states.items():
        bookmarks = state["singer_state"]["bookmarks"]
        assert {"studies", "sites", "staff"} <= set(bookmarks), (instance_id, bookmarks)
    # The two tenants' data differ (seeds 7 and 8), so their bookmarks do too.
    assert states["site-a"] != states["site-b"]


def test_staging_and_marts_hold_both_tenants(loaded, tenants, warehouse_server, schema):
    with warehouse_server.connect() as conn:
        for table, mart, stream in (
            ("dim_studies_staging", "dim_studies", "studies"),
            ("dim_sites_staging", "dim_sites", "sites"),
            ("dim_staff_staging", "dim_staff", "staff"),
        ):
            staged = dict(
                conn.execute(
                    f'SELECT instance_id, count(*) FROM "{schema}"."{table}" '
                    "WHERE _sdc_deleted_at IS NULL GROUP BY 1"
                ).fetchall()
            )
            marts = dict(
                conn.execute(
                    f'SELECT instance_id, count(*) FROM "{schema}_analytics"."{mart}" GROUP BY 1'
                ).fetchall()
            )
            for instance_id, sb in tenants.items():
                truth = len(sb.truth(stream))
                assert truth > 0
                assert staged.get(instance_id) == truth, (table, instance_id, staged)
                assert marts.get(instance_id) == truth, (mart, instance_id, marts)


def test_materialisations_are_per_tenant_partition(loaded):
    from dagster import AssetCheckKey

    instance = loaded["instance"]
    key = loaded["studies_key"]
    records = instance.fetch_materializations(key, limit=10).records
    by_partition = {r.partition_key: r.asset_materialization.metadata for r in records}
    assert set(by_partition) == {"site-a", "site-b"}
    for partition, metadata in by_partition.items():
        assert metadata["state_id"].value.endswith(f":{partition}")
        assert metadata["tenant_rows"].value > 0
    check = instance.event_log_storage.get_latest_asset_check_execution_by_key(
        [AssetCheckKey(key, "row_count_drop")]
    )[AssetCheckKey(key, "row_count_drop")]
    assert check.status.value == "SUCCEEDED"


def test_marts_lineage_reaches_the_staging_tables(loaded):
    from dagster import AssetKey

    from orchestration.definitions import build_definitions

    defs = build_definitions(loaded["settings"])
    graph = defs.resolve_asset_graph()
    parents = graph.get(AssetKey(["stg_cc__studies"])).parent_keys
    assert AssetKey(["staging", "dim_studies_staging"]) in parents
    snapshot = graph.get(AssetKey(["snap_studies"]))
    assert snapshot.parent_keys
