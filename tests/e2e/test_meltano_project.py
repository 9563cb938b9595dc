"""meltano.yml against the catalogue and the tap: fast checks, no meltano run."""

from __future__ import annotations

import re

import pytest
import yaml

from tap_clinical_conductor.catalogue import CATALOGUE, Kind


@pytest.fixture(scope="module")
def project(project_root):
    return yaml.safe_load((project_root / "meltano.yml").read_text())


@pytest.fixture(scope="module")
def project_text(project_root):
    return (project_root / "meltano.yml").read_text()


def plugin(project, kind, name):
    return next(p for p in project["plugins"][kind] if p["name"] == name)


def test_every_catalogue_stream_maps_to_its_staging_table(project):
    maps = plugin(project, "loaders", "target-postgres")["config"]["stream_maps"]
    assert {name: m["__alias__"] for name, m in maps.items()} == {
        e.name: e.staging_table for e in CATALOGUE
    }


def test_job_plan_tables(project):
    maps = plugin(project, "loaders", "target-postgres")["config"]["stream_maps"]
    assert maps["study_notes"]["__alias__"] == "fact_study_documents_staging"
    assert maps["study_milestones"]["__alias__"] == "fact_study_milestones_staging"
    assert maps["patient_visit_elements"]["__alias__"] == "dim_patient_visit_elements_staging"


def test_default_selection_is_the_plan_plus_cheap_top_level_streams(project, project_text):
    select = plugin(project, "extractors", "tap-clinical-conductor")["select"]
    assert select == [f"{e.name}.*" for e in CATALOGUE if e.default_selected]
    assert all(e.job_id is None or e.default_selected for e in CATALOGUE)  # the plan's 20 jobs
    per_parent_defaults = [
        e.name for e in CATALOGUE if e.default_selected and e.kind in (Kind.PATIENT,)
    ]
    assert not per_parent_defaults
    # Every other stream is a commented opt-in.
    for e in CATALOGUE:
        if not e.default_selected:
            assert re.search(rf"^\s*# - {e.name}\.\*", project_text, re.M), e.name


def test_extractor_is_a_full_custom_definition(project):
    tap = plugin(project, "extractors", "tap-clinical-conductor")
    assert tap["namespace"] == "tap_clinical_conductor"
    assert tap["pip_url"] == "-e ."
    # The same as --about (tests/tap/test_capabilities.py); structured-logging: without it Meltano
    # shows the tap's warnings as [info].
    assert set(tap["capabilities"]) == {
        "catalog",
        "discover",
        "state",
        "about",
        "stream-maps",
        "schema-flattening",
        "batch",
        "structured-logging",
    }
    settings = {s["name"]: s for s in tap["settings"]}
    assert all(s.get("description") for s in settings.values())
    assert settings["api_key"]["sensitive"] is True


def test_every_tap_setting_is_declared(project):
    from tap_clinical_conductor.tap import TapClinicalConductor

    declared = {
        s["name"] for s in plugin(project, "extractors", "tap-clinical-conductor")["settings"]
    }
    sdk_builtin = {
        "faker_config",
        "flattening_max_key_length",
        "flattening_separator",
        "batch_config",
    }
    tap_settings = set(TapClinicalConductor.config_jsonschema["properties"]) - sdk_builtin
    assert tap_settings <= declared, sorted(tap_settings - declared)


def test_loader_pinned_and_fast(project):
    target = plugin(project, "loaders", "target-postgres")
    assert target["pip_url"] == "meltanolabs-target-postgres==0.8.1"
    assert target["config"]["use_copy"] is True
    assert target["config"]["validate_records"] is False
    assert target["config"]["default_target_schema"] == "public"


def test_no_secret_in_meltano_yml(project):
    def walk(node, path=""):
        if isinstance(node, dict):
            for k, v in node.items():
                yield from walk(v, f"{path}.{k}")
        elif isinstance(node, list):
            for i, v in enumerate(node):
                yield from walk(v, f"{path}[{i}]")
        else:
            yield path, node

    for path, value in walk(project):
        leaf = path.rsplit(".", 1)[-1]
        # A reference to an environment variable ($TARGET_POSTGRES_PASSWORD) is not a secret.
        is_reference = isinstance(value, str) and re.fullmatch(r"\$\{?\w+\}?", value)
        if leaf in {"api_key", "password", "ssl_client_private_key"} and not is_reference:
            pytest.fail(f"secret {path} set in meltano.yml")
        if leaf == "sqlalchemy_url" and isinstance(value, str):
            assert not re.search(r"://[^@/]*:[^@/]+@", value), f"password in {path}"


def test_environments_jobs_and_schedules(project):
    assert {e["name"] for e in project["environments"]} >= {"dev", "prod"}
    dev = next(e for e in project["environments"] if e["name"] == "dev")
    dev_tap = dev["config"]["plugins"]["extractors"][0]["config"]
    assert dev_tap["tenant_timezone"] == "America/New_York"
    dev_dbt = next(u for u in dev["config"]["plugins"]["utilities"] if u["name"] == "dbt-postgres")
    assert dev_dbt["config"]["tenant_timezone"] == dev_tap["tenant_timezone"]
    # dbt and the loader use the same embedded PostgreSQL in dev, and the same variables in prod.
    (dev_loader,) = dev["config"]["plugins"]["loaders"]
    socket_dir = dev_dbt["config"]["host"]
    assert dev_loader["config"]["sqlalchemy_url"].endswith(f"?host={socket_dir}")
    prod = next(e for e in project["environments"] if e["name"] == "prod")
    (prod_dbt,) = prod["config"]["plugins"]["utilities"]
    assert prod_dbt["name"] == "dbt-postgres"
    loader_vars = {"host": "HOST", "port": "PORT", "user": "USER", "password": "PASSWORD"}
    loader_vars["dbname"] = "DATABASE"
    assert prod_dbt["config"] == {k: f"$TARGET_POSTGRES_{v}" for k, v in loader_vars.items()}
    jobs = {j["name"]: j["tasks"] for j in project["jobs"]}
    assert jobs["daily"] == ["tap-clinical-conductor target-postgres dbt-postgres:build"]
    assert jobs["weekly-full"] == [
        "tap-clinical-conductor--full-reload target-postgres dbt-postgres:build"
    ]
    full = plugin(project, "extractors", "tap-clinical-conductor--full-reload")
    assert full["inherit_from"] == "tap-clinical-conductor"
    schedules = {s["job"]: s["interval"] for s in project["schedules"]}
    assert schedules["daily"] == "0 2 * * 1-6"
    assert schedules["weekly-full"] == "0 2 * * 0"


def test_dbt_utility_is_included_and_its_settings_reach_dbt(project, project_root):
    assert "./transform.meltano.yml" in project["include_paths"]
    included = yaml.safe_load((project_root / "transform.meltano.yml").read_text())
    dbt = next(u for u in included["plugins"]["utilities"] if u["name"] == "dbt-postgres")
    envs = {s["name"]: s.get("env") for s in dbt["settings"]}
    # The variables transform/ reads (profiles.yml, macros/cc_timestamps.sql).
    assert envs["tenant_timezone"] == "CC_TENANT_TIMEZONE"
    assert envs["schema"] == "DBT_POSTGRES_SCHEMA"
    assert {"build", "docs-generate", "mart-counts"} <= set(dbt["commands"])
    tz_macro = (project_root / "transform" / "macros" / "cc_timestamps.sql").read_text()
    assert "env_var('CC_TENANT_TIMEZONE'" in tz_macro
