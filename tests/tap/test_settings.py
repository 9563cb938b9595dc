"""One source for every setting: meltano.yml mirrors the tap's ``--about``, and the tap reads its
defaults from its own schema."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import yaml

from tap_clinical_conductor import sdk_private
from tap_clinical_conductor.settings import SCHEMA, Settings

from .tapio import TAP

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def about() -> dict:
    out = subprocess.run(
        [*TAP, "--about", "--format", "json"], capture_output=True, text=True, check=True
    )
    return json.loads(out.stdout)["settings"]["properties"]


@pytest.fixture(scope="module")
def meltano() -> dict[str, dict]:
    project = yaml.safe_load((ROOT / "meltano.yml").read_text())
    tap = next(p for p in project["plugins"]["extractors"] if p["name"] == "tap-clinical-conductor")
    return {s["name"]: s for s in tap["settings"]}


def meltano_kind(prop: dict) -> str:
    """The Meltano setting kind that carries a JSON schema property unchanged."""
    types = set(prop["type"]) - {"null"}
    if "enum" in prop:
        return "options"
    if prop.get("format") == "date-time":
        return "date_iso8601"
    if types == {"number", "string"}:
        # Meltano 4.4 cannot pass a `decimal` from an environment variable: numeric text.
        return "string"
    (only,) = types or {"object"}  # an untyped property (anyOf) is an object here
    return only


def test_meltano_declares_exactly_the_settings_of_about(about, meltano):
    assert set(meltano) == set(about)


def test_meltano_kinds_match_the_schema_types(about, meltano):
    wrong = {
        name: (meltano[name]["kind"], meltano_kind(prop))
        for name, prop in about.items()
        if meltano[name]["kind"] != meltano_kind(prop)
    }
    assert not wrong, wrong


def test_meltano_defaults_are_the_schema_defaults(about, meltano):
    for name, prop in about.items():
        value = meltano[name].get("value")
        if "default" not in prop:
            assert value is None, name
        elif meltano[name]["kind"] == "string" and set(prop["type"]) >= {"number"}:
            assert float(value) == prop["default"], name
        else:
            assert value == prop["default"], name


def test_meltano_options_are_the_allowed_values(about, meltano):
    for name, prop in about.items():
        if "enum" in prop:
            assert [o["value"] for o in meltano[name]["options"]] == prop["enum"], name


def test_secrets_are_sensitive_in_meltano(about, meltano):
    secret = {name for name, prop in about.items() if prop.get("secret")}
    sensitive = {name for name, setting in meltano.items() if setting.get("sensitive")}
    assert secret == sensitive == {"api_key"}


def test_absent_or_null_settings_take_the_schema_default():
    required = {"api_url": "https://x.example/CCSWeb", "api_key": "k"}
    nulls = {name: None for name in SCHEMA["properties"] if name not in required}
    for config in (required, {**required, **nulls}):
        settings = Settings.from_config(config)
        for name, prop in SCHEMA["properties"].items():
            if "default" in prop and hasattr(settings, name):
                value = getattr(settings, name)
                value = list(value) if isinstance(value, tuple) else value
                assert value == prop["default"], name


def test_every_tap_setting_is_read_by_settings():
    from dataclasses import fields

    own = {f.name for f in fields(Settings)}
    sdk = {
        "stream_maps",
        "stream_map_config",
        "faker_config",
        "flattening_enabled",
        "flattening_max_depth",
        "flattening_max_key_length",
        "flattening_separator",
        "batch_config",
    }
    assert own == set(SCHEMA["properties"]) - sdk


def test_unchecked_singer_sdk_versions_are_refused_with_a_clear_message():
    sdk_private.check_sdk_version(next(iter(sdk_private.CHECKED_VERSIONS)))
    with pytest.raises(sdk_private.UnsupportedSDKVersion, match=r"0\.99\.0 is installed"):
        sdk_private.check_sdk_version("0.99.0")


def test_readme_settings_table_shows_the_schema_defaults():
    readme = (ROOT / "README.md").read_text()
    shown = {}
    for line in readme.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if (
            len(cells) == 3
            and cells[0].startswith("`")
            and cells[0].strip("`") in SCHEMA["properties"]
        ):
            shown[cells[0].strip("`")] = cells[2].strip("`")
    assert len(shown) >= 17
    for name, text in shown.items():
        prop = SCHEMA["properties"][name]
        if "default" not in prop:
            assert not text[:1].isdigit() and text not in ("true", "false"), name
        elif isinstance(prop["default"], bool):
            assert text == str(prop["default"]).lower(), name
        elif isinstance(prop["default"], (int, float)):
            assert float(text) == prop["default"], name
        else:
            assert text == prop["default"], name
