"""The sandbox's endpoint table: what each Clinical Conductor path serves, and how much of it.

One row per endpoint name. Names match the tap's catalogue so that a test can ask the sandbox for
the truth of the stream it just synced. Shapes and models follow the CC OpenAPI document (build
8.5.12); row counts at scale 1.0 follow the real tenant in the project's reference notes, and
"plausible" counts (per parent) where the notes are silent.
"""

from __future__ import annotations

from dataclasses import dataclass

#: Parent kinds: the path parameter, the parent endpoint and the parent key in truth rows.
PARENT_OF: dict[str, tuple[str, str]] = {
    "study": ("studies", "studyId"),
    "patient": ("patients", "patientId"),
    "patient_visit": ("patient_visits", "patientVisitId"),
}

ARRAY = "array"
PAGERESULT = "pageresult"
ODATA4 = "odata4"
OBJECT = "object"
SHAPES = (ARRAY, PAGERESULT, ODATA4)


@dataclass(frozen=True)
class EndpointSpec:
    """What one endpoint serves.

    Attributes:
        name: Endpoint name, the tap's stream name (``subjects_top``/``visits_top`` for the
            top-level twins of per-study endpoints).
        path: Path template below the base URL (``/api/v1/studies/{studyId}/subjects/odata``).
        model: OpenAPI model of one record (``""`` for a list of strings).
        kind: ``top``, or the parent kind (``study``, ``patient``, ``patient_visit``).
        odata: Whether OData query options apply; other lists return everything.
        shape: Response shape per the spec: ``array``, ``pageresult`` or ``object``.
        per_parent: Rows per parent (child kinds) at any scale.
        total: Rows at scale 1.0 (top-level kinds).
        fixed: Row count that does not scale (reference lists a tenant configures by hand).
        status: 200, or the status a real tenant answers (404 missing, 501 Enterprise-only).
        same_as: For top-level twins: the endpoint whose rows they serve.
        id_field: Field holding the record id, ``""`` when the model has none.
    """

    name: str
    path: str
    model: str
    kind: str = "top"
    odata: bool = True
    shape: str = ARRAY
    per_parent: float = 0.0
    total: int = 0
    fixed: int = 0
    status: int = 200
    same_as: str = ""
    id_field: str = "id"

    @property
    def parent(self) -> tuple[str, str] | None:
        """``(parent endpoint, parent key)`` for child kinds, else ``None``."""
        return PARENT_OF.get(self.kind)

    @property
    def source(self) -> str:
        """Name of the endpoint whose table holds this endpoint's rows."""
        return self.same_as or self.name


def _e(name: str, path: str, model: str, **kw: object) -> EndpointSpec:
    return EndpointSpec(name, "/api/v1/" + path, model, **kw)  # type: ignore[arg-type]


_P = PAGERESULT
_S = {"kind": "study"}
_PT = {"kind": "patient", "odata": False, "per_parent": 0.5}
_404 = {"kind": "study", "status": 404}

