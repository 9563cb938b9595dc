"""Two tenants in one warehouse: deletes of one tenant never touch the other.

Two fake tenants load through `meltano run tap-clinical-conductor target-postgres` into the same
staging tables (each with its own instance_id and state id), then dbt builds the marts. Each
tenant deletes rows: staff (read whole every run in the `spec` profile), a study note (a
per-study stream read whole), and a study (an incremental stream: its deletion can only be seen
by a complete read, here a full reload of tenant B after `meltano state clear`). After every
step each tenant's marts hold exactly that tenant's live rows: no row of either tenant is lost,
and each deletion reaches the marts as soon as a complete read of its table or parent saw it.

Before the fix, target-postgres' table-wide ACTIVATE_VERSION made tenant B's run retire every
staff row of tenant A.
"""

from __future__ import annotations

import pytest

from cc_dev.meltano_runner import Meltano

STREAMS = ("staff", "studies", "study_notes")
TENANTS = ("site-a", "site-b")
#: mart, key column, stream
MARTS = (
    ("dim_staff", "staff_id", "staff"),
    ("dim_studies", "study_id", "studies"),
    ("fact_study_notes", "study_note_id", "study_notes"),
)


@pytest.fixture(scope="module")
def tenants(api_key):
    from cc_sandbox import Sandbox

    with (
        Sandbox(scale=0.001, profile="spec", api_key=api_key, seed=11) as a,
        Sandbox(scale=0.001, profile="spec", api_key=api_key, seed=12) as b,
    ):
        yield {"site-a": a, "site-b": b}


@pytest.fixture(scope="module")
def runners(
    tenants, api_key, warehouse_server, e2e_schema, e2e_dir, make_runner
) -> dict[str, Meltano]:
    out = {
        name: make_runner(
            sb.base_url,
            api_key,
            warehouse_server,
            e2e_schema,
            e2e_dir,
            f"two-tenants-{name}",
            TAP_CLINICAL_CONDUCTOR_INSTANCE_ID=name,
            TAP_CLINICAL_CONDUCTOR__SELECT='["' + '.*", "'.join(STREAMS) + '.*"]',
            MELTANO_RUN_STATE_ID_SUFFIX=name,
        )
        for name, sb in tenants.items()
    }
    installed = out["site-a"].install()
    assert installed.returncode == 0, installed.tail()
    return out


def load(runner: Meltano) -> None:
    result = runner("run", "tap-clinical-conductor", "target-postgres")
    assert result.returncode == 0, result.tail()


def build(runner: Meltano) -> None:
    result = runner("run", "dbt-postgres:build")
    assert result.returncode == 0, result.tail()


def truth_ids(sb, stream: str) -> set[int]:
    return {row["data"]["id"] for row in sb.truth(stream)}


def mart_ids(pg, dbt_schema: str, mart: str, key: str, instance: str) -> set[int]:
    with pg.connect() as conn:
        rows = conn.execute(
            f"select {key} from {dbt_schema}.{mart} where instance_id = %s", (instance,)
        ).fetchall()
    return {r[0] for r in rows}


def differences(tenants, pg, dbt_schema: str, *, stale: dict | None = None) -> list[str]:
    """Each tenant's marts against its truth; ``stale``: (tenant, stream) -> ids allowed extra."""
    problems = []
    for name, sb in tenants.items():
        for mart, key, stream in MARTS:
            want = truth_ids(sb, stream)
            got = mart_ids(pg, dbt_schema, mart, key, name)
            allowed = (stale or {}).get((name, stream), set())
            if want - got:
                problems.append(f"{name} {mart}: lost {sorted(want - got)[:5]}")
            if got - want - allowed:
                problems.append(f"{name} {mart}: deleted rows kept {sorted(got - want)[:5]}")
    return problems


def test_deletes_stay_in_their_tenant_and_reach_the_marts(
    tenants, runners, warehouse_server, dbt_schema
):
    a, b = tenants["site-a"], tenants["site-b"]
    for name in TENANTS:
        load(runners[name])
    build(runners["site-a"])
    assert not differences(tenants, warehouse_server, dbt_schema)
    assert truth_ids(a, "staff") and truth_ids(b, "staff")

    # A day of deletes in each tenant.
    a.advance_clock(seconds=3600)
    b.advance_clock(seconds=3600)
    gone_staff_a = a.delete("staff", n=1)
    gone_staff_b = b.delete("staff", n=2)
    gone_note_a = a.delete("study_notes", n=1)
    gone_study_b = b.delete("studies", n=1)
    assert gone_staff_a and gone_staff_b and gone_note_a and gone_study_b
    for name in TENANTS:
        load(runners[name])
    build(runners["site-b"])
    # The deleted study is only seen by a complete read: it stays until B's full reload. Its
    # notes went with it (their per-study read no longer lists the study).
    stale = {("site-b", "studies"): set(gone_study_b)}
    assert not differences(tenants, warehouse_server, dbt_schema, stale=stale)
    staff_a = mart_ids(warehouse_server, dbt_schema, "dim_staff", "staff_id", "site-a")
    assert not set(gone_staff_a) & staff_a

    # A full reload of tenant B alone: `meltano state clear`, then a run.
    state_id = "dev:tap-clinical-conductor-to-target-postgres:site-b"
    cleared = runners["site-b"]("state", "clear", "--force", state_id)
    assert cleared.returncode == 0, cleared.tail()
    load(runners["site-b"])
    build(runners["site-b"])
    assert not differences(tenants, warehouse_server, dbt_schema)
