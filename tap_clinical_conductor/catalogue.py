"""Every Clinical Conductor endpoint the tap reads, described as data.

One row per stream. A reader looking for an endpoint finds it here and nowhere else: the stream
classes in ``streams.py`` are generic and take everything they need from the row.

Facts come from the CC OpenAPI document (build 8.5.12) and from teams that ran loaders against
live tenants (see README, "The API as it really is"):

* ``odata`` endpoints accept ``$filter/$top/$skip/$orderby/$count``; the others return the whole
  list in one response and ignore paging options.
* The job plan's ``screenings``, ``enrollments``, ``randomizations``, ``withdrawals`` and
  ``concomitant-medications`` answer 404 on real tenants. They stay in the catalogue because a
  newer build may add them; the tap probes them once and skips them with one warning.
* ``queries`` reads ``/studies/{studyId}/monitor-queries/odata``, the endpoint that exists; the
  plan's ``/queries/odata`` does not.
* The spec documents no ``modifiedDate``; studies carry ``lastUpdatedOn``. The change field of a
  stream is found at run time from its ``change_candidates`` (see ``readplan.py``).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

#: Change-timestamp names seen on live tenants, in order of preference.
CHANGE_FIELD_CANDIDATES: tuple[str, ...] = (
    "modifiedDate",
    "lastUpdatedOn",
    "modifiedOn",
    "lastModified",
    "lastModifiedDate",
    "updatedAt",
    "updatedDate",
)


class Kind(str, enum.Enum):
    """Where a stream's rows live: the four stream kinds that serve the catalogue."""

    TOP = "top"
    STUDY = "study"
    PATIENT = "patient"
    PATIENT_VISIT = "patient_visit"


#: For each child kind: the parent stream whose ids are listed, and the key the child records get.
PARENTS: dict[Kind, tuple[str, str]] = {
    Kind.STUDY: ("studies", "studyId"),
    Kind.PATIENT: ("patients", "patientId"),
    Kind.PATIENT_VISIT: ("patient_visits", "patientVisitId"),
}


@dataclass(frozen=True)
class Endpoint:
    """One row of the catalogue.

    Attributes:
        name: Stream name (snake_case of the job plan's job name where there is one).
        path: Path below the base URL; child paths contain ``{studyId}``, ``{patientId}`` or
            ``{patientVisitId}``.
        kind: Top-level, or the parent it fans out over.
        odata: Whether the endpoint takes OData query options.
        job_id: Job id in the user's job plan, ``None`` for the wider catalogue.
        table: Staging table in PostgreSQL.
        id_field: Field holding the record id (``Id`` on some preview models).
        id_from: For models without an id: the fields whose values make a stable synthetic id.
        default_selected: Selected when no catalog says otherwise (cheap or planned streams).
        change_candidates: Change-timestamp fields to look for, in order.
        top_level_path: A top-level OData collection that serves the same rows as a per-parent
            endpoint with one request per 1000 rows instead of one per parent.
        parent_ref: For rows read from ``top_level_path``: the dotted path of the parent id inside
            the record (``study.id``).
        order_by: ``$orderby`` for models without a unique id (paged with ``$skip``).
        single: The endpoint answers one object, not a list (any other lone object is an error).
        note: What a user should know about the endpoint on real tenants.
    """

    name: str
    path: str
    kind: Kind = Kind.TOP
    odata: bool = True
    job_id: int | None = None
    table: str = ""
    id_field: str = "id"
    id_from: tuple[str, ...] = ()
    default_selected: bool = True
    change_candidates: tuple[str, ...] = CHANGE_FIELD_CANDIDATES
    top_level_path: str | None = None
    parent_ref: str | None = None
    order_by: str | None = None
    single: bool = False
    note: str = ""

    @property
    def staging_table(self) -> str:
        """The target table: the job plan's name, or ``dim_<name>_staging``."""
        return self.table or f"dim_{self.name}_staging"

    @property
    def parent_stream(self) -> str | None:
        """Name of the stream whose ids this one fans out over."""
        return PARENTS[self.kind][0] if self.kind in PARENTS else None

    @property
    def parent_key(self) -> str | None:
        """Name of the parent-id property added to child records."""
        return PARENTS[self.kind][1] if self.kind in PARENTS else None

    @property
    def parent(self) -> Endpoint:
        """The endpoint whose ids this one fans out over.

        Raises:
            ValueError: A top-level endpoint has no parent.
        """
        if self.parent_stream is None:
            raise ValueError(f"{self.name} is a top-level endpoint")
        return BY_NAME[self.parent_stream]

    def collection_path(self, prefer_top_level: bool) -> str | None:
        """The collection that serves every row in one paged read; ``None``: one per parent."""
        if self.parent_key is None:
            return self.path
        if self.top_level_path and prefer_top_level:
            return self.top_level_path
        return None


_S, _P, _V = Kind.STUDY, Kind.PATIENT, Kind.PATIENT_VISIT
_404 = "404 on real tenants (job plan endpoint that does not exist in CC 8.5)"

