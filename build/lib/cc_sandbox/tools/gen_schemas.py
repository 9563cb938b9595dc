"""Regenerate ``cc_sandbox/schemas.py`` from the Clinical Conductor OpenAPI document.

A development tool, never run by the sandbox: the repository must work without the spec file.
Run it when the spec changes::

    python -m cc_sandbox.tools.gen_schemas PATH/TO/clinical-conductor-openapi.json
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

#: The models the sandbox serves; everything they reference is emitted too.
ROOTS: tuple[str, ...] = (
    "SiteModel", "StudyViewModel", "PatientViewModel", "ElementViewModel", "PatientVisitPreview",
    "AppointmentViewModel", "StaffViewModel", "SubjectViewModel", "VisitViewModel",
    "StudyDocumentViewModel", "MonitorQueryPreviewModel", "ActionViewModel",
    "StudyMilestoneViewModel", "StudyNoteViewModel", "PatientVisitElementPreview",
    "SubjectStatusModel", "SponsorViewModel", "SponsorDivisionViewModel", "SponsorTeamViewModel",
    "MonitorPreviewModel", "ProviderModel", "RoomViewModel", "RoomGroupViewModel",
    "ScheduleViewModel", "SitePaymentViewModel", "SitePaymentCheckRequestViewModel",
    "EngagementViewModel", "SysAllergyViewModel", "SysConditionsViewModel", "SysDeviceModel",
    "SysImmunizationModel", "SysMedicationViewModel", "SysProcedureModel",
    "SysSocialHistoryViewModel", "ActionCategoryPreviewModel", "DocumentTypePreviewModel",
    "OrganizationPreviewModel", "CustomFieldDefinition", "StudyCategoryViewModel",
    "StudyGroupPreviewModel", "StudyStatusTypeViewModel", "StudySubcategoryViewModel",
    "InstanceDetails", "StudyArmPreviewModel", "ProtocolVersionViewModel", "StudyRoleViewModel",
    "RoleStaff", "StudyWarningModel", "PatientAllergiesViewModel", "PatientConditionViewModel",
    "PatientMedicalDeviceViewModel", "PatientFamilyHistoryViewModel",
    "PatientImmunizationViewModel", "PatientMedicationViewModel", "PatientProcedureViewModel",
    "PatientProviderViewModel", "PatientLifeStylesHistoryViewModel", "CampaignTouchViewModel",
    "ReferralTouchViewModel", "PatientPaymentViewModel",
)


def _code(schema: dict) -> str:
    """Compress one property schema to the sandbox's type code."""
    if "$ref" in schema:
        return "@" + schema["$ref"].rsplit("/", 1)[-1]
    kind = schema.get("type", "object")
    if kind == "array":
        return "[" + _code(schema.get("items", {})) + "]"
    if "enum" in schema:
        return "enum:" + "|".join(str(v) for v in schema["enum"])
    fmt = schema.get("format", "")
    return {
        ("integer", "int32"): "int",
        ("integer", "int64"): "long",
        ("number", "double"): "num",
        ("number", "float"): "num",
        ("number", "decimal"): "num",
        ("boolean", ""): "bool",
        ("string", "date-time"): "dt",
        ("string", "uuid"): "uuid",
        ("string", ""): "str",
    }.get((kind, fmt), "num" if kind == "number" else "int" if kind == "integer" else "str")


def main(argv: list[str]) -> None:
    """Read the spec at ``argv[0]`` and write ``schemas.py`` beside the package."""
    spec = json.loads(Path(argv[0]).read_text())
    defs = spec["definitions"]
    models: dict[str, list[tuple[str, str]]] = {}
    todo = list(ROOTS)
    while todo:
        name = todo.pop()
        if name in models:
            continue
        props = defs[name].get("properties", {})
        models[name] = [(field, _code(schema)) for field, schema in props.items()]
        for _, code in models[name]:
            ref = code.strip("[]")
            if ref.startswith("@"):
                todo.append(ref[1:])
    lines = [
        "# ruff: noqa: E501",
        '"""Field names and types of the Clinical Conductor models the sandbox serves.',
        "",
        "Generated from the CC OpenAPI document (build 8.5.12) by",
        "``cc_sandbox.tools.gen_schemas``; do not edit by hand. Type codes: ``int``, ``long``,",
        "``num``, ``bool``, ``str``, ``uuid``, ``dt`` (date-time), ``enum:A|B``, ``@Model``",
        "(object), ``[code]`` (array).",
        '"""',
        "",
        "MODELS: dict[str, tuple[tuple[str, str], ...]] = {",
    ]
    for name in sorted(models):
        lines.append(f"    {name!r}: (")
        lines.extend(f"        ({f!r}, {c!r})," for f, c in models[name])
        lines.append("    ),")
    lines.append("}")
    out = Path(__file__).resolve().parent.parent / "schemas.py"
    out.write_text("\n".join(lines) + "\n")
    print(f"wrote {len(models)} models to {out}")


if __name__ == "__main__":
    main(sys.argv[1:])
