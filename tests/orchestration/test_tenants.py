"""tenants.yml: the example loads, bad files say what is wrong, and no secret is ever echoed."""

from __future__ import annotations

import pytest

from orchestration import meltano_step
from orchestration.tenants import EXAMPLE_FILE, TenantsFileError, load, main, parse


def minimal(**tenant) -> dict:
    return {
        "tenants": [
            {
                "instance_id": "acme",
                "api_url": "https://acme.example/CCSWeb",
                "api_key_env": "CC_KEY_ACME",
                **tenant,
            }
        ]
    }


def test_example_file_loads():
    settings = load(EXAMPLE_FILE)
    assert [t.instance_id for t in settings.tenants] == ["acme-research", "lakeside-cro"]
    acme, lakeside = settings.tenants
    assert acme.budgets == {"max_requests_per_second": 8, "max_parallel_requests": 4}
    assert lakeside.budgets == {"max_requests_per_second": 5}  # from defaults
    assert lakeside.schedule == {"daily": "30 1 * * 1-6", "weekly_full": "30 1 * * 6"}
    assert lakeside.max_staleness_hours == 72
    assert main([str(EXAMPLE_FILE)]) == 0


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"instance_id": "bad id!"}, "instance_id 'bad id!' must be letters"),
        ({"api_url": "acme.example"}, "api_url must be an http(s) URL"),
        ({"timezone": "Mars/Olympus"}, "timezone 'Mars/Olympus' is not an IANA zone"),
        ({"budgets": {"max_requests_per_day": 5}}, "unknown key(s) max_requests_per_day"),
        ({"budgets": {"max_run_minutes": -1}}, "budgets.max_run_minutes must be a number >= 0"),
        ({"schedule": {"daily": "every day"}}, "schedule.daily must be a 5-field cron"),
        ({"api_key": "x"}, "unknown key(s) api_key"),
    ],
)
def test_bad_tenant_is_named(change, message):
    with pytest.raises(TenantsFileError, match="tenant") as err:
        parse(minimal(**change))
    assert message in str(err.value)


def test_a_key_pasted_as_the_variable_name_is_not_echoed():
    secret = "Zx9-live-key/with=chars"
    with pytest.raises(TenantsFileError) as err:
        parse(minimal(api_key_env=secret))
    assert secret not in str(err.value)
    assert "must be the NAME of an environment variable" in str(err.value)


def test_duplicate_tenants_and_empty_lists():
    data = minimal()
    data["tenants"].append(dict(data["tenants"][0]))
    with pytest.raises(TenantsFileError, match="tenant acme is listed twice"):
        parse(data)
    with pytest.raises(TenantsFileError, match="non-empty list"):
        parse({"tenants": []})


def test_missing_key_variable_is_a_clear_error(monkeypatch):
    monkeypatch.delenv("CC_KEY_ACME", raising=False)
    settings = parse(minimal())
    with pytest.raises(TenantsFileError, match="CC_KEY_ACME .its API key. is not set"):
        settings.tenants[0].api_key()


def test_run_environment_of_a_tenant(monkeypatch):
    settings = parse(
        {
            **minimal(
                budgets={"max_requests_per_second": 2.5, "max_requests_per_run": 1000},
                select=["studies.*"],
                timezone="America/Chicago",
            ),
            "meltano": {"environment": "prod"},
        }
    )
    monkeypatch.setenv("CC_KEY_ACME", "k-123")
    monkeypatch.setenv("TARGET_POSTGRES_SQLALCHEMY_URL", "postgresql+psycopg://u@h/db")
    # Another tenant's settings in the caller's environment must not leak into this run.
    monkeypatch.setenv("TAP_CLINICAL_CONDUCTOR_START_DATE", "2020-01-01")
    tenant = settings.tenants[0]
    env = meltano_step.environment(settings, tenant)
    assert env["TAP_CLINICAL_CONDUCTOR_API_KEY"] == "k-123"
    assert env["TAP_CLINICAL_CONDUCTOR_INSTANCE_ID"] == "acme"
    assert env["TAP_CLINICAL_CONDUCTOR_TENANT_TIMEZONE"] == "America/Chicago"
    assert env["TAP_CLINICAL_CONDUCTOR_MAX_REQUESTS_PER_SECOND"] == "2.5"
    assert env["TAP_CLINICAL_CONDUCTOR_MAX_REQUESTS_PER_RUN"] == "1000"
    assert env["TAP_CLINICAL_CONDUCTOR__SELECT"] == '["studies.*"]'
    assert env["TARGET_POSTGRES_ACTIVATE_VERSION"] == "false"
    assert env["MELTANO_ENVIRONMENT"] == "prod"
    assert "TAP_CLINICAL_CONDUCTOR_START_DATE" not in env
    assert meltano_step.command(tenant, "weekly_full")[1:] == [
        "run",
        "--state-id-suffix=acme",
        "tap-clinical-conductor--full-reload",
        "target-postgres",
    ]
    assert (
        meltano_step.state_id(settings, tenant, "daily")
        == "prod:tap-clinical-conductor-to-target-postgres:acme"
    )
