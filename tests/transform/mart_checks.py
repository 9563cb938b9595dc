"""Compare the dbt marts with a ground truth of API records (e.g. cc_sandbox's truth).

For the e2e test (after `dbt build`, after the first load and again after an incremental run)::

    from mart_checks import MART_STREAMS, check_marts
    problems = check_marts(conn, truth=lambda stream: sandbox.truth(stream), tz="America/New_York")
    assert not problems, problems

``truth(stream)`` returns ``[{"data": {...}}, ...]``: the current records of a stream as the API
serves them (``cc_sandbox.Sandbox.truth`` has that shape). Independent of cc_dev and of the sandbox.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any
from zoneinfo import ZoneInfo

#: mart -> (stream, key column). Row counts of each mart equal the stream's current record count.
MART_STREAMS: dict[str, tuple[str, str]] = {
    "dim_studies": ("studies", "study_id"),
    "dim_sites": ("sites", "site_id"),
    "dim_patients": ("patients", "patient_id"),
    "dim_staff": ("staff", "staff_id"),
    "dim_subjects": ("subjects", "subject_id"),
    "dim_visits": ("visits", "visit_id"),
    "dim_elements": ("elements", "element_id"),
    "dim_study_documents": ("study_documents", "study_document_id"),
    "dim_sponsors": ("sponsors", "sponsor_id"),
    "dim_providers": ("providers", "provider_id"),
    "fact_patient_visits": ("patient_visits", "patient_visit_id"),
    "fact_appointments": ("appointments", "appointment_id"),
    "fact_patient_visit_elements": ("patient_visit_elements", "patient_visit_element_id"),
    "fact_study_milestones": ("study_milestones", "study_milestone_id"),
    "fact_study_actions": ("study_actions", "study_action_id"),
    "fact_study_notes": ("study_notes", "study_note_id"),
    "fact_queries": ("queries", "query_id"),
    "fact_subject_statuses": ("subject_statuses", "subject_status_id"),
}

#: mart -> [(column, path in the API record, kind)] checked record by record.
TYPED_COLUMNS: dict[str, list[tuple[str, tuple[str, ...], str]]] = {
    "dim_studies": [
        ("study_name", ("name",), "text"),
        ("status", ("status",), "text"),
        ("sponsor_id", ("sponsor", "id"), "int"),
        ("created_at", ("createdOn",), "ts"),
        ("last_updated_at", ("lastUpdatedOn",), "ts"),
    ],
    "dim_subjects": [
        ("study_id", ("study", "id"), "int"),
        ("patient_id", ("patient", "id"), "int"),
        ("status", ("status",), "text"),
    ],
    "fact_patient_visits": [
        ("subject_id", ("subject", "Id"), "int"),
        ("status", ("status",), "text"),
        ("target_due_at", ("targetDueDate",), "ts"),
    ],
    "fact_appointments": [
        ("status", ("status",), "text"),
        ("planned_start_at", ("plannedStart",), "ts"),
    ],
}

SCHEMA = "analytics"


def to_instant(value: str | None, tz: str) -> datetime | None:
    """What the marts should hold for an API datetime string (naive = tenant-local)."""
    if not value:
        return None
    text = value.strip().replace("Z", "+00:00")
    if "." in text:  # .NET sends up to 7 fractional digits; PostgreSQL keeps microseconds
        head, _, frac = text.partition(".")
        digits = "".join(ch for ch in frac if ch.isdigit())
        rest = frac[len(digits) :]
        micro = round(int((digits + "000000")[:7]) / 10)
        seconds = datetime.fromisoformat(head + rest)
        if micro >= 1_000_000:  # rounding up to the next second
            from datetime import timedelta

            seconds += timedelta(seconds=1)
            micro -= 1_000_000
        parsed = seconds.replace(microsecond=micro)
    else:
        parsed = datetime.fromisoformat(text)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=ZoneInfo(tz))
    return parsed.astimezone(timezone.utc)


def _dig(record: dict[str, Any], path: tuple[str, ...]) -> Any:
    node: Any = record
    for part in path:
        if not isinstance(node, dict):
            return None
        node = node.get(part, node.get(part[:1].swapcase() + part[1:]))
    return node


def check_marts(
    conn: Any,
    truth: Callable[[str], list[dict[str, Any]]],
    tz: str = "UTC",
    schema: str = SCHEMA,
    marts: list[str] | None = None,
) -> list[str]:
    """Problems found (empty list = the marts match the truth). ``conn`` is a psycopg connection."""
    problems: list[str] = []
    for mart in marts or list(MART_STREAMS):
        stream, key = MART_STREAMS[mart]
        records = [r["data"] for r in truth(stream)]
        (count,) = conn.execute(f"select count(*) from {schema}.{mart}").fetchone()
        if count != len(records):
            problems.append(f"{mart}: {count} rows, truth has {len(records)} {stream}")
        checks = TYPED_COLUMNS.get(mart)
        if not checks:
            continue
        cols = ", ".join(c for c, _, _ in checks)
        rows = {r[0]: r[1:] for r in conn.execute(f"select {key}, {cols} from {schema}.{mart}")}
        for rec in records:
            got = rows.get(rec["id"])
            if got is None:
                problems.append(f"{mart}: id {rec['id']} missing")
                continue
            for (col, path, kind), value in zip(checks, got, strict=True):
                raw = _dig(rec, path)
                want = to_instant(raw, tz) if kind == "ts" else raw
                # PostgreSQL rounds a 7th fractional digit through a double: allow 1 µs.
                close = kind == "ts" and want is not None and value is not None
                if close and abs((want - value).total_seconds()) <= 1e-6:
                    continue
                if want != value:
                    problems.append(f"{mart} id {rec['id']}: {col} = {value!r}, expected {want!r}")
    return problems