CATALOGUE: tuple[Endpoint, ...] = (
    # --- The job plan, phase 1 -----------------------------------------------------------------
    Endpoint("sites", "/api/v1/sites", odata=False, job_id=1),
    Endpoint("studies", "/api/v1/studies/odata", job_id=2),
    Endpoint("patients", "/api/v1/patients/odata", job_id=3),
    Endpoint("elements", "/api/v1/elements/odata", job_id=8),
    Endpoint("patient_visits", "/api/v1/patient-visits/odata", job_id=9),
    Endpoint("appointments", "/api/v1/appointments/odata", job_id=25),
    Endpoint("staff", "/api/v1/staff/odata", job_id=26),
    # --- The job plan, phase 2: per study ------------------------------------------------------
    Endpoint(
        "subjects",
        "/api/v1/studies/{studyId}/subjects/odata",
        _S,
        job_id=10,
        top_level_path="/api/v1/subjects/odata",
        parent_ref="study.id",
    ),
    Endpoint(
        "visits",
        "/api/v1/studies/{studyId}/visits/odata",
        _S,
        job_id=11,
        top_level_path="/api/v1/visits/odata",
        parent_ref="study.id",
    ),
    Endpoint("study_documents", "/api/v1/studies/{studyId}/documents/odata", _S, job_id=13),
    Endpoint("screenings", "/api/v1/studies/{studyId}/screenings/odata", _S, job_id=14, note=_404),
    Endpoint(
        "enrollments", "/api/v1/studies/{studyId}/enrollments/odata", _S, job_id=15, note=_404
    ),
    Endpoint(
        "randomizations", "/api/v1/studies/{studyId}/randomizations/odata", _S, job_id=16, note=_404
    ),
    Endpoint(
        "withdrawals", "/api/v1/studies/{studyId}/withdrawals/odata", _S, job_id=17, note=_404
    ),
    Endpoint(
        "concomitant_medications",
        "/api/v1/studies/{studyId}/concomitant-medications/odata",
        _S,
        job_id=20,
        note=_404,
    ),
    Endpoint(
        "queries",
        "/api/v1/studies/{studyId}/monitor-queries/odata",
        _S,
        job_id=23,
        note="the plan's /queries/odata is 404; monitor-queries is the real endpoint",
    ),
    Endpoint("study_actions", "/api/v1/studies/{studyId}/actions/odata", _S, job_id=27),
    Endpoint(
        "study_milestones",
        "/api/v1/studies/{studyId}/milestones/odata",
        _S,
        job_id=28,
        table="fact_study_milestones_staging",
    ),
    Endpoint(
        "study_notes",
        "/api/v1/studies/{studyId}/notes/odata",
        _S,
        job_id=29,
        table="fact_study_documents_staging",
        note="the plan loads StudyNotes into fact_study_documents_staging",
    ),
    # --- The job plan, phase 3: per patient visit ----------------------------------------------
    Endpoint(
        "patient_visit_elements",
        "/api/v1/patient-visits/{patientVisitId}/elements",
        _V,
        odata=False,
        job_id=24,
        note="the plan's /elements/odata does not exist; the real list is not OData",
    ),
    # --- Wider catalogue: top-level collections ------------------------------------------------
    Endpoint(
        "subject_statuses",
        "/api/v1/subject-statuses/odata",
        id_from=("subject.Id", "status", "eventDate"),
        order_by="eventDate,status",
        note="the model has no id; the key is subject, status and event date",
    ),
    Endpoint("sponsors", "/api/v1/sponsors/odata"),
    Endpoint("sponsor_divisions", "/api/v1/sponsor-divisions/odata"),
    Endpoint("sponsor_teams", "/api/v1/sponsor-teams/odata"),
    Endpoint("monitors", "/api/v1/monitors", odata=False),
    Endpoint("providers", "/api/v1/providers/odata"),
    Endpoint("rooms", "/api/v1/rooms/odata"),
    Endpoint("room_groups", "/api/v1/room-groups/odata"),
    Endpoint("schedules", "/api/v1/schedules/odata"),
    Endpoint("site_payments", "/api/v1/site-payments/odata"),
    Endpoint("site_payment_check_requests", "/api/v1/site-payments/check-requests/odata"),
    Endpoint(
        "engagements",
        "/api/v1/engagements/odata",
        default_selected=False,
        note="501 on Clinical Conductor: Enterprise edition only",
    ),
    Endpoint(
        "monitor_queries",
        "/api/v1/monitor-queries/odata",
        default_selected=False,
        note="501 on Clinical Conductor: Enterprise edition only; per-study `queries` has the rows",
    ),
    Endpoint("system_allergies", "/api/v1/system/allergies/odata"),
    Endpoint("system_conditions", "/api/v1/system/conditions/odata"),
    Endpoint("system_devices", "/api/v1/system/devices/odata"),
    Endpoint("system_immunizations", "/api/v1/system/immunizations/odata"),
    Endpoint("system_medications", "/api/v1/system/medications/odata"),
    Endpoint("system_procedures", "/api/v1/system/procedures/odata"),
    Endpoint("system_social_history", "/api/v1/system/social-history/odata"),
    Endpoint("system_action_categories", "/api/v1/system/action-categories", odata=False),
    Endpoint("system_document_types", "/api/v1/system/document-types", odata=False),
    Endpoint(
        "system_lookup_lists",
        "/api/v1/system/lookup-lists",
        odata=False,
        id_from=("$value",),
        note="a list of names (strings); the name is the id",
    ),
    Endpoint("system_organizations", "/api/v1/system/organizations", odata=False, id_field="Id"),
    Endpoint("system_patient_custom_fields", "/api/v1/system/patient-customfields", odata=False),
    Endpoint("system_study_categories", "/api/v1/system/study-categories", odata=False),
    Endpoint("system_study_custom_fields", "/api/v1/system/study-customfields", odata=False),
    Endpoint("system_study_groups", "/api/v1/system/study-groups", odata=False, id_field="Id"),
    Endpoint("system_study_statuses", "/api/v1/system/study-statuses", odata=False),
    Endpoint("system_study_subcategories", "/api/v1/system/study-subcategories", odata=False),
    Endpoint(
        "instance_details",
        "/api/v1/instance/details",
        odata=False,
        id_field="instanceUID",
        single=True,
        note="one object, not a list",
    ),
    # --- Wider catalogue: per study (one request per study; not selected by default) -----------
    Endpoint(
        "study_arms",
        "/api/v1/studies/{studyId}/arms",
        _S,
        odata=False,
        id_field="Id",
        default_selected=False,
        note="the plan's /visit-arms/odata is 404; arms are listed per study",
    ),
    Endpoint(
        "study_protocol_versions",
        "/api/v1/studies/{studyId}/protocol-versions",
        _S,
        odata=False,
        default_selected=False,
    ),
    Endpoint(
        "study_roles", "/api/v1/studies/{studyId}/roles", _S, odata=False, default_selected=False
    ),
    Endpoint(
        "study_personnel",
        "/api/v1/studies/{studyId}/personnel",
        _S,
        odata=False,
        id_from=("Role.Id",),
        default_selected=False,
        note="one row per study role with its staff; keyed on the role",
    ),
    Endpoint(
        "study_warnings",
        "/api/v1/studies/{studyId}/warnings",
        _S,
        odata=False,
        id_from=("type", "visit.id", "element.id", "description"),
        default_selected=False,
        note="the model has no id; the key is type, visit, element and description",
    ),
    # --- Wider catalogue: per patient (one request per patient; opt-in) ------------------------
    *(
        Endpoint(
            f"patient_{name.replace('-', '_')}",
            f"/api/v1/patients/{{patientId}}/{path}",
            _P,
            odata=False,
            default_selected=False,
        )
        for name, path in (
            ("allergies", "allergies"),
            ("conditions", "conditions"),
            ("devices", "devices"),
            ("family-history", "family-history"),
            ("immunizations", "immunizations"),
            ("medications", "medications"),
            ("procedures", "procedures"),
            ("providers", "providers"),
            ("social-history", "social-history"),
            ("campaign-touches", "touches/campaign"),
            ("referral-touches", "touches/referral"),
        )
    ),
    # --- Wider catalogue: per patient visit (one request per patient visit; opt-in) ------------
    Endpoint(
        "patient_visit_stipends",
        "/api/v1/patient-visits/{patientVisitId}/stipends",
        _V,
        odata=False,
        default_selected=False,
    ),
)

