"""singer-sdk's standard tap tests, against a fake tenant started for this module."""

from __future__ import annotations

import pytest
from singer_sdk.testing import SuiteConfig, get_tap_test_class

from cc_sandbox import Sandbox
from tap_clinical_conductor.tap import TapClinicalConductor

from .conftest import API_KEY

# The runner is built when the class is defined; the sandbox's URL is filled in before it syncs.
CONFIG = {
    "api_url": "http://127.0.0.1:1/CCSWeb",
    "api_key": API_KEY,
    "instance_id": "sandbox",
    "tenant_timezone": "America/New_York",
    "max_requests_per_second": 1000,
}
ENTERPRISE = ["engagements", "monitor_queries"]
MISSING = ["screenings", "enrollments", "randomizations", "withdrawals", "concomitant_medications"]


@pytest.fixture(scope="module", autouse=True)
def _tenant():
    with Sandbox(scale=0.001, seed=11, api_key=API_KEY, profile="plan") as sb:
        CONFIG["api_url"] = sb.base_url
        yield sb


def _catalog_selecting_everything() -> dict:
    """Opt-in streams too; the harness forces selection but keeps their deselected schema."""
    catalog = TapClinicalConductor(config=CONFIG).catalog_dict
    for entry in catalog["streams"]:
        for md in entry["metadata"]:
            md["metadata"]["selected"] = True
    return catalog


TestTapClinicalConductor = get_tap_test_class(
    TapClinicalConductor,
    config=CONFIG,
    catalog=_catalog_selecting_everything(),
    suite_config=SuiteConfig(ignore_no_records_for_streams=[*MISSING, *ENTERPRISE]),
)
