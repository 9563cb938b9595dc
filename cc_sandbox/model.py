"""The fake tenant: rows generated on demand, a sparse overlay of changes, and the clock.

No table is held as records. Each keeps compact numpy columns (ids, parent ids, the change
instant and the few activity fields filters and orderings use, see ``activity.py``); a record is
generated from (seed, endpoint, id) when a page asks for it, and kept in a bounded cache. Every
mutation (``update``, ``insert``, ``delete``, ``corrupt``, a simulated day) writes the records
it touches into an overlay and swaps in new columns: ground truth is base plus overlay. Tables
are copy-on-write snapshots, so a reader takes one reference without locking and never sees
half a change. Relationships are real (a subject's ``study`` is the study it is listed under, a
patient visit's ``subject`` a subject of that study, ...) and are drawn from the generated base,
so a change to one record never silently changes another; the previews of every subject, which
most records carry, are built at start and kept.
"""

from __future__ import annotations

import contextlib
import functools
import json
import random
import threading
import zlib
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from cc_sandbox import activity as act
from cc_sandbox import endpoints as ep
from cc_sandbox.schemas import MODELS
from cc_sandbox.timefmt import format_local, format_utc

#: 2026-01-01T00:00:00Z: where every tenant clock starts, so runs are reproducible.
CLOCK_START = 1_767_225_600.0
_DAY = act.DAY
_YEAR = act.YEAR
#: Every table gets at least this many rows, however small the scale.
MIN_ROWS = 5
PROFILES = ("spec", "plan")
#: Ways :meth:`Tenant.corrupt` breaks a served record (see its docstring).
CORRUPTIONS = ("no_id", "null_id", "string_id", "nul_chars", "huge", "bad_timestamp")
#: Size of the text a ``huge`` corruption adds (bytes).
HUGE_BYTES = 1_500_000
#: Bytes of served JSON kept per tenant; a record beyond it is generated again when asked for.
BLOB_CACHE_BYTES = 1_200_000_000
#: Records (as dicts) kept, and previews' sources: small, as records are cached as JSON.
ROW_CACHE = 20_000
IDENTITY_CACHE = 400_000

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

#: Tables generated first because others draw from them; the rest follow in endpoint order.
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

#: Served fields held as columns, per table: path -> (column, type). ``Code`` columns are
#: served as names; ``dt`` columns are instants (NaN for null); ``int`` plain integers.
COLUMN_FIELDS: dict[str, dict[str, tuple[str, Any]]] = {
    "studies": {"status": ("status", act.Code(act.STATUS_NAMES)), "createdOn": ("createdOn", "dt")},
    "patient_visits": {
        "status": ("status", act.Code(act.VISIT_STATUSES)),
        "targetDueDate": ("targetDueDate", "dt"), "minDueDate": ("minDueDate", "dt"),
        "maxDueDate": ("maxDueDate", "dt"), "study/id": ("study", "int"),
        "subject/Id": ("subject", "int"),
    },
    "appointments": {
        "status": ("status", act.Code(act.APPOINTMENT_STATUSES)),
        "plannedStart": ("plannedStart", "dt"), "plannedEnd": ("plannedEnd", "dt"),
    },
    "subject_statuses": {
        "status": ("status", act.Code(act.SUBJECT_STATUSES)), "eventDate": ("eventDate", "dt"),
        "subject/Id": ("subject", "int"),
    },
    "subjects": {"study/id": ("parent", "int")},
    "patient_visit_elements": {"completedOn": ("completedOn", "dt")},
}

#: The key of records whose model has no id (the change log gives it instead of an id).
KEY_FIELDS: dict[str, tuple[str, ...]] = {"subject_statuses": ("subject/Id", "status", "eventDate")}

_FIRST_NAMES = ("Ana", "Ben", "Chloe", "Dev", "Eli", "Fatima", "Gus", "Hana", "Ivan", "June",
                "Kofi", "Lena", "Marco", "Nia", "Omar", "Priya", "Quinn", "Rosa", "Sam", "Tariq")
_LAST_NAMES = ("Adams", "Brooks", "Chen", "Diaz", "Evans", "Fischer", "Garcia", "Haddad", "Ito",
               "Jones", "Kim", "Lopez", "Moreau", "Nguyen", "Okafor", "Patel", "Rossi", "Silva")
_WORDS = ("alpha", "beta", "cardio", "derm", "endo", "gastro", "hepato", "immuno", "neuro",
          "onco", "pulmo", "renal", "vaso", "ortho", "psych", "rheum")
_RACES = ("White", "Black or African American", "Asian", "American Indian", "Other")
_ETHNICITIES = ("Hispanic or Latino", "Not Hispanic or Latino", "Unknown")
_STATUSES = ("Active", "Inactive", "Pending", "Closed", "Completed")
_MASK = (1 << 64) - 1


def mix(*parts: int) -> int:
    """A 64-bit hash of integers (splitmix64 steps): the seed of one record's generator."""
    z = 0x9E3779B97F4A7C15
    for part in parts:
        z = (z ^ (part & _MASK)) * 0xBF58476D1CE4E5B9 & _MASK
        z = (z ^ (z >> 27)) * 0x94D049BB133111EB & _MASK
        z ^= z >> 31
    return z


def mix_on(z: int, part: int) -> int:
    """``mix(*parts, part)`` from ``z = mix(*parts)``: one step, for hashes sharing a prefix."""
    z = (z ^ (part & _MASK)) * 0xBF58476D1CE4E5B9 & _MASK
    z = (z ^ (z >> 27)) * 0x94D049BB133111EB & _MASK
    return z ^ (z >> 31)


def seeded(seed: int) -> random.Random:
    """``random.Random(seed)`` for an integer seed, the same draws.

    Without the Python-level checks of ``Random.seed``, a sizeable part of its cost: a record
    seeds several generators.
    """
    rng = random.Random.__new__(random.Random)
    super(random.Random, rng).seed(seed)
    rng.gauss_next = None
    return rng


def salt(name: str) -> int:
    """A stable number for a table name (``hash()`` changes between runs)."""
    return zlib.crc32(name.encode())


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


@dataclass(frozen=True)
class Over:
    """A record of the overlay: changed since generation, or inserted.

    Attributes:
        gen: Bumped on every change (caches key on it).
        base: The record's fields (without change fields).
        links: Related ids; ``None`` for generated records (derived again from the seed).
        original: Still as generated (e.g. only corrupted).
    """

    gen: int
    base: Any
    links: dict[str, int] | None
    original: bool = False


