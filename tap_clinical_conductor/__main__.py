"""``python -m tap_clinical_conductor``: the tap's command line."""

from __future__ import annotations

from tap_clinical_conductor.tap import TapClinicalConductor

TapClinicalConductor.cli()
