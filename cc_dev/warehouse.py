"""Read the staging tables and hold them against the sandbox's ground truth (demo and e2e tests).

Column names are the record's property names as target-postgres writes them (``instance_id``,
``"studyId"``, ``id``, ``"modifiedDate"``, ``data`` JSONB, ``_sdc_*``); table names come from the
loader's stream maps (``Endpoint.staging_table``).
"""

from __future__ import annotations

import datetime as dt
import typing as t
from dataclasses import dataclass, field

from tap_clinical_conductor.catalogue import BY_NAME, CATALOGUE, Endpoint

if t.TYPE_CHECKING:
    import psycopg


def default_streams() -> list[Endpoint]:
    """Streams selected by default (meltano.yml's ``select`` lists exactly these)."""
    return [e for e in CATALOGUE if e.default_selected]


def table_counts(conn: psycopg.Connection, schema: str) -> dict[str, int]:
    """Row count of every table in ``schema``."""
    names = [
        r[0]
        for r in conn.execute(
            "SELECT table_name FROM information_schema.tables "
            "WHERE table_schema = %s AND table_type = 'BASE TABLE' ORDER BY 1",
            (schema,),
        )
    ]
    return {n: conn.execute(f'SELECT count(*) FROM "{schema}"."{n}"').fetchone()[0] for n in names}


def table_exists(conn: psycopg.Connection, schema: str, table: str) -> bool:
    """Whether ``schema.table`` exists."""
    return (
        conn.execute("SELECT to_regclass(%s)", (f'"{schema}"."{table}"',)).fetchone()[0] is not None
    )


def key_columns(endpoint: Endpoint) -> list[str]:
    """The staging table's key: ``instance_id`` [+ parent key] + ``id``."""
    return ["instance_id", *([endpoint.parent_key] if endpoint.parent_key else []), "id"]


def read_rows(
    conn: psycopg.Connection, schema: str, endpoint: Endpoint, *, live: bool = True
) -> list[dict[str, t.Any]]:
    """Rows of the stream's staging table (``[]`` when the table does not exist).

    ``live``: only rows neither marked deleted by the target (``_sdc_deleted_at``) nor retired
    by a later proven complete read (``retired_sql``: the rule of the dbt staging views).
    """
    table = endpoint.staging_table
    if not table_exists(conn, schema, table):
        return []
    cols = ", ".join(f's."{c}"' for c in [*key_columns(endpoint), "data", "_sdc_received_at"])
    where = ""
    if live:
        where = " WHERE s._sdc_deleted_at IS NULL"
        if table_exists(conn, schema, COMPLETE_READS):
            where += f" AND NOT {retired_sql(schema, endpoint)}"
    cur = conn.execute(f'SELECT {cols} FROM "{schema}"."{table}" AS s{where}')
    names = [d.name for d in cur.description]
    return [dict(zip(names, row, strict=True)) for row in cur]


#: The tap's table of proven complete reads (``tap_clinical_conductor.completeness``).
COMPLETE_READS = "cc_complete_reads"


def retired_sql(schema: str, endpoint: Endpoint) -> str:
    """Whether staging row ``s`` was retired by a proven complete read (SQL).

    The rule of ``transform/macros/cc_source.sql`` (``cc_retired``), restated for the checks that
    read the staging tables without dbt (chaos tests, soak, e2e comparisons).
    """
    table = endpoint.staging_table
    key = endpoint.parent_key
    s_parent = f's."{key}"' if key else "NULL::bigint"
    x_parent = f'x."{key}"' if key else "NULL::bigint"
    return f"""EXISTS (
        SELECT 1 FROM "{schema}"."{COMPLETE_READS}" AS c
        WHERE c.staging_table = '{table}' AND c.instance_id = s.instance_id
          AND (c.records > 0 OR c.parent_id IS NOT NULL)
          AND (c.parent_id IS NULL OR c.parent_id = {s_parent})
          AND s._sdc_extracted_at < c.started_at
          AND (c.lower_bound IS NULL OR s."modifiedDate" >= c.lower_bound)
          AND c.records <= (
              SELECT count(*) FROM "{schema}"."{table}" AS x
              WHERE x.instance_id = c.instance_id
                AND (c.parent_id IS NULL OR {x_parent} = c.parent_id)
                AND x._sdc_extracted_at >= c.started_at))"""


def retired_count(conn: psycopg.Connection, schema: str, endpoint: Endpoint) -> int:
    """Staging rows retired by a proven complete read (0 without ``cc_complete_reads``)."""
    table = endpoint.staging_table
    if not (table_exists(conn, schema, table) and table_exists(conn, schema, COMPLETE_READS)):
        return 0
    sql = f'SELECT count(*) FROM "{schema}"."{table}" AS s WHERE {retired_sql(schema, endpoint)}'
    return int(conn.execute(sql).fetchone()[0])


def duplicate_keys(conn: psycopg.Connection, schema: str, endpoint: Endpoint) -> int:
    """Rows beyond the first for any key (0 when keys are unique or the table is missing)."""
    table = endpoint.staging_table
    if not table_exists(conn, schema, table):
        return 0
    cols = ", ".join(f'"{c}"' for c in key_columns(endpoint))
    sql = (
        f'SELECT coalesce(sum(n - 1), 0) FROM (SELECT count(*) n FROM "{schema}"."{table}" '
        f"GROUP BY {cols}) g"
    )
    return int(conn.execute(sql).fetchone()[0])


