"""The fake tenant: deterministic data, its clock, and the mutations tests drive.

Every table is generated from the seed alone, so the same seed gives the same tenant. Records are
built from the OpenAPI model field lists in ``schemas.py``; relationships are real (a subject's
``study`` is the study it is listed under, a patient visit's ``subject`` is a subject of that
study, ...). Tables are copy-on-write: a mutation builds a new row list under the tenant lock and
swaps it in, so readers take a reference without locking and never see half a change.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import random
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from cc_sandbox import endpoints as ep
from cc_sandbox.schemas import MODELS
from cc_sandbox.timefmt import format_local, format_utc

#: 2026-01-01T00:00:00Z: where every tenant clock starts, so runs are reproducible.
CLOCK_START = 1_767_225_600.0
_DAY = 86_400
_YEAR = 365 * _DAY
#: Every table gets at least this many rows, however small the scale.
MIN_ROWS = 5
PROFILES = ("spec", "plan")
#: Ways :meth:`Tenant.corrupt` breaks a served record (see its docstring).
CORRUPTIONS = ("no_id", "null_id", "string_id", "nul_chars", "huge", "bad_timestamp")
#: Size of the text a ``huge`` corruption adds (bytes).
HUGE_BYTES = 1_500_000

#: Preview models that point at a record of another table (copied from it, not invented).
REF_TABLES: dict[str, str] = {
    "StudyPreviewModel": "studies",
    "SitePreviewModel": "sites",
    "PatientPreviewModel": "patients",
    "PatientDemographicsViewModel": "patients",
    "SubjectPreviewModel": "subjects",
    "VisitPreviewModel": "visits",
    "StaffPreviewModel": "staff",
    "SponsorPreviewModel": "sponsors",
    "SponsorDivisionPreviewModel": "sponsor_divisions",
    "SponsorTeamPreviewModel": "sponsor_teams",
    "OrganizationPreviewModel": "system_organizations",
    "StudyArmPreviewModel": "study_arms",
    "ProtocolVersionPreviewModel": "study_protocol_versions",
    "MonitorPreviewModel": "monitors",
    "ElementPreviewModel": "elements",
    "ActionCategoryPreviewModel": "system_action_categories",
    "DocumentTypePreviewModel": "system_document_types",
    "SchedulePreviewModel": "schedules",
}

#: Tables generated first because others copy from them; the rest follow in endpoint order.
_FIRST = (
    "system_organizations", "system_action_categories", "system_document_types", "sites", "staff",
    "sponsors", "sponsor_divisions", "sponsor_teams", "monitors", "schedules", "studies",
    "patients", "visits", "study_arms", "study_protocol_versions", "elements", "subjects",
    "patient_visits",
)

#: Fields a mutation rewrites, in order of preference; never names or keys that others copy.
_MUTABLE = (
    "comment", "narrative", "note", "statusReason", "description", "address1", "query", "tag1",
    "tag", "profession", "source", "checkNumber", "email",
)

_FIRST_NAMES = ("Ana", "Ben", "Chloe", "Dev", "Eli", "Fatima", "Gus", "Hana", "Ivan", "June",
                "Kofi", "Lena", "Marco", "Nia", "Omar", "Priya", "Quinn", "Rosa", "Sam", "Tariq")
_LAST_NAMES = ("Adams", "Brooks", "Chen", "Diaz", "Evans", "Fischer", "Garcia", "Haddad", "Ito",
               "Jones", "Kim", "Lopez", "Moreau", "Nguyen", "Okafor", "Patel", "Rossi", "Silva")
_WORDS = ("alpha", "beta", "cardio", "derm", "endo", "gastro", "hepato", "immuno", "neuro",
          "onco", "pulmo", "renal", "vaso", "ortho", "psych", "rheum")
_RACES = ("White", "Black or African American", "Asian", "American Indian", "Other")
_ETHNICITIES = ("Hispanic or Latino", "Not Hispanic or Latino", "Unknown")
_STATUSES = ("Active", "Inactive", "Pending", "Closed", "Completed")


@dataclass
class Row:
    """One record.

    Attributes:
        rid: Internal id, unique in its table; the record's id field when the model has one.
        parent: Parent id for child tables, else ``None``.
        base: The record without its change field (a dict, or a string for lookup lists).
        changed: Instant of the last change (POSIX seconds), the source of any change field.
        links: Ids of related records by table (``{"studies": 12, "patients": 40}``).
        original: True while the record is as generated (never updated, not inserted later).
        cache: ``(render generation, served dict, served JSON bytes)`` or ``None``.
    """

    rid: int
    parent: int | None
    base: Any
    changed: float
    links: dict[str, int]
    original: bool = True
    cache: tuple[int, Any, bytes] | None = None


class Table:
    """The rows of one endpoint, copy-on-write.

    Attributes:
        spec: The endpoint the rows belong to.
        rows: Rows in insertion order (ids ascending).
        version: Bumped on every mutation; query caches key on it.
    """

    def __init__(self, spec: ep.EndpointSpec, rows: list[Row]) -> None:
        self.spec = spec
        self.rows = rows
        self.version = 0
        self._by_id: dict[int, Row] | None = None
        self._by_parent: dict[int, list[Row]] | None = None

    def replace(self, rows: list[Row]) -> None:
        """Swap in a new row list (callers hold the tenant lock)."""
        self.rows = rows
        self.version += 1
        self._by_id = None
        self._by_parent = None

    def by_id(self) -> dict[int, Row]:
        """Rows by id (built lazily; rebuilt after a mutation)."""
        index = self._by_id
        if index is None:
            index = {r.rid: r for r in self.rows}
            self._by_id = index
        return index

    def by_parent(self) -> dict[int, list[Row]]:
        """Rows grouped by parent id, each group in insertion order."""
        index = self._by_parent
        if index is None:
            index = {}
            for row in self.rows:
                if row.parent is not None:
                    index.setdefault(row.parent, []).append(row)
            self._by_parent = index
        return index

    def next_id(self) -> int:
        """An id above every id this table has held."""
        return (self.rows[-1].rid if self.rows else 0) + 1


class Tenant:
    """A Clinical Conductor tenant: tables, a clock, and change operations. Thread-safe.

    Args:
        scale: Fraction of the reference tenant's row counts (1.0 = the real tenant).
        seed: Seed of every random choice; the same seed gives the same data.
        profile: ``spec`` (change field only on studies) or ``plan`` (``modifiedDate`` everywhere).
        tenant_timezone: IANA zone of the naive local datetimes the tenant serves.
        overrides: Per-endpoint overrides (only ``change_field`` matters to the data).
    """

    def __init__(
        self,
        scale: float = 0.001,
        seed: int = 7,
        profile: str = "spec",
        tenant_timezone: str = "America/New_York",
        overrides: dict[str, dict[str, Any]] | None = None,
    ) -> None:
        if profile not in PROFILES:
            raise ValueError(f"unknown profile {profile!r}; expected one of {PROFILES}")
        self.scale = scale
        self.seed = seed
        self.profile = profile
        self.tz = tenant_timezone
        self.clock = CLOCK_START
        self.lock = threading.RLock()
        self.render_gen = 0
        self._overrides: dict[str, dict[str, Any]] = {}
        self._change_fields: dict[str, tuple[tuple[str, str], ...]] = {}
        self._mut_rng = random.Random(f"{seed}:mutations")
        self._mutations = 0
        self.tables: dict[str, Table] = {}
        self.previews: dict[tuple[str, str, int], dict[str, Any]] = {}
        self._study_index: tuple[Any, dict[int, list[int]]] = (None, {})
        #: Corrupted records: source table -> {rid: kind} (see ``corrupt``).
        self._corrupted: dict[str, dict[int, str]] = {}
        self._generate()
        self.set_overrides(overrides or {})

    # ----------------------------------------------------------------------------------- config

    def set_overrides(self, overrides: dict[str, dict[str, Any]]) -> None:
        """Replace the per-endpoint overrides and re-render records where it matters."""
        with self.lock:
            self._overrides = {k: dict(v) for k, v in overrides.items()}
            self._change_fields = {name: self._compute_change_fields(name) for name in self.tables}
            self.render_gen += 1

    def override(self, name: str) -> dict[str, Any]:
        """The overrides of endpoint ``name`` (empty when none)."""
        return self._overrides.get(name, {})

    def _compute_change_fields(self, table: str) -> tuple[tuple[str, str], ...]:
        # A change field is (name, style); lastUpdatedOn is a spec field and stays tenant-local.
        over = self._overrides.get(table, {})
        utc = "utc" if self.profile == "plan" else "local"
        if "change_field" in over:
            name = over["change_field"]
            if not name:
                return ()
            return ((name, "local" if name == "lastUpdatedOn" else utc),)
        fields: list[tuple[str, str]] = []
        if table == "studies":
            fields.append(("lastUpdatedOn", "local"))
        if self.profile == "plan":
            fields.append(("modifiedDate", "utc"))
        return tuple(fields)

    def change_fields(self, table: str) -> tuple[str, ...]:
        """Names of the change-timestamp fields endpoint ``table`` serves (maybe none)."""
        source = ep.BY_NAME[table].source
        return tuple(name for name, _ in self._change_fields.get(source, ()))

    # ---------------------------------------------------------------------------------- reading

    def field_type(self, name: str, path: str) -> str | None:
        """Type code of property ``path`` (``study/id``) of endpoint ``name``'s records.

        Returns:
            A code from ``schemas.py`` (``dt`` for change fields), or ``None`` when the model has
            no such property.
        """
        if path in self.change_fields(name):
            return "dt"
        model = ep.BY_NAME[name].model
        parts = path.split("/")
        code: str | None = None
        for i, part in enumerate(parts):
            code = _fields(model).get(part)
            if code is None:
                return None
            if i < len(parts) - 1:
                if not code.startswith("@"):
                    return None
                model = code[1:]
        return code

    def table(self, name: str) -> Table:
        """The table that serves endpoint ``name`` (twins share their source's table)."""
        return self.tables[ep.BY_NAME[name].source]

    def rows_for(self, name: str, parent_id: int | None) -> list[Row] | None:
        """Rows endpoint ``name`` serves, for ``parent_id`` on per-parent paths.

        Returns:
            The rows, or ``None`` when the parent does not exist (the server answers 404).
        """
        spec = ep.BY_NAME[name]
        table = self.tables[spec.source]
        if spec.parent is None or spec.same_as:
            return table.rows
        assert parent_id is not None
        if parent_id not in self.tables[spec.parent[0]].by_id():
            return None
        return table.by_parent().get(parent_id, [])

    def parent_exists(self, kind: str, parent_id: int) -> bool:
        """Whether a parent of ``kind`` (``study``/``patient``/``patient_visit``) exists."""
        return parent_id in self.tables[ep.PARENT_OF[kind][0]].by_id()

    def render(self, table: str, row: Row) -> tuple[Any, bytes]:
        """The record as served (with its change fields) and its JSON bytes, cached per row."""
        cache = row.cache
        gen = self.render_gen
        if cache is not None and cache[0] == gen:
            return cache[1], cache[2]
        fields = self._change_fields.get(table, ())
        doc = row.base
        if fields and isinstance(doc, dict):
            doc = dict(doc)
            for name, style in fields:
                doc[name] = self._format_change(row, style)
        served = doc
        kind = self._corrupted.get(table, {}).get(row.rid) if self._corrupted else None
        if kind is not None:
            # Only the bytes on the wire are broken: filters and $orderby keep seeing the
            # stored values, as when a server serialises a sound row badly.
            served = _corrupted(doc, kind, table, self._change_fields.get(table, ()), row.rid)
        blob = json.dumps(served, separators=(",", ":"), ensure_ascii=False).encode()
        row.cache = (gen, doc, blob)
        return doc, blob

    def _format_change(self, row: Row, style: str) -> str:
        if style == "local":
            return format_local(row.changed, self.tz, self._fraction(row))
        # Spellings vary by record so that a client must normalise, as on live tenants.
        return format_utc(row.changed, row.rid % 7 % 3)

    @staticmethod
    def _fraction(row: Row) -> str:
        # Seven .NET digits on some records; the seventh is 0 so the value round-trips exactly.
        micro = round((row.changed % 1) * 1_000_000)
        return f"{micro:06d}0" if micro else ""

    def truth(self, name: str) -> list[dict[str, Any]]:
        """The full current dataset of endpoint ``name`` as the API serves it.

        Returns:
            ``[{"parent": {"studyId": 12}, "data": {...}}, ...]`` in insertion order; the parent
            map is empty for top-level endpoints (and for the top-level twins); empty for
            endpoints that answer 404/501.
        """
        spec = ep.BY_NAME[name]
        if spec.status != 200 or self.override(name).get("status", 200) != 200:
            return []
        table = self.tables[spec.source]
        key = spec.parent[1] if spec.parent and not spec.same_as else None
        out = []
        for row in table.rows:
            _, blob = self.render(spec.source, row)
            parent = {key: row.parent} if key else {}
            out.append({"parent": parent, "data": json.loads(blob)})
        return out

    # ------------------------------------------------------------------------------- generation

    def _count(self, spec: ep.EndpointSpec) -> int:
        if spec.fixed:
            return spec.fixed
        if spec.total:
            return max(MIN_ROWS, round(spec.total * self.scale))
        assert spec.parent is not None
        parents = len(self.tables[spec.parent[0]].rows)
        return max(MIN_ROWS, round(spec.per_parent * parents))

    def _generate(self) -> None:
        order = [ep.BY_NAME[n] for n in _FIRST]
        order += [t for t in ep.TABLES if t.name not in _FIRST]
        for spec in order:
            rng = random.Random(f"{self.seed}:{spec.name}")
            rows: list[Row] = []
            rid = 0
            for _ in range(self._count(spec)):
                rid += 1 if rng.random() < 0.8 else rng.randint(2, 4)  # ids have gaps, as in SQL
                changed = CLOCK_START - rng.randrange(_DAY, 4 * _YEAR)
                if rng.random() < 0.1:
                    changed += rng.randrange(1, 1_000_000) / 1_000_000
                rows.append(self._make_row(spec, rid, changed, rng, parent_id=None))
            # Registered only once complete: lazily built indexes must not see a partial table.
            self.tables[spec.name] = Table(spec, rows)

    def _pick(self, table: str, rng: random.Random, ids: Iterable[int] | None = None) -> Row | None:
        rows = self.tables[table].rows if table in self.tables else []
        if ids is not None:
            index = self.tables[table].by_id()
            rows = [index[i] for i in ids if i in index]
        return rng.choice(rows) if rows else None

    def _children(self, table: str, parent_id: int | None) -> list[int] | None:
        if table not in self.tables or parent_id is None:
            return None
        return [r.rid for r in self.tables[table].by_parent().get(parent_id, [])]

    def _anchor(
        self, spec: ep.EndpointSpec, rng: random.Random, parent_id: int | None
    ) -> tuple[int | None, dict[str, int]]:
        """Choose the parent and related records of a new row, consistently."""
        links: dict[str, int] = {}
        parent: Row | None = None
        if spec.parent is not None:
            ptable = spec.parent[0]
            if parent_id is not None:
                parent = self.tables[ptable].by_id().get(parent_id)
            else:
                parent = self._pick(ptable, rng)
            if parent is None:
                raise ValueError(f"no {ptable} to put a {spec.name} record under")
            links[ptable] = parent.rid
            links.update({k: v for k, v in parent.links.items() if k not in links})
        name = spec.name
        if name in ("subjects",):
            for table in ("patients", "sites"):
                row = self._pick(table, rng)
                if row:
                    links[table] = row.rid
        elif name in ("patient_visits", "appointments", "subject_statuses"):
            subject = self._pick("subjects", rng)
            if subject:
                links["subjects"] = subject.rid
                links.update({k: v for k, v in subject.links.items() if k not in links})
        elif name == "patient_visit_elements" and parent is not None:
            element = self._pick("elements", rng, self._children_of_study("elements", links))
            if element:
                links["elements"] = element.rid
        if "studies" in links:
            for table in ("visits", "study_arms", "study_protocol_versions"):
                if table == name:
                    continue
                ids = self._children(table, links["studies"])
                row = self._pick(table, rng, ids) if ids else None
                if row:
                    links[table] = row.rid
        return (parent.rid if parent else None), links

    def _children_of_study(self, table: str, links: dict[str, int]) -> list[int] | None:
        study = links.get("studies")
        if study is None or table not in self.tables:
            return None
        t = self.tables[table]
        key = (table, t.version, id(t))
        if self._study_index[0] != key:
            index: dict[int, list[int]] = {}
            for r in t.rows:
                if "studies" in r.links:
                    index.setdefault(r.links["studies"], []).append(r.rid)
            self._study_index = (key, index)
        return self._study_index[1].get(study)

    def _make_row(
        self,
        spec: ep.EndpointSpec,
        rid: int,
        changed: float,
        rng: random.Random,
        parent_id: int | None,
    ) -> Row:
        parent, links = self._anchor(spec, rng, parent_id)
        if not spec.model:  # lookup lists: a list of names
            return Row(rid, parent, f"{rng.choice(_WORDS).title()} list {rid}", changed, links)
        gen = _Gen(self, rng, links)
        base = gen.model(spec.model, 0, rid, changed)
        if spec.name == "studies":
            base.pop("lastUpdatedOn", None)  # served from ``changed`` as a change field
            base["createdOn"] = format_local(changed - rng.randrange(0, 2 * _YEAR), self.tz)
        _FIXUPS.get(spec.name, _no_fixup)(self, base, links)
        for name, _ in self._compute_change_fields(spec.name):
            base.pop(name, None)
        return Row(rid, parent, base, changed, links)

    def label(self, table: str, rid: int) -> str:
        """A record's display name, as previews of it show."""
        row = self.tables[table].by_id().get(rid) if table in self.tables else None
        if row is None or not isinstance(row.base, dict):
            return f"{table} {rid}"
        base = row.base
        for key in ("name", "Name", "displayName", "RoleName"):
            if base.get(key):
                return str(base[key])
        if table == "subjects":
            patient = row.links.get("patients")
            return self.label("patients", patient) if patient else f"Subject {rid}"
        return f"{table} {rid}"

    # -------------------------------------------------------------------------------- mutations

    def advance_clock(self, seconds: float) -> float:
        """Move the tenant clock forward; returns the new instant (POSIX seconds)."""
        with self.lock:
            self.clock += seconds
            return self.clock

    def _table_for_mutation(self, endpoint: str) -> Table:
        spec = ep.BY_NAME.get(endpoint)
        if spec is None or spec.source not in self.tables:
            raise KeyError(f"no data endpoint named {endpoint!r}")
        return self.tables[spec.source]

    def update(
        self,
        endpoint: str,
        n: int = 1,
        *,
        same_timestamp: bool = False,
        backdate_seconds: float = 0.0,
        ids: list[int] | None = None,
    ) -> list[int]:
        """Change ``n`` records (or ``ids``): one field, and the change instant.

        Each record is stamped one second after the previous at the tenant clock, which moves
        past the last stamp; ``same_timestamp`` stamps them all alike, ``backdate_seconds``
        stamps them in the past (a late-arriving change).

        Returns:
            The ids of the changed records.
        """
        with self.lock:
            table = self._table_for_mutation(endpoint)
            chosen = self._choose(table, n, ids)
            self._mutations += 1
            start = self.clock - backdate_seconds
            changes: dict[int, Row] = {}
            for k, row in enumerate(chosen):
                stamp = start if same_timestamp else start + k
                changes[row.rid] = Row(
                    row.rid, row.parent, self._changed_base(row.base), stamp, row.links, False
                )
            self.clock = max(self.clock, start + (0 if same_timestamp else len(chosen) - 1)) + 1
            table.replace([changes.get(r.rid, r) for r in table.rows])
            return [r.rid for r in chosen]

    def _changed_base(self, base: Any) -> Any:
        text = f"updated #{self._mutations} at {format_local(self.clock, self.tz)}"
        if not isinstance(base, dict):
            return f"{base} ({text})"
        new = dict(base)
        for key in _MUTABLE:
            if key in new and (new[key] is None or isinstance(new[key], str)):
                new[key] = text
                break
        return new

    def _choose(self, table: Table, n: int, ids: list[int] | None) -> list[Row]:
        if ids is not None:
            index = table.by_id()
            missing = [i for i in ids if i not in index]
            if missing:
                raise KeyError(f"{table.spec.name} has no ids {missing}")
            return [index[i] for i in ids]
        rows = table.rows
        picked = sorted(self._mut_rng.sample(range(len(rows)), min(n, len(rows))))
        return [rows[i] for i in picked]

    def insert(
        self,
        endpoint: str,
        n: int = 1,
        *,
        under: str = "any",
        parent_ids: list[int] | None = None,
    ) -> list[int]:
        """Add ``n`` records stamped at the tenant clock.

        Args:
            endpoint: Endpoint name.
            n: Number of records.
            under: For child endpoints: ``old`` puts them under parents that are unchanged since
                generation (their change field does not move), ``new`` under parents inserted
                or updated since, ``any`` anywhere.
            parent_ids: Explicit parents (cycled through), instead of ``under``.

        Returns:
            The ids of the new records.
        """
        with self.lock:
            table = self._table_for_mutation(endpoint)
            spec = table.spec
            candidates: list[int] | None = parent_ids
            if spec.parent is not None and candidates is None:
                prows = self.tables[spec.parent[0]].rows
                if under == "old":
                    prows = [r for r in prows if r.original]
                elif under == "new":
                    prows = [r for r in prows if not r.original]
                candidates = [r.rid for r in prows]
                if not candidates:
                    raise ValueError(f"no {under} parents to insert {endpoint} under")
            rows = list(table.rows)
            new_ids = []
            for k in range(n):
                pid = None
                if candidates is not None:
                    pid = (candidates[k % len(candidates)] if parent_ids
                           else self._mut_rng.choice(candidates))
                rid = (rows[-1].rid if rows else 0) + 1
                row = self._make_row(spec, rid, self.clock, self._mut_rng, pid)
                row.original = False
                rows.append(row)
                new_ids.append(rid)
            self.clock += 1
            table.replace(rows)
            return new_ids

    def delete(self, endpoint: str, n: int = 1, *, ids: list[int] | None = None) -> list[int]:
        """Remove ``n`` records (or ``ids``), and the records listed under them by path.

        Returns:
            The ids of the removed records (not of cascaded children).
        """
        with self.lock:
            table = self._table_for_mutation(endpoint)
            gone = {r.rid for r in self._choose(table, n, ids)}
            table.replace([r for r in table.rows if r.rid not in gone])
            for child in self.tables.values():
                if child.spec.parent and child.spec.parent[0] == table.spec.name:
                    child.replace([r for r in child.rows if r.parent not in gone])
            return sorted(gone)

    def corrupt(
        self, endpoint: str, kind: str, n: int = 1, *, ids: list[int] | None = None
    ) -> list[int]:
        r"""Make ``n`` records (or ``ids``) arrive broken, for bad-data tests.

        Kinds (the record's stored values, its change instant and filters are unchanged; only
        what is served, and so ``truth``, is broken):

        * ``no_id``: the id field is missing; ``null_id``: it is ``null``;
        * ``string_id``: the numeric id is served as a string (``"123"``);
        * ``nul_chars``: NUL (``\\u0000`` in the JSON) inside the first top-level string and
          inside every string of nested objects and lists;
        * ``huge``: a free-text field (or ``description``) holds ``HUGE_BYTES`` of text;
        * ``bad_timestamp``: every change field reads ``31/12/2025 23:59:60 (local)``.

        The corruption stays when the record is updated, until ``corrupt(kind="none")``.

        Returns:
            The ids of the corrupted records.
        """
        if kind not in (*CORRUPTIONS, "none"):
            raise ValueError(f"unknown corruption {kind!r}; expected one of {CORRUPTIONS}")
        with self.lock:
            table = self._table_for_mutation(endpoint)
            chosen = {r.rid for r in self._choose(table, n, ids)}
            marks = self._corrupted.setdefault(table.spec.name, {})
            for rid in chosen:
                if kind == "none":
                    marks.pop(rid, None)
                else:
                    marks[rid] = kind
            # Fresh row objects: their render caches are empty and query caches see a new version.
            table.replace(
                [dataclasses.replace(r, cache=None) if r.rid in chosen else r for r in table.rows]
            )
            return sorted(chosen)

    def corrupted(self, endpoint: str) -> dict[int, str]:
        """Corrupted records of ``endpoint``'s table: ``{id: kind}``."""
        return dict(self._corrupted.get(self._table_for_mutation(endpoint).spec.name, {}))

    def mutate(self, action: str, endpoint: str, **kwargs: Any) -> list[int]:
        """Run ``update``, ``insert``, ``delete`` or ``corrupt`` by name (admin API, schedules)."""
        operations: dict[str, Callable[..., list[int]]] = {
            "update": self.update,
            "insert": self.insert,
            "delete": self.delete,
            "corrupt": self.corrupt,
        }
        if action not in operations:
            raise ValueError(
                f"unknown action {action!r}; expected update, insert, delete or corrupt"
            )
        return operations[action](endpoint, **kwargs)


def _corrupted(
    doc: Any, kind: str, table: str, change_fields: tuple[tuple[str, str], ...], rid: int
) -> Any:
    """A broken copy of the served record ``doc`` (see :meth:`Tenant.corrupt`)."""
    if not isinstance(doc, dict):
        return doc
    out = dict(doc)
    id_field = ep.BY_NAME[table].id_field or "id"
    if kind == "no_id":
        out.pop(id_field, None)
    elif kind == "null_id":
        out[id_field] = None
    elif kind == "string_id":
        if out.get(id_field) is not None:
            out[id_field] = str(out[id_field])
    elif kind == "nul_chars":
        first = next((k for k, v in out.items() if isinstance(v, str) and v), None)
        if first is not None:
            out[first] = _with_nul(out[first])
        out = {k: (_nul_nested(v) if isinstance(v, (dict, list)) else v) for k, v in out.items()}
    elif kind == "huge":
        key = next((k for k in _MUTABLE if k in out), "description")
        words = " ".join(_WORDS)
        out[key] = (f"huge record {rid}: " + words * (HUGE_BYTES // len(words) + 1))[:HUGE_BYTES]
    elif kind == "bad_timestamp":
        for name, _style in change_fields:
            if name in out:
                out[name] = "31/12/2025 23:59:60 (local)"
    return out


def _with_nul(text: str) -> str:
    middle = len(text) // 2
    return f"{text[:middle]}\x00{text[middle:]}"


def _nul_nested(value: Any) -> Any:
    if isinstance(value, str):
        return _with_nul(value)
    if isinstance(value, dict):
        return {k: _nul_nested(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_nul_nested(v) for v in value]
    return value


@functools.lru_cache(maxsize=512)
def _fields(model: str) -> dict[str, str]:
    """A model's fields as a dict (cached: filters look types up on every request)."""
    return dict(MODELS.get(model, ()))


def _no_fixup(tenant: Tenant, base: dict[str, Any], links: dict[str, int]) -> None:
    """Leave a generated record as it is."""


def _fix_patient_visit(tenant: Tenant, base: dict[str, Any], links: dict[str, int]) -> None:
    """Point a patient visit at a visit of its study."""
    visit = links.get("visits")
    if visit is not None:
        base["visitId"] = visit
        base["visitName"] = tenant.label("visits", visit)


def _fix_visit_element(tenant: Tenant, base: dict[str, Any], links: dict[str, int]) -> None:
    """Point a patient visit element at an element of its study."""
    element = links.get("elements")
    if element is not None:
        base["elementId"] = element
        base["name"] = tenant.label("elements", element)


def _fix_stipend(tenant: Tenant, base: dict[str, Any], links: dict[str, int]) -> None:
    """Give a stipend its patient visit's id."""
    base["patientVisitId"] = links.get("patient_visits")


def _fix_subject_status(tenant: Tenant, base: dict[str, Any], links: dict[str, int]) -> None:
    """Keep the key (subject, status, event date) of subject statuses set."""
    base["status"] = base.get("status") or "Screened"
    base["eventDate"] = base.get("eventDate") or format_local(CLOCK_START - _YEAR, tenant.tz)


_FIXUPS: dict[str, Callable[[Tenant, dict[str, Any], dict[str, int]], None]] = {
    "patient_visits": _fix_patient_visit,
    "patient_visit_elements": _fix_visit_element,
    "patient_visit_stipends": _fix_stipend,
    "subject_statuses": _fix_subject_status,
}


class _Gen:
    """Fills one record from its model's field list."""

    def __init__(self, tenant: Tenant, rng: random.Random, links: dict[str, int]) -> None:
        self.tenant = tenant
        self.rng = rng
        self.links = links
        self.first = rng.choice(_FIRST_NAMES)
        self.last = rng.choice(_LAST_NAMES)

    def model(self, model: str, depth: int, rid: int | None, changed: float) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for fname, code in MODELS.get(model, ()):
            if rid is not None and fname in ("id", "Id"):
                out[fname] = rid
            else:
                out[fname] = self.value(fname, code, depth, changed)
        return out

    def int(self, low: int, high: int) -> int:
        """Uniform in ``[low, high]``; ``random.randint`` costs five times as much."""
        return low + int(self.rng.random() * (high - low + 1))

    def value(self, fname: str, code: str, depth: int, changed: float) -> Any:
        rng = self.rng
        if code.startswith("@"):
            return self.ref(code[1:], depth)
        if code.startswith("["):
            inner = code[1:-1]
            if depth >= 1:
                return []
            return [self.value(fname, inner, depth, changed) for _ in range(self.int(0, 2))]
        if code.startswith("enum:"):
            return rng.choice(code[5:].split("|"))
        if code in ("int", "long"):
            return self.int(0, 500 if code == "int" else 10**9)
        if code == "num":
            return round(rng.uniform(0, 2500), 2)
        if code == "bool":
            return rng.random() < 0.5
        if code == "uuid":
            return str(_uuid(rng))
        if code == "dt":
            return self.datetime(fname, changed)
        return self.text(fname)

    def datetime(self, fname: str, changed: float) -> str | None:
        rng = self.rng
        low = fname.lower()
        if low == "createdon":
            return format_local(changed - self.int(0, _YEAR - 1), self.tenant.tz)
        if "birth" in low:
            return format_local(CLOCK_START - self.int(18, 90 - 1) * _YEAR, self.tenant.tz)[:10] + (
                "T00:00:00"
            )
        if rng.random() < 0.15:
            return None
        instant = CLOCK_START - self.int(0, 5 * _YEAR - 1)
        fraction = f"{self.int(0, 10**7 - 1):07d}" if rng.random() < 0.1 else ""
        return format_local(instant, self.tenant.tz, fraction)

    def text(self, fname: str) -> str | None:
        rng = self.rng
        low = fname.lower()
        if low in ("firstname",):
            return self.first
        if low in ("lastname",):
            return self.last
        if low in ("displayname", "fullname"):
            return f"{self.last}, {self.first}"
        if low == "gendercode":
            return rng.choice(("M", "F", "U"))
        if low in ("race", "ethnicity"):
            return rng.choice(_RACES if low == "race" else _ETHNICITIES)
        if "email" in low:
            return f"{self.first}.{self.last}{self.int(1, 999)}@example.org".lower()
        if "phone" in low or low == "fax":
            return f"555-{self.int(100, 999)}-{self.int(1000, 9999)}"
        if low in ("status",):
            return rng.choice(_STATUSES)
        if low in ("name", "title"):
            return f"{rng.choice(_WORDS).title()} {rng.choice(_WORDS)} {self.int(1, 9999)}"
        if low in ("login", "username"):
            return f"{self.first[0]}{self.last}".lower()
        if low in ("state",):
            return rng.choice(("NY", "CA", "TX", "FL", "OH", "WA"))
        if low in ("country",):
            return "USA"
        if low in ("timezone",):
            return self.tenant.tz
        if rng.random() < 0.1:
            return None
        return f"{fname} {self.int(1, 99_999)}"

    def ref(self, model: str, depth: int) -> dict[str, Any] | None:
        table = REF_TABLES.get(model)
        if table is not None:
            rid = self.links.get(table)
            if rid is None and "studies" in self.links and ep.BY_NAME[table].kind == "study":
                return None  # the study has none: never borrow another study's arm or visit
            if rid is None and table in self.tenant.tables and self.tenant.tables[table].rows:
                rid = self.rng.choice(self.tenant.tables[table].rows).rid
            if rid is not None:
                return self.preview(model, table, rid)
        if depth >= 1:
            return None
        return self.model(model, depth + 1, None, CLOCK_START)

    def preview(self, model: str, table: str, rid: int) -> dict[str, Any]:
        """A preview of record ``rid`` of ``table``: fields copied from it, by name.

        Cached per tenant: previews hold only fields no mutation rewrites, and records share
        them read-only (updates copy the top level of a record, never a nested object).
        """
        key = (model, table, rid)
        cached = self.tenant.previews.get(key)
        if cached is not None:
            return cached
        row = self.tenant.tables[table].by_id().get(rid)
        source = row.base if row is not None and isinstance(row.base, dict) else {}
        lower = {k.lower(): v for k, v in source.items()}
        lower["id"] = rid
        lower["name"] = self.tenant.label(table, rid)
        out: dict[str, Any] = {}
        for fname, code in MODELS.get(model, ()):
            low = fname.lower()
            if low in lower and not code.startswith(("@", "[")):
                out[fname] = lower[low]
            else:
                out[fname] = self.value(fname, code, 2, CLOCK_START)
        self.tenant.previews[key] = out
        return out


def _uuid(rng: random.Random) -> str:
    """A version-4 UUID drawn from ``rng`` (uuid.uuid4 would not be deterministic)."""
    bits = rng.getrandbits(128)
    bits = (bits & ~(0xF << 76)) | (0x4 << 76)
    bits = (bits & ~(0x3 << 62)) | (0x2 << 62)
    h = f"{bits:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"