@dataclass(frozen=True)
class Snap:
    """One version of a table: ids ascending, columns aligned with them, the overlay."""

    version: int
    ids: np.ndarray
    cols: dict[str, np.ndarray]
    over: dict[int, Over] = field(default_factory=dict)

    def position(self, rid: int) -> int | None:
        """Index of ``rid`` in this version, or ``None``."""
        ids = self.ids
        pos = int(ids.searchsorted(rid))  # the method: np.searchsorted's wrapper costs more
        return pos if pos < len(ids) and ids.item(pos) == rid else None


class RowSeq:
    """Rows of one table version at some positions (all when ``positions`` is ``None``).

    Indexing and iterating generate records on demand; nothing is materialised up front.
    """

    def __init__(self, tenant: Tenant, table: Table, snap: Snap,
                 positions: np.ndarray | None = None) -> None:
        self.tenant = tenant
        self.table = table
        self.snap = snap
        self.positions = positions

    def __len__(self) -> int:
        return len(self.snap.ids) if self.positions is None else len(self.positions)

    def all_positions(self) -> np.ndarray:
        """The positions as an array."""
        if self.positions is None:
            return np.arange(len(self.snap.ids))
        return self.positions

    def _pos(self, k: int) -> int:
        return k if self.positions is None else int(self.positions[k])

    def __getitem__(self, k: Any) -> Any:
        if isinstance(k, slice):
            return [self[i] for i in range(*k.indices(len(self)))]
        if k < 0:
            k += len(self)
        if not 0 <= k < len(self):
            raise IndexError(k)
        return self.tenant.row(self.table, self.snap, self._pos(k))

    def __iter__(self) -> Iterator[Row]:
        for k in range(len(self)):
            yield self[k]

    def blobs(self, start: int, stop: int) -> list[bytes]:
        """Served JSON of the rows ``[start:stop]``."""
        blob, table, snap = self.tenant.blob, self.table, self.snap
        span = range(*slice(start, stop).indices(len(self)))
        return [blob(table, snap, self._pos(k)) for k in span]

    def __bool__(self) -> bool:
        return len(self) > 0


class _ById:
    """``{id: Row}`` of one table version, looked up by binary search."""

    def __init__(self, tenant: Tenant, table: Table, snap: Snap) -> None:
        self.tenant, self.table, self.snap = tenant, table, snap

    def get(self, rid: int, default: Any = None) -> Any:
        pos = self.snap.position(rid)
        return default if pos is None else self.tenant.row(self.table, self.snap, pos)

    def __getitem__(self, rid: int) -> Row:
        row = self.get(rid)
        if row is None:
            raise KeyError(rid)
        return row

    def __contains__(self, rid: object) -> bool:
        return isinstance(rid, (int, np.integer)) and self.snap.position(int(rid)) is not None

    def __len__(self) -> int:
        return len(self.snap.ids)


class _ByParent:
    """``{parent id: rows}`` of one table version."""

    def __init__(self, tenant: Tenant, table: Table, snap: Snap) -> None:
        self.tenant, self.table, self.snap = tenant, table, snap

    def get(self, pid: int, default: Any = None) -> Any:
        positions = self.table.child_positions(self.snap, pid)
        if not len(positions):
            return default
        return RowSeq(self.tenant, self.table, self.snap, positions)

    def __getitem__(self, pid: int) -> RowSeq:
        rows = self.get(pid)
        if rows is None:
            raise KeyError(pid)
        return rows


class Table:
    """The rows of one endpoint: a base version and the current one (copy-on-write).

    Attributes:
        spec: The endpoint the rows belong to.
        base: The generated version (relationships are drawn from it).
        snap: The current version.
    """

    def __init__(self, tenant: Tenant, spec: ep.EndpointSpec, snap: Snap) -> None:
        self.tenant = tenant
        self.spec = spec
        self.base = snap
        self.snap = snap
        self._index: tuple[int, np.ndarray, np.ndarray] | None = None
        self._base_index: tuple[int, np.ndarray, np.ndarray] | None = None
        self._top = int(snap.ids[-1]) if len(snap.ids) else 0  # ids are never reused

    @property
    def version(self) -> int:
        """Bumped on every mutation; query caches key on it."""
        return self.snap.version

    @property
    def rows(self) -> RowSeq:
        """Every current row, in insertion (id) order, generated on demand."""
        return RowSeq(self.tenant, self, self.snap)

    def __len__(self) -> int:
        return len(self.snap.ids)

    def by_id(self) -> _ById:
        """Rows by id."""
        return _ById(self.tenant, self, self.snap)

    def by_parent(self) -> _ByParent:
        """Rows grouped by parent id, each group in insertion order."""
        return _ByParent(self.tenant, self, self.snap)

    def child_positions(self, snap: Snap, pid: int) -> np.ndarray:
        """Positions in ``snap`` of the rows under parent ``pid``, ascending."""
        cached = self._base_index if snap is self.base else self._index
        if cached is None or cached[0] != snap.version:
            parents = snap.cols["parent"]
            order = np.argsort(parents, kind="stable")
            cached = (snap.version, order, parents[order])
            if snap is self.base:
                self._base_index = cached
            else:
                self._index = cached
        _, order, ordered = cached
        return order[int(ordered.searchsorted(pid)):int(ordered.searchsorted(pid, "right"))]

    def next_id(self) -> int:
        """An id above every id this table has held."""
        return self._top + 1

    def commit(self, ids: np.ndarray, cols: dict[str, np.ndarray], over: dict[int, Over]) -> None:
        """Swap in a new version (callers hold the tenant lock)."""
        if len(ids):
            self._top = max(self._top, int(ids[-1]))
        self.snap = Snap(self.snap.version + 1, ids, cols, over)


