"""Every use of a private singer-sdk internal, in one place, for the SDK versions it was checked on.

singer-sdk has no public hook for what the tap needs here:

* ``Stream.sync`` is final and runs its record loop in ``_sync_records``; the tap writes whole
  pages instead of records when nothing is mapped (``CCStream.get_records``), so it must know,
  for the length of that loop, whether messages are written at all (batch files and
  ``write_messages=False`` need plain records).
* ``_increment_stream_state`` is the SDK's per-record state bookkeeping; the page writer moves
  the bookmark once per page through it, and records that cannot raise the bookmark skip it.
* ``progress_markers`` in ``stream_state`` is where an unsorted stream keeps the greatest change
  value until the SDK promotes it to the bookmark at the end of the sync. A read that is not
  proven complete drops it (``hold_bookmark``), so the bookmark does not move past rows that
  were never read.
* ``state_manager.is_flushed`` tells the SDK that records were written since the last STATE.
* ``replication_key`` (public, but read by the SDK during the sync) is cleared when a stream
  turns out to have no change field: the run is FULL_TABLE.
* ``stream_state`` is the SDK's own dict for the stream, written back into every STATE message:
  a stream the catalog sets to FULL_TABLE drops its bookmark there (``forget_bookmark``), and a
  per-parent stream keeps its sweep position there (``keep_in_state``).
* ``_write_state_message`` writes a STATE message now: a long per-parent stream checkpoints its
  sweep position (``checkpoint``), so that a run killed mid-stream resumes where it was. The SDK
  only writes one every 10,000 records of its own loop, which whole-page writes bypass.
* ``finalize_state_progress_markers`` (public, but documented as internal) is where the SDK
  promotes a sync's progress marker to the bookmark, after ``sync``: the stream's end line
  (``sync_finished``) follows it, so it reports the bookmark the STATE carries. Its start line
  (``sync_started``) opens ``_sync_records``, which record and BATCH syncs both run.

Any singer-sdk other than ``CHECKED_VERSIONS`` stops the tap at import: re-check each item above
against its source, then add the version.
"""

from __future__ import annotations

import enum
import importlib.metadata
import typing as t

from singer_sdk import Stream
from typing_extensions import override

CHECKED_VERSIONS = frozenset({"0.54.9"})


class UnsupportedSDKVersion(RuntimeError):
    """The installed singer-sdk is not one this module was checked against."""


def check_sdk_version(installed: str) -> None:
    """Refuse a singer-sdk whose private internals were not checked.

    Raises:
        UnsupportedSDKVersion: ``installed`` is not in ``CHECKED_VERSIONS``.
    """
    if installed not in CHECKED_VERSIONS:
        checked = ", ".join(sorted(CHECKED_VERSIONS))
        raise UnsupportedSDKVersion(
            f"tap-clinical-conductor uses private singer-sdk internals checked against "
            f"singer-sdk {checked}, but {installed} is installed. Install singer-sdk=={checked}, "
            f"or check tap_clinical_conductor/sdk_private.py against {installed} and add it to "
            "CHECKED_VERSIONS."
        )


check_sdk_version(importlib.metadata.version("singer-sdk"))


class Emission(enum.Enum):
    """How the records of the current sync leave the stream."""

    #: Whole pages written as RECORD lines by the stream itself; nothing reaches the SDK loop.
    PAGES = "pages"
    #: Records handed to the SDK, ``data`` opaque to its per-record property walk.
    OBJECTS = "objects"
    #: Records handed to the SDK as plain dicts (batch files, flattening).
    PLAIN = "plain"


class GuardedStream(Stream):
    """A Stream whose subclass chooses, per sync, how records leave it (see ``Emission``)."""

    emission: Emission = Emission.OBJECTS
    _max_seen: str | None = None
    _held: bool = False

    def choose_emission(self, *, write_messages: bool) -> Emission:
        """How this sync's records leave the stream."""
        raise NotImplementedError

    def sync_started(self) -> None:
        """A sync of the stream begins (before its first request)."""

    def sync_finished(self) -> None:
        """A sync of the stream ended and its bookmark is final."""

    @override
    def finalize_state_progress_markers(self, state: dict[str, t.Any] | None = None) -> None:
        super().finalize_state_progress_markers(state)
        if state is None and self.selected:
            self.sync_finished()

    @override
    def _sync_records(
        self, context: t.Mapping[str, t.Any] | None = None, *, write_messages: bool = True
    ) -> t.Generator[dict[str, t.Any], t.Any, t.Any]:
        self.sync_started()
        self.emission = self.choose_emission(write_messages=write_messages)
        self._held = False
        self._max_seen = None
        try:
            yield from super()._sync_records(context, write_messages=write_messages)
        finally:
            self.emission = Emission.OBJECTS

    @override
    def _increment_stream_state(
        self, latest_record: dict[str, t.Any], *, context: t.Mapping[str, t.Any] | None = None
    ) -> None:
        # For an unsorted stream the SDK only ever keeps the greatest value, so a record that
        # does not raise it cannot change the state: skip the SDK's state bookkeeping for it. A
        # null change value would also log a warning per record.
        value = latest_record.get("modifiedDate")
        if self._held or value is None or (self._max_seen is not None and value <= self._max_seen):
            return
        self._max_seen = value
        super()._increment_stream_state(latest_record, context=context)

    def advance_bookmark(self, value: str) -> None:
        """Account for records written outside the SDK loop, the greatest change value ``value``."""
        self._increment_stream_state({"modifiedDate": value})

    def records_written(self) -> None:
        """Records were written outside the SDK loop: the next STATE message is due."""
        self.state_manager.is_flushed = False

    def hold_bookmark(self) -> None:
        """Keep the bookmark where it was at the start of this sync, whatever is read after."""
        self._held = True
        self.stream_state.pop("progress_markers", None)

    def switch_to_full_table(self) -> None:
        """Read the stream in full this run, keeping no bookmark."""
        self.replication_key = None
        self.forced_replication_method = "FULL_TABLE"

    def keep_in_state(self, key: str, value: object) -> None:
        """Keep ``value`` under ``key`` in the stream's state (it goes out with every STATE)."""
        self.stream_state[key] = value
        self.state_manager.is_flushed = False

    def checkpoint(self) -> None:
        """Write a STATE message now, with everything kept so far."""
        self.state_manager.is_flushed = False
        self._write_state_message()

    def forget_bookmark(self) -> None:
        """Drop the stream's bookmark from the state: a FULL_TABLE stream keeps none."""
        for key in ("replication_key", "replication_key_value", "progress_markers"):
            self.stream_state.pop(key, None)