def expected_rows(sandbox: t.Any, endpoint: Endpoint) -> dict[tuple, t.Any]:
    """The sandbox's truth keyed the way the tap keys records: ``{(parent id,) id: data}``."""
    from tap_clinical_conductor.records import BadRecord, record_key, strip_nul

    try:
        truth = sandbox.truth(endpoint.name)
    except KeyError:  # an endpoint the sandbox does not serve (404/501): no rows
        return {}
    out = {}
    for row in truth:
        item = row["data"]
        try:
            key = record_key(endpoint, row["parent"], item)
        except BadRecord:  # the tap skips (and counts) records it cannot key
            continue
        # The tap's `data`: the API object (a bare string becomes {"value": ...}), minus NULs.
        out[key] = strip_nul(item if isinstance(item, dict) else {"value": item})
    return out


@dataclass
class Comparison:
    """Staging table vs truth for one stream."""

    stream: str
    table: str
    expected: int
    loaded: int
    problems: list[str] = field(default_factory=list)
    #: Rows of the tenant that are in the table but retired: a false deletion.
    falsely_retired: int = 0

    @property
    def ok(self) -> bool:
        """No difference."""
        return not self.problems


def compare(
    conn: psycopg.Connection, schema: str, sandbox: t.Any, endpoint: Endpoint
) -> Comparison:
    """Keys, count and ``data`` of one staging table against the sandbox's truth."""
    want = expected_rows(sandbox, endpoint)
    rows = read_rows(conn, schema, endpoint)
    result = Comparison(endpoint.name, endpoint.staging_table, len(want), len(rows))
    got: dict[tuple, t.Any] = {}
    instances = set()
    for row in rows:
        key = (row[endpoint.parent_key], row["id"]) if endpoint.parent_key else (row["id"],)
        if key in got:
            result.problems.append(f"duplicate key {key}")
        got[key] = row["data"]
        instances.add(row["instance_id"])
    if len(instances) > 1:
        result.problems.append(f"several instance_id values: {sorted(instances)}")
    if rows and not all(instances):
        result.problems.append("empty instance_id")
    missing = want.keys() - got.keys()
    if missing and table_exists(conn, schema, COMPLETE_READS):
        stored = {
            (r[endpoint.parent_key], r["id"]) if endpoint.parent_key else (r["id"],)
            for r in read_rows(conn, schema, endpoint, live=False)
        }
        result.falsely_retired = len(missing & stored)
        if result.falsely_retired:
            result.problems.append(f"{result.falsely_retired} live rows retired (false deletes)")
    extra = got.keys() - want.keys()
    if missing:
        result.problems.append(f"{len(missing)} keys missing, e.g. {sorted(missing, key=str)[:3]}")
    if extra:
        result.problems.append(
            f"{len(extra)} keys not in the tenant, e.g. {sorted(extra, key=str)[:3]}"
        )
    differ = [k for k in want.keys() & got.keys() if want[k] != got[k]]
    if differ:
        k = sorted(differ, key=str)[0]
        result.problems.append(
            f"{len(differ)} rows with other data, e.g. {k}: loaded {str(got[k])[:200]} "
            f"expected {str(want[k])[:200]}"
        )
    return result


def compare_all(
    conn: psycopg.Connection,
    schema: str,
    sandbox: t.Any,
    streams: t.Iterable[Endpoint | str] | None = None,
) -> list[Comparison]:
    """:func:`compare` for every stream (default: the default selection)."""
    chosen = [BY_NAME[s] if isinstance(s, str) else s for s in (streams or default_streams())]
    return [compare(conn, schema, sandbox, e) for e in chosen]


def rows_written_since(conn: psycopg.Connection, schema: str, since: dt.datetime) -> dict[str, int]:
    """Per table, rows that target-postgres wrote or rewrote after ``since`` (UTC, naive)."""
    out = {}
    for table in table_counts(conn, schema):
        sql = f'SELECT count(*) FROM "{schema}"."{table}" WHERE _sdc_received_at >= %s'
        try:
            out[table] = conn.execute(sql, (since,)).fetchone()[0]
        except Exception:  # noqa: BLE001 - a table without _sdc_ columns
            out[table] = 0
    return out


def format_table(rows: list[tuple], headers: tuple[str, ...]) -> str:
    """A plain fixed-width text table."""
    cells = [tuple(str(c) for c in headers), *[tuple(str(c) for c in r) for r in rows]]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]

    def line(r: tuple[str, ...]) -> str:
        return "  ".join(
            c.rjust(w) if i and c.replace(",", "").replace(".", "").isdigit() else c.ljust(w)
            for i, (c, w) in enumerate(zip(r, widths, strict=True))
        ).rstrip()

    sep = "  ".join("-" * w for w in widths)
    return "\n".join([line(cells[0]), sep, *[line(r) for r in cells[1:]]])


def mart_summary(conn: psycopg.Connection, schema: str) -> list[tuple[str, int, str]]:
    """The dbt marts of ``schema`` and their row counts, and the history views' versions.

    Returns ``[(name, rows, note), ...]``: tables (note empty), then the Type 2 ``*_history``
    views (note: current and closed versions). Empty if dbt never ran.
    """
    out: list[tuple[str, int, str]] = []
    for name, kind in conn.execute(
        "SELECT table_name, table_type FROM information_schema.tables "
        "WHERE table_schema = %s ORDER BY table_type, table_name",
        (schema,),
    ).fetchall():
        relation = f'"{schema}"."{name}"'
        if kind == "BASE TABLE":
            (rows,) = conn.execute(f"SELECT count(*) FROM {relation}").fetchone()
            out.append((name, rows, ""))
        elif name.endswith("_history"):
            rows, current = conn.execute(
                f"SELECT count(*), count(*) FILTER (WHERE is_current) FROM {relation}"
            ).fetchone()
            out.append((name, rows, f"versions, {current:,} current, {rows - current:,} closed"))
    return out