class Tenant:
    """A Clinical Conductor tenant: tables, a clock, and change operations. Thread-safe.

    Args:
        scale: Fraction of the reference tenant's row counts (1.0 = the real tenant).
        seed: Seed of every random choice; the same seed gives the same data.
        profile: ``spec`` (change field only on studies) or ``plan`` (``modifiedDate`` everywhere).
        tenant_timezone: IANA zone of the naive local datetimes the tenant serves.
        overrides: Per-endpoint overrides (only ``change_field`` matters to the data).
        activity: ``reference`` (a real site's shares, README "Activity") or ``none`` (uniform).
        row_cache: Generated records kept in memory (with their JSON).
    """

    def __init__(
        self,
        scale: float = 0.001,
        seed: int = 7,
        profile: str = "spec",
        tenant_timezone: str = "America/New_York",
        overrides: dict[str, dict[str, Any]] | None = None,
        activity: str = "reference",
        row_cache: int = ROW_CACHE,
    ) -> None:
        if profile not in PROFILES:
            raise ValueError(f"unknown profile {profile!r}; expected one of {PROFILES}")
        if activity not in act.ACTIVITIES:
            raise ValueError(f"unknown activity {activity!r}; expected one of {act.ACTIVITIES}")
        self.scale = scale
        self.seed = seed
        self.profile = profile
        self.activity = activity
        self.tz = tenant_timezone
        self.clock = CLOCK_START
        self.day = 0
        self.lock = threading.RLock()
        self.render_gen = 0
        self._overrides: dict[str, dict[str, Any]] = {}
        self._change_fields: dict[str, tuple[tuple[str, str], ...]] = {}
        self._mut_rng = random.Random(f"{seed}:mutations")
        self._mutations = 0
        self.tables: dict[str, Table] = {}
        self.previews = _Memo(IDENTITY_CACHE)
        self._links = _Memo(IDENTITY_CACHE)
        self._identities = _Memo(IDENTITY_CACHE)
        self._prefixes: dict[str, int] = {}
        self._rows: OrderedDict[tuple[str, int, int], Row] = OrderedDict()
        self._rows_lock = threading.Lock()
        self.row_cache = row_cache
        self._blobs: OrderedDict[tuple[str, int, int, int], bytes] = OrderedDict()
        self._blob_bytes = 0
        self.blob_cache_bytes = BLOB_CACHE_BYTES
        #: Corrupted records: source table -> {rid: kind} (see ``corrupt``).
        self._corrupted: dict[str, dict[int, str]] = {}
        #: Every change: dicts of day, at, endpoint, parent, id, kind, signal (see ``days.py``).
        self.changes: list[dict[str, Any]] = []
        self._generate()
        self.set_overrides(overrides or {})
        self._pin_subjects()

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

    def rows_for(self, name: str, parent_id: int | None) -> RowSeq | None:
        """Rows endpoint ``name`` serves, for ``parent_id`` on per-parent paths.

        Returns:
            The rows, or ``None`` when the parent does not exist (the server answers 404).
        """
        spec = ep.BY_NAME[name]
        table = self.tables[spec.source]
        snap = table.snap
        if spec.parent is None or spec.same_as:
            return RowSeq(self, table, snap)
        assert parent_id is not None
        if self.tables[spec.parent[0]].snap.position(parent_id) is None:
            return None
        return RowSeq(self, table, snap, table.child_positions(snap, parent_id))

    def parent_exists(self, kind: str, parent_id: int) -> bool:
        """Whether a parent of ``kind`` (``study``/``patient``/``patient_visit``) exists."""
        return self.tables[ep.PARENT_OF[kind][0]].snap.position(parent_id) is not None

    def row(self, table: Table, snap: Snap, pos: int) -> Row:
        """The record at ``pos`` of a table version, generated or from the overlay (cached)."""
        rid = int(snap.ids[pos])
        over = snap.over.get(rid)
        key = (table.spec.name, rid, over.gen if over is not None else 0)
        with self._rows_lock:
            hit = self._rows.get(key)
            if hit is not None:
                self._rows.move_to_end(key)
                return hit
        cols = snap.cols
        parent = int(cols["parent"][pos]) if "parent" in cols else None
        changed = float(cols["changed"][pos])
        if over is not None:
            links = over.links if over.links is not None else self.links_of(table.spec.name, rid)
            made = Row(rid, parent, over.base, changed, links, over.original)
        else:
            made = Row(rid, parent, self.base_of(table.spec.name, rid), changed,
                       self.links_of(table.spec.name, rid))
        with self._rows_lock:
            self._rows[key] = made
            while len(self._rows) > self.row_cache:
                self._rows.popitem(last=False)
        return made

    def blob(self, table: Table, snap: Snap, pos: int) -> bytes:
        """The served JSON of the record at ``pos`` (cached by bytes, least recently used out)."""
        rid = int(snap.ids[pos])
        over = snap.over.get(rid)
        key = (table.spec.name, rid, over.gen if over is not None else 0, self.render_gen)
        with self._rows_lock:
            hit = self._blobs.get(key)
            if hit is not None:
                self._blobs.move_to_end(key)
                return hit
        made = self.render(table.spec.name, self.row(table, snap, pos))[1]
        with self._rows_lock:
            if key not in self._blobs:
                self._blobs[key] = made
                self._blob_bytes += len(made)
            while self._blob_bytes > self.blob_cache_bytes and self._blobs:
                self._blob_bytes -= len(self._blobs.popitem(last=False)[1])
        return made

    def column(self, name: str, path: str, snap: Snap,
               positions: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
        """Values of a served field for rows of a table version, with a null mask.

        Datetimes are instants exactly as the served strings parse back. ``None`` when the
        field is not held as a column (the caller then evaluates records one by one).
        """
        spec = ep.BY_NAME[name]
        source = spec.source
        if path == (spec.id_field or None):
            values = snap.ids[positions]
            return values, np.zeros(len(values), dtype=bool)
        for fname, style in self._change_fields.get(source, ()):
            if fname == path:
                changed = snap.cols["changed"][positions]
                if style == "utc":  # two of three spellings carry no fraction
                    whole = (snap.ids[positions] % 7 % 3) != 2
                    changed = np.where(whole, np.floor(changed), changed)
                return changed, np.zeros(len(changed), dtype=bool)
        spec_col = COLUMN_FIELDS.get(source, {}).get(path)
        if spec_col is None:
            return None
        colname, kind = spec_col
        values = snap.cols[colname][positions]
        if isinstance(kind, act.Code):
            return np.array(kind.names, dtype=object)[values], np.zeros(len(values), dtype=bool)
        if kind == "dt":
            return values, np.isnan(values)
        return values, np.zeros(len(values), dtype=bool)

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
        snap = table.snap
        parents = snap.cols["parent"].tolist() if key else None
        # Through the JSON cache, as pages are served: a test that reads the truth and then the
        # pages generates each record once.
        return [{"parent": {key: parents[pos]} if parents is not None else {},
                 "data": json.loads(self.blob(table, snap, pos))}
                for pos in range(len(snap.ids))]

    # ------------------------------------------------------------------------------- generation

    def _count(self, spec: ep.EndpointSpec) -> int:
        if spec.fixed:
            return spec.fixed
        if spec.total:
            return max(MIN_ROWS, round(spec.total * self.scale))
        assert spec.parent is not None
        parents = len(self.tables[spec.parent[0]])
        return max(MIN_ROWS, round(spec.per_parent * parents))

    def _generate(self) -> None:
        order = [ep.BY_NAME[n] for n in _FIRST]
        order += [t for t in ep.TABLES if t.name not in _FIRST]
        for spec in order:
            rng = act.table_rng(self.seed, spec.name)
            n = self._count(spec)
            ids = act.make_ids(rng, n)
            cols = self._columns(spec, rng, n)
            self.tables[spec.name] = Table(self, spec, Snap(0, ids, cols))

    def _columns(self, spec: ep.EndpointSpec, rng: np.random.Generator,
                 n: int) -> dict[str, np.ndarray]:
        """Columns of a generated table: change instant, parent, activity fields."""
        name, clock, tz, mode = spec.name, self.clock, self.tz, self.activity
        if name == "studies":
            return act.study_columns(rng, n, clock, mode, tz)
        cols = {"changed": act.instants(act.avoid_dst(
            act.whole_seconds(rng, clock, _DAY, 4 * _YEAR, n), tz))}
        if spec.parent is not None:
            ptable = self.tables[spec.parent[0]].base
            weights = np.ones(len(ptable.ids))
            if name == "subjects":
                weights = act.subject_studies(rng, ptable.cols["status"], mode) * (
                    rng.lognormal(0, 0.8, len(ptable.ids)))
            elif name in act.ACTIVE_WEIGHTED and mode == "reference":
                active = np.isin(ptable.cols["status"], act.ACTIVE_CODES)
                share = max(active.mean(), 1e-9)
                weights = np.where(active, act.UNDER_ACTIVE / share,
                                   (1 - act.UNDER_ACTIVE) / max(1 - share, 1e-9))
            cols["parent"] = act.weighted_parents(rng, ptable.ids, weights, n)
        if name in ("patient_visits", "subject_statuses"):
            subjects = self.tables["subjects"].base
            pick = rng.integers(0, len(subjects.ids), n)
            cols["subject"] = subjects.ids[pick]
            cols["study"] = subjects.cols["parent"][pick]
        if name == "patient_visits":
            cols.update(act.visit_columns(rng, n, clock, mode, tz))
        elif name == "subject_statuses":
            cols["status"] = rng.integers(0, len(act.SUBJECT_STATUSES), n).astype(np.int8)
            event = act.whole_seconds(rng, clock, _DAY, 4 * _YEAR, n, 0)
            cols["eventDate"] = act.instants(act.avoid_dst(event, tz))
        elif name == "appointments":
            visits = self.tables["patient_visits"].base
            pick = rng.integers(0, len(visits.ids), n)
            cols["pv"] = visits.ids[pick]
            vstatus = visits.cols["status"][pick]
            status = vstatus.copy()  # the visit's status, a few cancelled or missed
            missed = rng.random(n) < 0.05
            status[missed & (vstatus == 2)] = 5
            status[missed & (vstatus == 0)] = 4
            cols["status"] = status
            start = visits.cols["targetDueDate"][pick] + (rng.integers(-4, 5, n) * 3600)
            start = act.instants(act.avoid_dst(start.astype(np.int64) * 1_000_000, tz))
            cols["plannedStart"] = start
            cols["plannedEnd"] = start + 3600
        elif name == "patient_visit_elements":
            visits = self.tables["patient_visits"].base
            pos = np.searchsorted(visits.ids, cols["parent"])
            done = act.element_completion(
                rng, visits.cols["status"][pos], visits.cols["targetDueDate"][pos],
                visits.cols["maxDueDate"][pos], clock)
            known = ~np.isnan(done)
            done[known] = act.instants(act.avoid_dst(
                done[known].astype(np.int64) * 1_000_000, tz))
            cols["completedOn"] = done
        return cols

    def random_id(self, table: str, rng: random.Random | _LazyRandom) -> int | None:
        """A random generated id of ``table`` (``None`` when it is empty or not yet made)."""
        t = self.tables.get(table)
        if t is None or not len(t.base.ids):
            return None
        return int(t.base.ids[int(rng.random() * len(t.base.ids))])

    def streams(self, table: str, rid: int) -> int:
        """``mix(seed, salt(table), rid)``: what a generated record's generators are seeded from."""
        prefix = self._prefixes.get(table)
        if prefix is None:
            prefix = self._prefixes[table] = mix(self.seed, salt(table))
        return mix_on(prefix, rid)

    def links_of(self, table: str, rid: int) -> dict[str, int]:
        """Related ids of a record (drawn from the generated base, so they never move)."""
        key = (table, rid)
        hit = self._links.get(key)
        if hit is not None:
            return hit
        t, pos, cols, over = self._locate(table, rid)
        if pos is None:
            return dict(over.links or {}) if over is not None else {}
        links = self.make_links(t.spec, cols, _LazyRandom(mix_on(self.streams(table, rid), 1)))
        self._links.put(key, links)
        return links

    def make_links(self, spec: ep.EndpointSpec, cols: dict[str, Any],
                   rng: random.Random | _LazyRandom) -> dict[str, int]:
        """Choose the related records of a record with column values ``cols``."""
        links: dict[str, int] = {}
        name = spec.name
        if spec.parent is not None and "parent" in cols:
            ptable = spec.parent[0]
            links[ptable] = int(cols["parent"])
            for k, v in self.links_of(ptable, links[ptable]).items():
                links.setdefault(k, v)
        if name == "subjects":
            for table in ("patients", "sites"):
                rid = self.random_id(table, rng)
                if rid is not None:
                    links[table] = rid
        elif name in ("patient_visits", "subject_statuses"):
            links["subjects"] = int(cols["subject"])
            for k, v in self.links_of("subjects", links["subjects"]).items():
                links.setdefault(k, v)
        elif name == "appointments":
            links["patient_visits"] = int(cols["pv"])
            for k, v in self.links_of("patient_visits", links["patient_visits"]).items():
                links.setdefault(k, v)
        elif name == "patient_visit_elements":
            rid = self.random_id("elements", rng)
            if rid is not None:
                links["elements"] = rid
        if "studies" in links:
            for table in ("visits", "study_arms", "study_protocol_versions"):
                if table == name or table in links or table not in self.tables:
                    continue
                t = self.tables[table]
                kids = t.child_positions(t.base, links["studies"])
                if len(kids):
                    links[table] = t.base.ids.item(kids.item(int(rng.random() * len(kids))))
        return links

    def base_of(self, table: str, rid: int, identity: bool = False,
                fields: int | None = None) -> Any:
        """A record's generated fields (or, for an inserted record, its fields as inserted).

        ``identity``: only the fields previews copy (see ``_Gen``), the first ``fields`` of them
        when given (cached).
        """
        key = (table, rid)
        cache = self._identities
        hit = cache.get(key) if identity else None
        if hit is not None and (hit[0] < 0 or (fields is not None and hit[0] >= fields)):
            return hit[1]
        t, pos, cols, over = self._locate(table, rid)
        if pos is None:
            return over.base if over is not None else None
        # An identity needs links only where a fixup reads them (previews are not generated).
        links = self.links_of(table, rid) if not identity or table in _LINKED_FIXUPS else {}
        base = self.make_base(t.spec, rid, cols, links, self.streams(table, rid), pos,
                              identity, fields)
        if identity:  # whole records are cached as rows and JSON
            cache.put(key, (-1 if fields is None else fields, base))
        return base

    def _locate(self, table: str, rid: int) -> tuple[Table, int | None, dict[str, Any],
                                                     Over | None]:
        """A record's generated position and column values, or its overlay entry if inserted."""
        t = self.tables[table]
        pos = t.base.position(rid)
        if pos is None:
            return t, None, {}, t.snap.over.get(rid)
        return t, pos, {k: v[pos] for k, v in t.base.cols.items()}, None

    def identity_of(self, table: str, rid: int, want: frozenset[str] | None = None) -> Any:
        """A record's scalar fields (what previews of it copy), without its references.

        ``want``: the lower-case names the caller reads; the fields after the last of them (and
        after the label's) are not generated. They are drawn in order from one generator, so
        the fields generated are the same as the whole identity's.
        """
        fields = None
        if want is not None and table in self.tables:
            fields = _prefix(self.tables[table].spec.model, want)
        return self.base_of(table, rid, identity=True, fields=fields)

    def make_base(self, spec: ep.EndpointSpec, rid: int, cols: dict[str, Any],
                  links: dict[str, int], streams: int, pos: int = 0,
                  identity: bool = False, fields: int | None = None) -> Any:
        """Fill one record from its model, then set the fields its columns hold.

        ``streams`` seeds the record's generators (see ``_Gen``); ``fields`` stops an identity
        after its first fields.
        """
        if not spec.model:  # lookup lists: a list of names
            return f"{random.Random(streams).choice(_WORDS).title()} list {rid}"
        changed = float(cols["changed"])
        if fields == 0:  # nothing drawn: no generator to seed
            base: dict[str, Any] = {}
        else:
            base = _Gen(self, streams, links, identity).model(spec.model, 0, rid, changed, fields)
        _FIXUPS.get(spec.name, _no_fixup)(self, base, links, cols, pos)
        # Served from ``changed`` as change fields (never from overrides: bases are generated
        # lazily, and must not depend on when).
        base.pop("lastUpdatedOn" if spec.name == "studies" else "", None)
        base.pop("modifiedDate", None)
        return base

    def dt(self, instant: Any) -> str | None:
        """A column instant as the tenant serves it (``None`` for NaN)."""
        value = float(instant)
        if value != value:
            return None
        return format_local(value, self.tz)

    def label(self, table: str, rid: int) -> str:
        """A record's display name, as previews of it show."""
        base = self.identity_of(table, rid, _NOTHING) if table in self.tables else None
        if not isinstance(base, dict):
            return f"{table} {rid}"
        for key in _LABEL_KEYS:
            if base.get(key):
                return str(base[key])
        if table == "subjects":
            patient = self.links_of("subjects", rid).get("patients")
            return self.label("patients", patient) if patient else f"Subject {rid}"
        return f"{table} {rid}"

    def _pin_subjects(self) -> None:
        """Build, once, what the records that point at a subject copy from it, and keep it.

        Every patient visit, appointment and subject status carries a preview of its subject
        (whose name is its patient's), of the subject's study, and the name of a visit of that
        study. Built on first read, a tenant's first pages paid for a thousand subjects each
        (at full size the subjects are many, the visits random over them); built here, every
        page costs the same from the first. The values are those a first read would build:
        previews copy the generated base, which never changes.
        """
        subjects = self.tables.get("subjects")
        if subjects is None:
            return
        memos = (self._links, self._identities, self.previews)
        for memo in memos:
            memo.pinning = True
        copier = _CopyOnly(self)
        try:
            for rid in subjects.base.ids.tolist():
                links = self.links_of("subjects", rid)
                previews = [("SubjectPreviewModel", "subjects", rid)]
                if "studies" in links:
                    previews.append(("StudyPreviewModel", "studies", links["studies"]))
                for model, table, ref in previews:
                    # A field the record lacks is drawn by each reader: not built ahead.
                    with contextlib.suppress(_WouldDraw):
                        copier.preview(model, table, ref)
                if "visits" in links:
                    self.label("visits", links["visits"])
        finally:
            for memo in memos:
                memo.pinning = False

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

    def _log(self, table: Table, rid: int, parent: int | None, kind: str,
             signal: str | None, at: float | None = None, base: Any = None) -> None:
        spec = table.spec
        key = spec.parent[1] if spec.parent else None
        extra = {}
        if spec.name in KEY_FIELDS and isinstance(base, dict):  # no id: the tap's key instead
            extra["key"] = [_dig(base, path) for path in KEY_FIELDS[spec.name]]
        self.changes.append({
            "day": self.day,
            "at": format_utc(self.clock if at is None else at, 0),
            "endpoint": spec.name,
            "parent": {key: parent} if key and parent is not None else {},
            "id": rid,
            "kind": kind,
            "signal": signal or "manual",
            "signalled": None if signal is None else signal != "none",
            **extra,
        })

    def _positions(self, table: Table, n: int, ids: list[int] | None) -> list[int]:
        snap = table.snap
        if ids is not None:
            found = [(i, snap.position(i)) for i in ids]
            missing = [i for i, pos in found if pos is None]
            if missing:
                raise KeyError(f"{table.spec.name} has no ids {missing}")
            return [pos for _, pos in found if pos is not None]
        return sorted(self._mut_rng.sample(range(len(snap.ids)), min(n, len(snap.ids))))

    def _choose(self, table: Table, n: int, ids: list[int] | None) -> list[Row]:
        snap = table.snap
        return [self.row(table, snap, pos) for pos in self._positions(table, n, ids)]

    def update(
        self,
        endpoint: str,
        n: int = 1,
        *,
        same_timestamp: bool = False,
        backdate_seconds: float = 0.0,
        ids: list[int] | None = None,
        values: dict[str, Any] | None = None,
        signal: str | None = None,
    ) -> list[int]:
        """Change ``n`` records (or ``ids``): one field, and the change instant.

        Each record is stamped one second after the previous at the tenant clock, which moves
        past the last stamp; ``same_timestamp`` stamps them all alike, ``backdate_seconds``
        stamps them in the past (a late-arriving change). ``values`` sets column fields
        (``{"status": code, "targetDueDate": instant}``) instead of rewriting a free-text one.

        Returns:
            The ids of the changed records.
        """
        with self.lock:
            table = self._table_for_mutation(endpoint)
            snap = table.snap
            positions = self._positions(table, n, ids)
            self._mutations += 1
            start = self.clock - backdate_seconds
            cols = dict(snap.cols)
            touched = {"changed", *(values or {})}
            for name in touched:
                cols[name] = cols[name].copy()
            over = dict(snap.over)
            for k, pos in enumerate(positions):
                row = self.row(table, snap, pos)
                stamp = _exact(start if same_timestamp else start + k)
                cols["changed"][pos] = stamp
                if values:
                    for name, value in values.items():
                        cols[name][pos] = value
                    row_cols = {c: v[pos] for c, v in cols.items()}
                    base = dict(row.base)
                    _FIXUPS.get(table.spec.name, _no_fixup)(self, base, row.links, row_cols, pos)
                else:
                    base = self._changed_base(row.base)
                prev = snap.over.get(row.rid)
                over[row.rid] = Over((prev.gen if prev else 0) + 1, base,
                                     prev.links if prev else None, False)
            self.clock = max(self.clock, start + (0 if same_timestamp else len(positions) - 1))
            self.clock += 1
            table.commit(snap.ids, cols, over)
            out = [int(snap.ids[pos]) for pos in positions]
            parents = cols.get("parent")
            for pos, rid in zip(positions, out, strict=True):
                self._log(table, rid, int(parents[pos]) if parents is not None else None,
                          "update", signal, float(cols["changed"][pos]))
            return out

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

    def _new_columns(self, spec: ep.EndpointSpec, pid: int | None) -> dict[str, Any]:
        """Column values of a record inserted now (a new visit is pending, a study starting)."""
        rng = self._mut_rng
        now = float(int(self.clock))
        cols: dict[str, Any] = {"changed": _exact(self.clock)}
        if pid is not None:
            cols["parent"] = pid
        name = spec.name
        if name == "studies":
            cols.update(status=0, createdOn=now)
        elif name in ("patient_visits", "subject_statuses"):
            subjects = self.tables["subjects"].snap
            k = int(rng.random() * len(subjects.ids))
            cols.update(subject=int(subjects.ids[k]), study=int(subjects.cols["parent"][k]))
            if name == "subject_statuses":
                cols.update(status=1, eventDate=now)
            else:
                target = (int(now) // _DAY + rng.randint(10, 120)) * _DAY + 17 * 3600
                cols.update(status=1, targetDueDate=float(target),
                            minDueDate=float(target - 7 * _DAY),
                            maxDueDate=float(target + 7 * _DAY))
        elif name == "appointments":
            visits = self.tables["patient_visits"].snap
            k = int(rng.random() * len(visits.ids))
            start = float(visits.cols["targetDueDate"][k])
            cols.update(pv=int(visits.ids[k]), status=1, plannedStart=start,
                        plannedEnd=start + 3600)
        elif name == "patient_visit_elements":
            cols["completedOn"] = float("nan")
        return cols

    def insert(
        self,
        endpoint: str,
        n: int = 1,
        *,
        under: str = "any",
        parent_ids: list[int] | None = None,
        values: dict[str, Any] | list[dict[str, Any]] | None = None,
        signal: str | None = None,
    ) -> list[int]:
        """Add ``n`` records stamped at the tenant clock.

        Args:
            endpoint: Endpoint name.
            n: Number of records.
            under: For child endpoints: ``old`` puts them under parents that are unchanged since
                generation and changed more than 30 days before the clock (their change field
                does not move, and no recent window covers it), ``new`` under parents inserted
                or updated since, ``any`` anywhere.
            parent_ids: Explicit parents (cycled through), instead of ``under``.
            values: Column values of the new records (``{"subject": 12}``), or one dict each.
            signal: How a client can learn of the change (the change log's ``signal``).

        Returns:
            The ids of the new records.
        """
        with self.lock:
            table = self._table_for_mutation(endpoint)
            spec = table.spec
            candidates: list[int] | None = parent_ids
            if spec.parent is not None and candidates is None:
                psnap = self.tables[spec.parent[0]].snap
                changed = {rid for rid, o in psnap.over.items() if not o.original}
                if under == "old":  # unchanged, and not recently: no change window covers it
                    quiet = psnap.ids[psnap.cols["changed"] < self.clock - 30 * _DAY].tolist()
                    candidates = [r for r in quiet if r not in changed] or [
                        int(r) for r in psnap.ids.tolist() if r not in changed]
                elif under == "new":
                    candidates = sorted(int(r) for r in changed if psnap.position(r) is not None)
                else:
                    candidates = [int(r) for r in psnap.ids]
                if not candidates:
                    raise ValueError(f"no {under} parents to insert {endpoint} under")
            snap = table.snap
            over = dict(snap.over)
            added: list[dict[str, Any]] = []
            new_ids = []
            for k in range(n):
                pid = None
                if candidates is not None:
                    pid = (candidates[k % len(candidates)] if parent_ids
                           else self._mut_rng.choice(candidates))
                rid = table.next_id() if not new_ids else new_ids[-1] + 1
                cols = self._new_columns(spec, pid)
                cols.update((values[k] if isinstance(values, list) else values) or {})
                links = self.make_links(spec, cols, self._mut_rng)
                base = self.make_base(spec, rid, cols, links, self._mut_rng.getrandbits(64))
                over[rid] = Over(1, base, links, False)
                added.append(cols)
                new_ids.append(rid)
            ids = np.concatenate([snap.ids, np.array(new_ids, dtype=np.int64)])
            cols_out = {
                name: np.concatenate([col, np.array([c[name] for c in added], dtype=col.dtype)])
                for name, col in snap.cols.items()
            }
            self.clock += 1
            table.commit(ids, cols_out, over)
            for rid, c in zip(new_ids, added, strict=True):
                self._log(table, rid, c.get("parent"), "insert", signal, c["changed"],
                          over[rid].base)
            return new_ids

    def delete(self, endpoint: str, n: int = 1, *, ids: list[int] | None = None,
               signal: str | None = None) -> list[int]:
        """Remove ``n`` records (or ``ids``), and the records listed under them by path.

        Returns:
            The ids of the removed records (not of cascaded children).
        """
        with self.lock:
            table = self._table_for_mutation(endpoint)
            positions = self._positions(table, n, ids)
            gone = self._drop(table, np.array(positions, dtype=np.int64), signal)
            for child in self.tables.values():
                if child.spec.parent and child.spec.parent[0] == table.spec.name:
                    csnap = child.snap
                    hit = np.nonzero(np.isin(csnap.cols["parent"], gone))[0]
                    if len(hit):
                        self._drop(child, hit, signal)
            return sorted(int(g) for g in gone)

    def _drop(self, table: Table, positions: np.ndarray, signal: str | None) -> np.ndarray:
        snap = table.snap
        gone = snap.ids[positions]
        keep = np.ones(len(snap.ids), dtype=bool)
        keep[positions] = False
        over = {rid: o for rid, o in snap.over.items() if rid not in set(gone.tolist())}
        table.commit(snap.ids[keep], {k: v[keep] for k, v in snap.cols.items()}, over)
        parents = snap.cols.get("parent")
        for pos in positions:
            self._log(table, int(snap.ids[pos]),
                      int(parents[pos]) if parents is not None else None, "delete", signal)
        return gone

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
            snap = table.snap
            chosen = self._choose(table, n, ids)
            marks = self._corrupted.setdefault(table.spec.name, {})
            over = dict(snap.over)
            for row in chosen:
                if kind == "none":
                    marks.pop(row.rid, None)
                else:
                    marks[row.rid] = kind
                # A new generation: render caches are dropped and query caches see a new version.
                prev = snap.over.get(row.rid)
                over[row.rid] = Over((prev.gen if prev else 0) + 1, row.base,
                                     prev.links if prev else None,
                                     prev.original if prev else True)
            table.commit(snap.ids, snap.cols, over)
            return sorted(r.rid for r in chosen)

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

    def advance_day(self, late_share: float = 0.05) -> dict[str, Any]:
        """Move to the next day and apply one day of a site's changes (see ``days.py``)."""
        from cc_sandbox.days import simulate_day

        return simulate_day(self, late_share)

    def changes_of(self, day: int) -> list[dict[str, Any]]:
        """The change log of simulated day ``day`` (0: mutations before the first day)."""
        return [c for c in self.changes if c["day"] == day]


def _dig(doc: dict[str, Any], path: str) -> Any:
    value: Any = doc
    for part in path.split("/"):
        value = value.get(part) if isinstance(value, dict) else None
    return value


def _exact(instant: float) -> float:
    """An instant as its served string parses back (whole microseconds)."""
    return round(instant * 1_000_000) / 1_000_000


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


Fixup = Callable[["Tenant", dict[str, Any], dict[str, int], dict[str, Any], int], None]


def _no_fixup(tenant: Tenant, base: dict[str, Any], links: dict[str, int],
              cols: dict[str, Any], pos: int) -> None:
    """Leave a generated record as it is."""


def _fix_study(tenant: Tenant, base: dict[str, Any], links: dict[str, int],
               cols: dict[str, Any], pos: int) -> None:
    """Status and creation from the study's columns (``lastUpdatedOn`` is its change field)."""
    base["status"] = act.STATUS_NAMES[int(cols["status"])]
    base["createdOn"] = tenant.dt(cols["createdOn"])


def _fix_study_status(tenant: Tenant, base: dict[str, Any], links: dict[str, int],
                      cols: dict[str, Any], pos: int) -> None:
    """The tenant's study statuses, in order: the names studies carry."""
    name, active, _ = act.STUDY_STATUSES[pos % len(act.STUDY_STATUSES)]
    base.update(name=name, isActive=active, isEnrollmentPermitted=name in ("Enrolling", "Active"))


def _fix_patient_visit(tenant: Tenant, base: dict[str, Any], links: dict[str, int],
                       cols: dict[str, Any], pos: int) -> None:
    """Point a patient visit at a visit of its study; status and due dates from columns."""
    visit = links.get("visits")
    if visit is not None:
        base["visitId"] = visit
        base["visitName"] = tenant.label("visits", visit)
    if "status" in cols:
        base["status"] = act.VISIT_STATUSES[int(cols["status"])]
        for name in ("targetDueDate", "minDueDate", "maxDueDate"):
            base[name] = tenant.dt(cols[name])


def _fix_visit_element(tenant: Tenant, base: dict[str, Any], links: dict[str, int],
                       cols: dict[str, Any], pos: int) -> None:
    """Point a patient visit element at an element; completed when its visit is."""
    element = links.get("elements")
    if element is not None:
        base["elementId"] = element
        base["name"] = tenant.label("elements", element)
    if "completedOn" in cols:
        base["completedOn"] = tenant.dt(cols["completedOn"])


def _fix_appointment(tenant: Tenant, base: dict[str, Any], links: dict[str, int],
                     cols: dict[str, Any], pos: int) -> None:
    """Status and planned times from the appointment's visit."""
    if "status" in cols:
        base["status"] = act.APPOINTMENT_STATUSES[int(cols["status"])]
        base["plannedStart"] = tenant.dt(cols["plannedStart"])
        base["plannedEnd"] = tenant.dt(cols["plannedEnd"])


def _fix_stipend(tenant: Tenant, base: dict[str, Any], links: dict[str, int],
                 cols: dict[str, Any], pos: int) -> None:
    """Give a stipend its patient visit's id."""
    base["patientVisitId"] = links.get("patient_visits")


def _fix_subject_status(tenant: Tenant, base: dict[str, Any], links: dict[str, int],
                        cols: dict[str, Any], pos: int) -> None:
    """Keep the key (subject, status, event date) of subject statuses set."""
    base["status"] = act.SUBJECT_STATUSES[int(cols["status"])]
    base["eventDate"] = tenant.dt(cols["eventDate"])


_FIXUPS: dict[str, Fixup] = {
    "studies": _fix_study,
    "system_study_statuses": _fix_study_status,
    "patient_visits": _fix_patient_visit,
    "patient_visit_elements": _fix_visit_element,
    "appointments": _fix_appointment,
    "patient_visit_stipends": _fix_stipend,
    "subject_statuses": _fix_subject_status,
}


class _Gen:
    """Fills one record from its model's field list.

    Two generators, both seeded from ``streams``: one for the fields previews copy (names,
    uid, ...), one for the rest. The fields previews copy are then the same whether or not the
    rest is filled: ``identity`` mode fills only them, which is what a preview of the record
    needs, without generating the records the record points at.
    """

    def __init__(self, tenant: Tenant, streams: int, links: dict[str, int],
                 identity: bool = False) -> None:
        self.tenant = tenant
        self.names = seeded(mix_on(mix_on(0x9E3779B97F4A7C15, streams), 1))
        # Seeding costs 5 us a generator: identities (most generated records) need one.
        self.main = self.names if identity else seeded(streams)
        self.ref_rng = self.main
        self.rng = self.main
        self.identity = identity
        self.links = links
        self.first = self.names.choice(_FIRST_NAMES)
        self.last = self.names.choice(_LAST_NAMES)

    def model(self, model: str, depth: int, rid: int | None, changed: float,
              fields: int | None = None) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if rid is None:  # a nested object: every field from the main generator
            for fname, code in MODELS.get(model, ()):
                out[fname] = self.value(fname, code, depth, changed)
            return out
        plan = _plan(model, self.identity)
        for fname, code, role in plan if fields is None else plan[:fields]:
            if role == "id":
                out[fname] = rid
            elif role == "names":
                self.rng = self.names
                out[fname] = self.value(fname, code, depth, changed)
                self.rng = self.main
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
            if rid is None:
                rid = self.tenant.random_id(table, self.ref_rng)
            if rid is not None:
                return self.preview(model, table, rid)
        if depth >= 1:
            return None
        return self.model(model, depth + 1, None, CLOCK_START)

    def preview(self, model: str, table: str, rid: int) -> dict[str, Any]:
        """A preview of record ``rid`` of ``table``: fields copied from it, by name.

        Copied from the generated record, so that changing a record never changes the records
        that point at it. Cached per tenant; records share them read-only (updates copy the
        top level of a record, never a nested object).
        """
        key = (model, table, rid)
        cached = self.tenant.previews.get(key)
        if cached is not None:
            return cached
        source = self.tenant.identity_of(table, rid, _wanted(model))
        if not isinstance(source, dict):
            source = {}
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
        self.tenant.previews.put(key, out)
        return out


#: Fields (lower case) that previews copy from the record they point at, and label sources.
PREVIEW_FIELDS = frozenset(
    {name.lower() for model in REF_TABLES for name, code in MODELS.get(model, ())
     if not code.startswith(("@", "["))} | {"name", "displayname", "rolename", "fullname"}
)


@functools.lru_cache(maxsize=512)
def _plan(model: str, identity: bool) -> tuple[tuple[str, str, str], ...]:
    """A record's fields with their role: ``id``, ``names`` (previews copy them), ``main``.

    In identity mode only the first two: the fields previews copy, nothing else generated.
    """
    out = []
    for fname, code in MODELS.get(model, ()):
        if fname in ("id", "Id"):
            out.append((fname, code, "id"))
        elif fname.lower() in PREVIEW_FIELDS and not code.startswith(("@", "[")):
            out.append((fname, code, "names"))
        elif not identity:
            out.append((fname, code, "main"))
    return tuple(out)


#: Keys a label is read from (``Tenant.label``), in order.
_LABEL_KEYS = ("name", "Name", "displayName", "RoleName")
_NOTHING: frozenset[str] = frozenset()
#: Tables whose fixup reads the record's links (their identities need them).
_LINKED_FIXUPS = frozenset({"patient_visits", "patient_visit_elements", "patient_visit_stipends"})


@functools.lru_cache(maxsize=512)
def _wanted(model: str) -> frozenset[str]:
    """Lower-case names of the fields a preview model copies from its record."""
    return frozenset(name.lower() for name, code in MODELS.get(model, ())
                     if not code.startswith(("@", "[")))


@functools.lru_cache(maxsize=4096)
def _prefix(model: str, want: frozenset[str]) -> int:
    """How many identity fields of ``model`` hold every ``want`` field and the label's."""
    plan = _plan(model, True)
    needed = [i for i, (fname, _, _) in enumerate(plan)
              if fname.lower() in want or fname in _LABEL_KEYS]
    return needed[-1] + 1 if needed else 0


class _Memo:
    """A cache: a pinned dict that is never emptied, over one cleared when it outgrows ``limit``.

    While ``pinning``, new entries go to the pinned dict.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.pinned: dict[Any, Any] = {}
        self.recent: dict[Any, Any] = {}
        self.pinning = False

    def get(self, key: Any) -> Any:
        """The value cached for ``key``, or ``None``."""
        hit = self.pinned.get(key)
        return hit if hit is not None else self.recent.get(key)

    def put(self, key: Any, value: Any) -> None:
        """Cache ``value`` for ``key``."""
        if self.pinning or key in self.pinned:  # e.g. a whole identity over a pinned prefix
            self.pinned[key] = value
            return
        if len(self.recent) > self.limit:
            self.recent.clear()
        self.recent[key] = value


class _WouldDraw(Exception):
    """A preview built ahead needed a field its record lacks (drawn by each reader)."""


class _CopyOnly(_Gen):
    """Builds previews ahead of any reader: copies fields, never draws one."""

    def __init__(self, tenant: Tenant) -> None:  # no generator: nothing is drawn
        self.tenant = tenant

    def value(self, fname: str, code: str, depth: int, changed: float) -> Any:
        raise _WouldDraw(fname)


class _LazyRandom:
    """A ``random.Random`` seeded on its first draw: most records' links draw nothing."""

    __slots__ = ("_rng", "_seed")

    def __init__(self, seed: int) -> None:
        self._seed = seed
        self._rng: random.Random | None = None

    def random(self) -> float:
        """The next draw of ``random.Random(seed)``."""
        if self._rng is None:
            self._rng = seeded(self._seed)
        return self._rng.random()


def _uuid(rng: random.Random) -> str:
    """A version-4 UUID drawn from ``rng`` (uuid.uuid4 would not be deterministic)."""
    bits = rng.getrandbits(128)
    bits = (bits & ~(0xF << 76)) | (0x4 << 76)
    bits = (bits & ~(0x3 << 62)) | (0x2 << 62)
    h = f"{bits:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"
