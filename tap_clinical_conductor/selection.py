"""Which parents a per-parent stream reads this run.

The per-parent reading code asks ``ParentSelector.select`` and reads exactly what it answers.
Today's policies (``child_scope``):

* ``all_parents``: every parent, every run. Complete: rows the read does not see are gone.
* ``changed_parents``: on an incremental run, only parents whose change field moved since the
  child's bookmark (minus the lookback); far fewer requests, but a child added under an
  unchanged parent waits for the next full run. Never complete.

This is also the home of the run's request budget and the sweep cursor when parents are chosen
under a budget: selection, budget and cursor belong together.
"""

from __future__ import annotations

import datetime as dt
from array import array
from dataclasses import dataclass

from tap_clinical_conductor.catalogue import Endpoint
from tap_clinical_conductor.parents import ParentListing
from tap_clinical_conductor.timestamps import UTC, parse_datetime


@dataclass(frozen=True)
class Selection:
    """The parents to read, in order, and whether they are all of them.

    ``unproven`` says why the listing they come from is not proven complete (``None``: it is).
    """

    ids: array[int]
    all_parents: bool
    unproven: str | None = None


class ParentSelector:
    """Chooses the parents of per-parent streams under the run's ``child_scope``."""

    def __init__(self, listing: ParentListing, *, child_scope: str, lookback: dt.timedelta) -> None:
        self._listing = listing
        self._changed_only = child_scope == "changed_parents"
        self._lookback = lookback

    def select(self, parent: Endpoint, child_bookmark: str | None) -> Selection:
        """The parents to read for a child stream whose bookmark is ``child_bookmark``.

        Raises:
            EndpointUnavailable: The parent's collection answered 404 or 501.
        """
        since = None
        if self._changed_only and child_bookmark:
            since = parse_datetime(child_bookmark, UTC) - self._lookback
        ids = self._listing.ids(parent, since)
        return Selection(
            ids, all_parents=since is None, unproven=self._listing.unproven(parent, since)
        )
