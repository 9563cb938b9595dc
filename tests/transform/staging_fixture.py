# ruff: noqa: E501  (fixture rows and SQL read better on one line)
"""Hand-made staging tables shaped like target-postgres output, for testing the dbt project.

``seed(conn, round=1)`` creates the tables and loads a first full load; ``seed(conn, round=2)``
applies a second load on top: a study changed, a patient soft-deleted by a full reload
(``_sdc_deleted_at`` set), a subject added. ``GROUND_TRUTH[round]`` says what the marts must hold.

Two CC instances share ids on purpose: a record's identity is (instance_id, id).
Datetimes inside ``data`` are naive tenant-local strings (some with 7 fractional digits), as real
tenants send them; the tap's ``modifiedDate`` column is UTC.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any
from zoneinfo import ZoneInfo

A, B = "inst-a", "inst-b"

#: staging table -> parent key column (None for top-level streams)
TABLES: dict[str, str | None] = {
    "dim_sites_staging": None,
    "dim_studies_staging": None,
    "dim_patients_staging": None,
    "dim_elements_staging": None,
    "dim_patient_visits_staging": None,
    "dim_appointments_staging": None,
    "dim_staff_staging": None,
    "dim_subjects_staging": "studyId",
    "dim_visits_staging": "studyId",
    "dim_study_documents_staging": "studyId",
    "dim_screenings_staging": "studyId",  # exists but empty; the other 404 tables are missing
    "dim_queries_staging": "studyId",
    "dim_study_actions_staging": "studyId",
    "fact_study_milestones_staging": "studyId",
    "fact_study_documents_staging": "studyId",
    "dim_patient_visit_elements_staging": "patientVisitId",
    "dim_sponsors_staging": None,
    "dim_subject_statuses_staging": None,
    "dim_providers_staging": None,
}
TEXT_ID = {"dim_subject_statuses_staging"}


def _study(i: int, name: str, updated: str) -> dict[str, Any]:
    return {
        "id": i,
        "uid": f"00000000-0000-0000-0000-00000000000{i}",
        "name": name,
        "status": "Enrolling",
        "phase": "II",
        "protocolNumber": f"PRT-{i:03d}",
        "sponsor": {"id": 10, "name": "Acme Pharma (preview)"},
        "managingSite": {"id": 1, "uid": "s1", "name": "Site One (preview)"},
        "organization": {"Id": 5, "Name": "Org"},
        "createdOn": "2024-01-15T10:15:00.1234567",
        "lastUpdatedOn": updated,
        "launchYear": 2024,
    }


def rows_round1() -> dict[str, list[tuple[str, Any, Any, dict[str, Any]]]]:
    """table -> [(instance_id, parent_key, id, data)]"""
    subj = lambda i: {"Id": i, "Uid": f"u{i}", "Name": f"S-{i}"}  # noqa: E731
    pv = lambda i, subj_id, study_id, status, appts: {  # noqa: E731
        "id": i,
        "uid": f"pv{i}",
        "sequence": i,
        "visitId": 300 + (i % 2),
        "visitName": f"Visit {i}",
        "mandatory": True,
        "status": status,
        "targetDueDate": "2024-07-01T09:00:00",
        "study": {"id": study_id, "name": "x"},
        "subject": subj(subj_id),
        "appointments": [
            {"id": a, "status": "Completed", "scheduledStart": "2024-07-01T09:00:00"} for a in appts
        ],
    }
    return {
        "dim_sponsors_staging": [(A, None, 10, {"id": 10, "name": "Acme Pharma"})],
        "dim_sites_staging": [
            (
                A,
                None,
                1,
                {
                    "id": 1,
                    "name": "Site One",
                    "active": True,
                    "timeZone": "Eastern Standard Time",
                    "createdOn": "2020-02-01T08:00:00",
                },
            ),
            (A, None, 2, {"id": 2, "name": "Site Two", "active": False}),
            (B, None, 1, {"id": 1, "name": "Other Tenant Site", "active": True}),
        ],
        "dim_studies_staging": [
            (A, None, 100, _study(100, "Study Alpha", "2024-06-01T12:00:00")),
            (A, None, 101, _study(101, "Study Beta", "2024-06-02T12:00:00")),
            (B, None, 100, _study(100, "Other Tenant Study", "2024-06-03T12:00:00")),
        ],
        "dim_patients_staging": [
            (
                A,
                None,
                200,
                {
                    "id": 200,
                    "displayName": "Doe, Jane",
                    "status": "Active",
                    "primarySite": {"id": 1, "name": "Site One"},
                    "dateOfBirth": "1980-05-01T00:00:00",
                    "ssn": "000-00-0000",
                },
            ),
            (
                A,
                None,
                201,
                {
                    "id": 201,
                    "displayName": "Roe, Rich",
                    "status": "OnHold",
                    "primarySite": {"id": 2},
                },
            ),
            (A, None, 202, {"id": 202, "displayName": "Poe, Ed", "status": "Inactive"}),
            (B, None, 200, {"id": 200, "displayName": "Other, Pat", "status": "Active"}),
        ],
        "dim_staff_staging": [
            (
                A,
                None,
                50,
                {
                    "id": 50,
                    "displayName": "Dr Who",
                    "isStatusActive": True,
                    "staffRoles": [{"roleId": 1}],
                },
            ),
            (A, None, 51, {"id": 51, "displayName": "Nurse Joy", "isStatusActive": False}),
        ],
        "dim_subjects_staging": [
            (
                A,
                100,
                400,
                {
                    "id": 400,
                    "study": {"id": 100},
                    "site": {"id": 1},
                    "patient": {"id": 200},
                    "status": "Randomized",
                    "enrollmentDate": "2024-03-10T14:30:00",
                    "arm": {"Id": 7, "Name": "Arm A"},
                },
            ),
            (
                A,
                100,
                401,
                {
                    "id": 401,
                    "study": {"id": 100},
                    "site": {"id": 1},
                    "patient": {"id": 201},
                    "status": "Screened",
                },
            ),
            (
                A,
                101,
                402,
                {
                    "id": 402,
                    "study": {"id": 101},
                    "site": {"id": 2},
                    "patient": {"id": 202},
                    "status": "ScreenFailed",
                },
            ),
            (
                B,
                100,
                400,
                {"id": 400, "study": {"id": 100}, "patient": {"id": 200}, "status": "Completed"},
            ),
        ],
        "dim_visits_staging": [
            (
                A,
                100,
                300,
                {
                    "id": 300,
                    "name": "Screening",
                    "study": {"id": 100},
                    "budget": 125.5,
                    "isActive": True,
                },
            ),
            (A, 100, 301, {"id": 301, "name": "Day 1", "study": {"id": 100}}),
        ],
        "dim_elements_staging": [
            (
                A,
                None,
                600,
                {
                    "id": 600,
                    "name": "ECG",
                    "study": {"id": 100},
                    "roomAssignment": {"type": "AnyRoom"},
                    "standardTimeMinutes": 15,
                },
            ),
            (
                A,
                None,
                601,
                {
                    "id": 601,
                    "name": "Blood draw",
                    "study": {"id": 100},
                    "roomAssignment": {"type": "NoRoom"},
                },
            ),
        ],
        "dim_patient_visits_staging": [
            (A, None, 500, pv(500, 400, 100, "Completed", [700])),
            (A, None, 501, pv(501, 400, 100, "Pending", [701])),
            (A, None, 502, pv(502, 401, 100, "Started", [])),
            (B, None, 500, pv(500, 400, 100, "Pending", [700])),
        ],
        "dim_appointments_staging": [
            (
                A,
                None,
                700,
                {
                    "id": 700,
                    "status": "Completed",
                    "plannedStart": "2024-07-01T09:00:00",
                    "plannedEnd": "2024-07-01T10:30:00",
                    "patient": {"id": 200},
                    "visit": {"id": 300},
                },
            ),
            (
                A,
                None,
                701,
                {
                    "id": 701,
                    "status": "Pending",
                    "plannedStart": "2024-12-01T09:00:00.1234567",
                    "plannedEnd": "2024-12-01T09:30:00",
                },
            ),
            (
                A,
                None,
                702,
                {"id": 702, "status": "NoShow", "plannedStart": "2024-08-01T09:00:00+00:00"},
            ),
            (B, None, 700, {"id": 700, "status": "Cancelled"}),
        ],
        "dim_patient_visit_elements_staging": [
            (
                A,
                500,
                800,
                {
                    "id": 800,
                    "elementId": 600,
                    "name": "ECG",
                    "completedOn": "2024-07-01T09:20:00",
                    "required": True,
                },
            ),
            (A, 500, 801, {"id": 801, "elementId": 601, "name": "Blood draw"}),
            (A, 501, 802, {"id": 802, "elementId": 600, "name": "ECG"}),
            (B, 500, 800, {"id": 800, "elementId": 1, "name": "Vitals"}),
        ],
        "dim_study_documents_staging": [
            (
                A,
                100,
                900,
                {
                    "id": 900,
                    "type": {"id": 3, "name": "Protocol", "category": "Regulatory"},
                    "status": {"status": "Approved", "date": "2024-02-01T00:00:00"},
                    "version": "2.0",
                    "effectiveDate": "2024-02-01T00:00:00",
                },
            ),
        ],
        "dim_queries_staging": [
            (
                A,
                100,
                1000,
                {
                    "id": 1000,
                    "query": "Missing weight?",
                    "status": {"queryStatus": "Resolved", "isConsideredOpen": False},
                    "createdOn": "2024-04-01T08:00:00",
                    "closedOn": "2024-04-03T08:00:00",
                    "study": {"id": 100},
                },
            ),
        ],
        "dim_study_actions_staging": [
            (
                A,
                100,
                1100,
                {
                    "id": 1100,
                    "name": "Send contract",
                    "status": "Open",
                    "scheduling": {
                        "schedulingMode": "FixedDate",
                        "dueDateMin": "2024-05-01T00:00:00",
                    },
                    "assignedTo": {"id": 50},
                },
            ),
        ],
        "fact_study_milestones_staging": [
            (
                A,
                100,
                1200,
                {
                    "id": 1200,
                    "name": "FPI",
                    "status": "Completed",
                    "completedOn": "2024-03-10T00:00:00",
                    "scheduling": {"schedulingMode": "RelativeToMilestone"},
                },
            ),
            (
                A,
                101,
                1201,
                {
                    "id": 1201,
                    "name": "SIV",
                    "status": "Pending",
                    "scheduling": {"schedulingMode": "FixedDate", "dueDate": "2024-09-01T00:00:00"},
                },
            ),
        ],
        "fact_study_documents_staging": [
            (
                A,
                100,
                1300,
                {
                    "id": 1300,
                    "note": "Kick-off done",
                    "date": "2024-01-20T16:00:00",
                    "staff": {"id": 50},
                    "locked": False,
                    "shared": True,
                },
            ),
        ],
        "dim_subject_statuses_staging": [
            (
                A,
                None,
                "400|Randomized|2024-03-10T14:30:00",
                {
                    "status": "Randomized",
                    "isCurrentStatus": True,
                    "eventDate": "2024-03-10T14:30:00",
                    "subject": {"Id": 400},
                    "study": {"id": 100},
                },
            ),
        ],
        "dim_providers_staging": [
            (
                A,
                None,
                1400,
                {
                    "id": 1400,
                    "providerName": "Dr. House",
                    "business": False,
                    "providerType": {"id": 1, "name": "PCP"},
                },
            ),
        ],
        "dim_screenings_staging": [],
    }


def rows_round2() -> dict[str, list[tuple[str, Any, Any, dict[str, Any]]]]:
    """The second load: only the rows that changed (upserts on the primary key)."""
    return {
        "dim_studies_staging": [
            (A, None, 100, _study(100, "Study Alpha (amended)", "2024-07-01T12:00:00"))
        ],
        "dim_subjects_staging": [
            (
                A,
                101,
                403,
                {"id": 403, "study": {"id": 101}, "patient": {"id": 200}, "status": "Prescreened"},
            ),
        ],
    }


#: What the marts hold after each round (row counts).
GROUND_TRUTH: dict[int, dict[str, int]] = {
    1: {
        "dim_studies": 3,
        "dim_sites": 3,
        "dim_patients": 4,
        "dim_staff": 2,
        "dim_subjects": 4,
        "dim_visits": 2,
        "dim_elements": 2,
        "dim_study_documents": 1,
        "dim_sponsors": 1,
        "dim_providers": 1,
        "fact_patient_visits": 4,
        "fact_appointments": 4,
        "fact_patient_visit_elements": 4,
        "fact_study_milestones": 2,
        "fact_study_actions": 1,
        "fact_study_notes": 1,
        "fact_queries": 1,
        "fact_subject_statuses": 1,
    },
}
GROUND_TRUTH[2] = {**GROUND_TRUTH[1], "dim_subjects": 5, "dim_patients": 3}


def _ddl(table: str, parent: str | None, camel: bool) -> str:
    q = (
        (lambda n: f'"{n}"')
        if camel
        else (lambda n: "".join("_" + c.lower() if c.isupper() else c for c in n))
    )
    id_type = "text" if table in TEXT_ID else "bigint"
    cols = ["instance_id text not null", f"id {id_type} not null"]
    if parent:
        cols.append(f"{q(parent)} bigint not null")
    cols += [
        f"{q('modifiedDate')} timestamp without time zone",
        "data jsonb",
        "_sdc_extracted_at timestamp without time zone",
        "_sdc_received_at timestamp without time zone",
        "_sdc_batched_at timestamp without time zone",
        "_sdc_deleted_at timestamp without time zone",
        "_sdc_sequence bigint",
        "_sdc_table_version bigint",
        "_sdc_sync_started_at bigint",
    ]
    pk = ["instance_id"] + ([q(parent)] if parent else []) + ["id"]
    return f"create table if not exists {{schema}}.{table} ({', '.join(cols)}, primary key ({', '.join(pk)}))"


def seed(conn, round: int = 1, schema: str = "public", camel: bool = True) -> None:
    """Create the staging tables (round 1) and upsert the round's rows, like target-postgres."""
    q = (
        (lambda n: f'"{n}"')
        if camel
        else (lambda n: "".join("_" + c.lower() if c.isupper() else c for c in n))
    )
    now = datetime(2024, 7, 2, 3, 0, 0) if round == 1 else datetime(2024, 7, 3, 3, 0, 0)
    with conn.cursor() as cur:
        cur.execute(f"create schema if not exists {schema}")
        if round == 1:
            for table, parent in TABLES.items():
                cur.execute(_ddl(table, parent, camel).format(schema=schema))
        data = rows_round1() if round == 1 else rows_round2()
        for table, rows in data.items():
            parent = TABLES[table]
            for instance_id, parent_id, id_, obj in rows:
                modified = obj.get("lastUpdatedOn")
                modified_utc = None
                if modified:  # the tap normalises the change timestamp to UTC (tenant tz: New York)
                    local = datetime.fromisoformat(modified).replace(
                        tzinfo=ZoneInfo("America/New_York")
                    )
                    modified_utc = local.astimezone(timezone.utc).replace(tzinfo=None)
                cols = (
                    ["instance_id", "id"]
                    + ([q(parent)] if parent else [])
                    + [
                        q("modifiedDate"),
                        "data",
                        "_sdc_extracted_at",
                        "_sdc_batched_at",
                        "_sdc_deleted_at",
                        "_sdc_table_version",
                    ]
                )
                vals = (
                    [instance_id, id_]
                    + ([parent_id] if parent else [])
                    + [
                        modified_utc,
                        json.dumps(obj),
                        now,
                        now,
                        None,
                        round,
                    ]
                )
                key = ["instance_id"] + ([q(parent)] if parent else []) + ["id"]
                updates = ", ".join(f"{c} = excluded.{c}" for c in cols if c not in key)
                cur.execute(
                    f"insert into {schema}.{table} ({', '.join(cols)}) values ({', '.join(['%s'] * len(vals))}) "
                    f"on conflict ({', '.join(key)}) do update set {updates}",
                    vals,
                )
        if round == 2:
            # A full reload of patients that no longer returns patient 202: soft-deleted.
            cur.execute(
                f"update {schema}.dim_patients_staging set _sdc_deleted_at = %s "
                "where instance_id = %s and id = 202",
                (now, A),
            )
    conn.commit()


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=timezone.utc)
