"""The change condition of ``$filter``, and which datetime literal format the tenant accepts.

CC's documentation does not say how a datetime is written in ``$filter``. ``FilterFormats``
starts from the configured format (``auto``: the one the last run remembered in the Singer state,
else the first of ``timestamps.LITERAL_FORMATS``), moves to the next candidate when the server
answers 400, and keeps the first one a server accepted for the rest of the run, for every stream
and worker thread. ``verify`` checks, on a known record, that the server compares the literal as
the instant the tap meant, not shifted by the UTC offset. ``STATE_KEY`` is where the state keeps
the accepted format, so a later run does not probe again; a remembered format the server refuses
is probed past like any other candidate.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import typing as t
from dataclasses import dataclass

from tap_clinical_conductor.errors import BadRequest, RequestFailed
from tap_clinical_conductor.timestamps import LITERAL_BY_NAME, LITERAL_FORMATS, LiteralFormat


@dataclass(frozen=True)
class ChangeFilter:
    """Rows whose ``field`` is at or after ``lower`` (an instant), or null.

    ``lower`` is rendered in the tenant's zone. A row without a change value cannot say it
    changed, and ``field ge X`` never matches it: it would only ever arrive with a full reload.
    Such rows are read by every incremental run.
    """

    field: str
    lower: dt.datetime
    tenant_tz: dt.tzinfo

    def clause(self, fmt: LiteralFormat) -> str:
        """The ``$filter`` clause, with the datetime written as ``fmt``."""
        return f"{self.field} ge {fmt.render(self.lower, self.tenant_tz)} or {self.field} eq null"


#: The tap-level key of the Singer state that keeps what a run learnt about the tenant.
STATE_KEY = "tenant"
#: The accepted ``$filter`` datetime format, inside ``STATE_KEY``.
FORMAT_KEY = "filter_datetime_format"


def remembered_format(state: t.Mapping[str, t.Any]) -> str | None:
    """The format name an earlier run kept in ``state`` (``None``: none, or not a format)."""
    kept = state.get(STATE_KEY)
    name = kept.get(FORMAT_KEY) if isinstance(kept, dict) else None
    return name if isinstance(name, str) and name in LITERAL_BY_NAME else None


class FilterFormats:
    """The datetime literal format of the run, negotiated with the server (thread-safe)."""

    def __init__(self, setting: str, logger: logging.Logger, remembered: str | None = None) -> None:
        """``setting`` is ``filter_datetime_format``: ``auto`` or a format name.

        ``remembered``: the format an earlier run's server accepted (used with ``auto`` only). It
        is tried first, unconfirmed, so a refusal moves on to the other candidates.
        """
        self._lock = threading.Lock()
        auto = setting == "auto"
        first = LITERAL_BY_NAME[setting] if not auto else LITERAL_FORMATS[0]
        if auto and remembered in LITERAL_BY_NAME:
            first = LITERAL_BY_NAME[remembered]
        self._order = [first, *(f for f in LITERAL_FORMATS if f != first)]
        self._current = first
        self._confirmed = not auto
        self._negotiated = auto
        self.remembered = auto and first.name == remembered
        self._logger = logger

    def _following(self, fmt: LiteralFormat) -> LiteralFormat | None:
        """The candidate after ``fmt``."""
        index = self._order.index(fmt)
        return self._order[index + 1] if index + 1 < len(self._order) else None

    def to_keep(self) -> str | None:
        """The format to keep in the state: negotiated (not configured) and proven."""
        with self._lock:
            return self._current.name if self._negotiated and self._confirmed else None

    def confirmed(self) -> bool:
        """Whether the current format is proven (accepted by the server, or configured)."""
        with self._lock:
            return self._confirmed

    def current(self) -> LiteralFormat:
        """The format to write the next request with."""
        with self._lock:
            return self._current

    def accepted(self, fmt: LiteralFormat) -> None:
        """A request with ``fmt`` in its ``$filter`` succeeded."""
        with self._lock:
            if not self._confirmed and fmt == self._current:
                self._confirmed = True
                self._logger.info(
                    "$filter datetime literal format: %s%s",
                    fmt.name,
                    " (remembered from an earlier run)" if self.remembered else "",
                )

    def refused(self, fmt: LiteralFormat, error: BadRequest) -> LiteralFormat:
        """A 400 on a filter written as ``fmt``: the format to try instead.

        Raises:
            RequestFailed: A proven format was refused, or no candidate is left.
        """
        with self._lock:
            if fmt != self._current:
                # Another thread already moved past ``fmt``: the move is made and said once.
                return self._current
            if self._confirmed:
                raise RequestFailed(f"{error} (with the {fmt.name} datetime format)")
            following = self._following(fmt)
            if following is None:
                raise RequestFailed(
                    "the server accepted none of the datetime literal formats "
                    f"({', '.join(f.name for f in LITERAL_FORMATS)}) in $filter; last error: "
                    f"{error}. Set filter_datetime_format."
                )
            self._logger.info(
                "$filter format %s%s refused (HTTP 400); trying %s",
                fmt.name,
                " (remembered from an earlier run)" if self.remembered else "",
                following.name,
            )
            self.remembered = False
            self._current = following
            return following

    def verify(
        self, matches: t.Callable[[tuple[LiteralFormat, dt.datetime]], bool], instant: dt.datetime
    ) -> None:
        """Check the current format on a record whose change value is ``instant``.

        ``matches((fmt, at))`` asks the server whether the record satisfies ``field ge at``
        written as ``fmt``. It must at ``instant`` and must not one second later; a format the
        server accepts but compares otherwise is treated like a refused one.

        Raises:
            RequestFailed: No candidate compares correctly (or a configured one does not).
        """
        later = instant + dt.timedelta(seconds=1)
        shifted: list[str] = []
        while True:
            fmt = self.current()
            try:
                right = matches((fmt, instant)) and not matches((fmt, later))
            except BadRequest as exc:
                try:
                    self.refused(fmt, exc)
                except RequestFailed:
                    if not shifted:
                        raise
                    raise RequestFailed(_shift_message(shifted)) from None
                continue
            if right:
                self.accepted(fmt)
                return
            shifted.append(fmt.name)
            with self._lock:
                following = None if self._confirmed else self._following(fmt)
                if following is None:
                    raise RequestFailed(_shift_message(shifted))
                self._logger.warning(
                    "$filter format %s is accepted but shifts the time on a known record; "
                    "trying %s",
                    fmt.name,
                    following.name,
                )
                self.remembered = False
                self._current = following


def _shift_message(shifted: list[str]) -> str:
    return (
        f"the server accepts the {' and '.join(shifted)} datetime literal in $filter but compares "
        "it with another instant than the one written (a record changed at exactly that time "
        "does not match, or one changed before it does): it reads the literal in another time "
        "zone, and refuses the other formats. Check tenant_timezone, or set "
        "filter_datetime_format."
    )