BY_NAME: dict[str, Endpoint] = {e.name: e for e in CATALOGUE}


def _cost(endpoint: Endpoint) -> str:
    if endpoint.kind is Kind.TOP:
        return "1 per 1000 rows" if endpoint.odata else "1"
    per = {"study": "study", "patient": "patient", "patient_visit": "patient visit"}
    cost = f"1 per {per[endpoint.kind.value]}"
    if endpoint.top_level_path:
        cost = f"1 per 1000 rows (top-level), else {cost}"
    return cost


def markdown_table() -> str:
    """The README's streams table, generated so that it cannot drift from the catalogue."""
    lines = [
        "| stream | endpoint | parent | key | change field (spec 8.5.12) | staging table "
        "| default | requests | note |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for e in CATALOGUE:
        key = ", ".join(k for k in ("instance_id", e.parent_key, "id") if k)
        change = (
            "lastUpdatedOn"
            if e.name == "studies"
            else ("found at run time" if e.odata else "none (full table)")
        )
        path = e.path.replace("/api/v1", "")
        if e.top_level_path:
            path += f" (or {e.top_level_path.replace('/api/v1', '')})"
        lines.append(
            f"| `{e.name}` | `{path}` | {e.parent_stream or ''} | {key} | {change} "
            f"| `{e.staging_table}` | {'yes' if e.default_selected else 'no'} | {_cost(e)} "
            f"| {e.note} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    print(markdown_table())