ENDPOINTS: tuple[EndpointSpec, ...] = (
    # Phase 1 of the job plan.
    _e("sites", "sites", "SiteModel", odata=False, total=320),
    _e("studies", "studies/odata", "StudyViewModel", total=157_270),
    _e("patients", "patients/odata", "PatientViewModel", total=152_836),
    _e("elements", "elements/odata", "ElementViewModel", shape=_P, total=31_672),
    _e("patient_visits", "patient-visits/odata", "PatientVisitPreview", shape=_P, total=2_297_271),
    _e("appointments", "appointments/odata", "AppointmentViewModel", shape=_P, total=860_893),
    _e("staff", "staff/odata", "StaffViewModel", total=2_617),
    # Phase 2: per study.
    _e("subjects", "studies/{studyId}/subjects/odata", "SubjectViewModel", shape=_P, **_S,
       total=88_773),
    _e("visits", "studies/{studyId}/visits/odata", "VisitViewModel", shape=_P, **_S,
       per_parent=4.0),
    _e("study_documents", "studies/{studyId}/documents/odata", "StudyDocumentViewModel",
       shape=_P, **_S, per_parent=3.0),
    _e("screenings", "studies/{studyId}/screenings/odata", "", **_404),
    _e("enrollments", "studies/{studyId}/enrollments/odata", "", **_404),
    _e("randomizations", "studies/{studyId}/randomizations/odata", "", **_404),
    _e("withdrawals", "studies/{studyId}/withdrawals/odata", "", **_404),
    _e("concomitant_medications", "studies/{studyId}/concomitant-medications/odata", "", **_404),
    _e("queries", "studies/{studyId}/monitor-queries/odata", "MonitorQueryPreviewModel",
       shape=_P, **_S, per_parent=1.0),
    _e("study_actions", "studies/{studyId}/actions/odata", "ActionViewModel", shape=_P, **_S,
       per_parent=2.0),
    _e("study_milestones", "studies/{studyId}/milestones/odata", "StudyMilestoneViewModel",
       shape=_P, **_S, per_parent=2.0),
    _e("study_notes", "studies/{studyId}/notes/odata", "StudyNoteViewModel", shape=_P, **_S,
       per_parent=1.5),
    # Phase 3: per patient visit (the element list is not OData).
    _e("patient_visit_elements", "patient-visits/{patientVisitId}/elements",
       "PatientVisitElementPreview", kind="patient_visit", odata=False, total=2_090_584),
    # Top-level twins of per-study endpoints: same rows, one request per 1000.
    _e("subjects_top", "subjects/odata", "SubjectViewModel", shape=_P, same_as="subjects"),
    _e("visits_top", "visits/odata", "VisitViewModel", shape=_P, same_as="visits"),
    # Wider catalogue: top level.
    _e("subject_statuses", "subject-statuses/odata", "SubjectStatusModel", shape=_P,
       total=119_749, id_field=""),
    _e("sponsors", "sponsors/odata", "SponsorViewModel", shape=_P, total=798),
    _e("sponsor_divisions", "sponsor-divisions/odata", "SponsorDivisionViewModel", shape=_P,
       total=1_600),
    _e("sponsor_teams", "sponsor-teams/odata", "SponsorTeamViewModel", shape=_P, total=1_600),
    _e("monitors", "monitors", "MonitorPreviewModel", odata=False, total=800),
    _e("providers", "providers/odata", "ProviderModel", shape=_P, total=398),
    _e("rooms", "rooms/odata", "RoomViewModel", shape=_P, total=960),
    _e("room_groups", "room-groups/odata", "RoomGroupViewModel", shape=_P, total=320),
    _e("schedules", "schedules/odata", "ScheduleViewModel", shape=_P, total=320),
    _e("site_payments", "site-payments/odata", "SitePaymentViewModel", shape=_P, total=6_400),
    _e("site_payment_check_requests", "site-payments/check-requests/odata",
       "SitePaymentCheckRequestViewModel", shape=_P, total=1_600),
    _e("engagements", "engagements/odata", "EngagementViewModel", shape=_P, status=501),
    _e("monitor_queries", "monitor-queries/odata", "MonitorQueryPreviewModel", shape=_P,
       status=501),
    _e("system_allergies", "system/allergies/odata", "SysAllergyViewModel", shape=_P, fixed=40),
    _e("system_conditions", "system/conditions/odata", "SysConditionsViewModel", shape=_P,
       fixed=40),
    _e("system_devices", "system/devices/odata", "SysDeviceModel", shape=_P, fixed=15),
    _e("system_immunizations", "system/immunizations/odata", "SysImmunizationModel", shape=_P,
       fixed=15),
    _e("system_medications", "system/medications/odata", "SysMedicationViewModel", shape=_P,
       fixed=60),
    _e("system_procedures", "system/procedures/odata", "SysProcedureModel", shape=_P, fixed=30),
    _e("system_social_history", "system/social-history/odata", "SysSocialHistoryViewModel",
       shape=_P, fixed=10),
    _e("system_action_categories", "system/action-categories", "ActionCategoryPreviewModel",
       odata=False, fixed=8),
    _e("system_document_types", "system/document-types", "DocumentTypePreviewModel",
       odata=False, fixed=12),
    _e("system_lookup_lists", "system/lookup-lists", "", odata=False, fixed=10, id_field=""),
    _e("system_organizations", "system/organizations", "OrganizationPreviewModel", odata=False,
       fixed=3, id_field="Id"),
    _e("system_patient_custom_fields", "system/patient-customfields", "CustomFieldDefinition",
       odata=False, fixed=6),
    _e("system_study_categories", "system/study-categories", "StudyCategoryViewModel",
       odata=False, fixed=6),
    _e("system_study_custom_fields", "system/study-customfields", "CustomFieldDefinition",
       odata=False, fixed=6),
    _e("system_study_groups", "system/study-groups", "StudyGroupPreviewModel", odata=False,
       fixed=4, id_field="Id"),
    _e("system_study_statuses", "system/study-statuses", "StudyStatusTypeViewModel",
       odata=False, fixed=8),
    _e("system_study_subcategories", "system/study-subcategories", "StudySubcategoryViewModel",
       odata=False, fixed=10),
    _e("instance_details", "instance/details", "InstanceDetails", odata=False, shape=OBJECT,
       fixed=1, id_field=""),
    # Wider catalogue: per study, not OData.
    _e("study_arms", "studies/{studyId}/arms", "StudyArmPreviewModel", kind="study",
       odata=False, per_parent=1.5, id_field="Id"),
    _e("study_protocol_versions", "studies/{studyId}/protocol-versions",
       "ProtocolVersionViewModel", kind="study", odata=False, per_parent=1.2),
    _e("study_roles", "studies/{studyId}/roles", "StudyRoleViewModel", kind="study",
       odata=False, per_parent=2.0),
    _e("study_personnel", "studies/{studyId}/personnel", "RoleStaff", kind="study", odata=False,
       per_parent=2.0, id_field=""),
    _e("study_warnings", "studies/{studyId}/warnings", "StudyWarningModel", kind="study",
       odata=False, per_parent=0.5, id_field=""),
    # Wider catalogue: per patient.
    _e("patient_allergies", "patients/{patientId}/allergies", "PatientAllergiesViewModel", **_PT),
    _e("patient_conditions", "patients/{patientId}/conditions", "PatientConditionViewModel",
       **_PT),
    _e("patient_devices", "patients/{patientId}/devices", "PatientMedicalDeviceViewModel", **_PT),
    _e("patient_family_history", "patients/{patientId}/family-history",
       "PatientFamilyHistoryViewModel", **_PT),
    _e("patient_immunizations", "patients/{patientId}/immunizations",
       "PatientImmunizationViewModel", **_PT),
    _e("patient_medications", "patients/{patientId}/medications", "PatientMedicationViewModel",
       **_PT),
    _e("patient_procedures", "patients/{patientId}/procedures", "PatientProcedureViewModel",
       **_PT),
    _e("patient_providers", "patients/{patientId}/providers", "PatientProviderViewModel", **_PT),
    _e("patient_social_history", "patients/{patientId}/social-history",
       "PatientLifeStylesHistoryViewModel", **_PT),
    _e("patient_campaign_touches", "patients/{patientId}/touches/campaign",
       "CampaignTouchViewModel", **_PT),
    _e("patient_referral_touches", "patients/{patientId}/touches/referral",
       "ReferralTouchViewModel", **_PT),
    # Wider catalogue: per patient visit.
    _e("patient_visit_stipends", "patient-visits/{patientVisitId}/stipends",
       "PatientPaymentViewModel", kind="patient_visit", odata=False, per_parent=0.3),
)

BY_NAME: dict[str, EndpointSpec] = {e.name: e for e in ENDPOINTS}

#: Endpoints whose rows live in a table of their own (not twins, not missing on real tenants).
TABLES: tuple[EndpointSpec, ...] = tuple(
    e for e in ENDPOINTS if not e.same_as and e.status == 200
)
