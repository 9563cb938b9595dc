"""Singer output: the one place a RECORD message becomes a line of JSON.

``LineWriter`` is the tap's message writer. A RECORD line is built by ``record_line`` whether the
record comes from the SDK (a ``RecordMessage``, when stream maps or flattening are in play) or
from a stream directly; ``records.PageEncoder`` writes the same bytes for a whole page, and a test
holds the two to that. ``RecordOutput`` is what a stream writes through.
"""

from __future__ import annotations

import datetime as dt
import sys
import typing as t

import msgspec
from singer_sdk.contrib.msgspec import MsgSpecWriter, enc_hook
from singer_sdk.singerlib import RecordMessage, SchemaMessage
from typing_extensions import override

from tap_clinical_conductor.records import JSONObject

if t.TYPE_CHECKING:
    from singer_sdk import Tap
    from singer_sdk.singerlib.encoding.simple import Message


def _enc_hook(obj: object) -> object:
    return obj.value if isinstance(obj, JSONObject) else enc_hook(obj)


def record_line(
    stream: str,
    record: t.Mapping[str, t.Any],
    version: int | None,
    time_extracted: dt.datetime | None,
) -> dict[str, object]:
    """The fields of a RECORD message, in the order they are written."""
    line: dict[str, object] = {"type": "RECORD", "stream": stream, "record": record}
    if version is not None:
        line["version"] = version
    if time_extracted is not None:
        line["time_extracted"] = time_extracted
    return line


class LineWriter(MsgSpecWriter):
    """MsgSpecWriter without its two per-record costs.

    ``Message.to_dict`` deep-copies every record through ``dataclasses.asdict`` and the stock
    writer flushes stdout after every message. Records are serialised straight from the message
    and stdout is flushed at every non-record message (SCHEMA, STATE, ACTIVATE_VERSION), which is
    all a target needs to see state in order.
    """

    _encoder = msgspec.json.Encoder(enc_hook=_enc_hook, decimal_format="number")
    _buffer = bytearray(4096)

    @override
    def serialize_message(self, message: Message) -> bytearray:
        if isinstance(message, RecordMessage):
            line = record_line(
                message.stream, message.record, message.version, message.time_extracted
            )
        else:
            line = message.to_dict()
        return self._encode(line)

    @override
    def write_message(self, message: Message) -> None:
        sys.stdout.buffer.write(self.format_message(message))
        if not isinstance(message, RecordMessage):
            sys.stdout.flush()

    def write_record(
        self,
        stream: str,
        record: t.Mapping[str, t.Any],
        version: int | None,
        extracted_at: dt.datetime,
    ) -> None:
        """Write one RECORD line without building a message object."""
        sys.stdout.buffer.write(self._encode(record_line(stream, record, version, extracted_at)))

    def write_lines(self, lines: bytes) -> None:
        """Write complete, newline-terminated messages (a page of records) at once."""
        sys.stdout.buffer.write(lines)

    def _encode(self, line: dict[str, object]) -> bytearray:
        self._encoder.encode_into(line, self._buffer)
        self._buffer.extend(b"\n")
        return self._buffer


class RecordOutput:
    """Where a stream writes its records: the tap's writer, as lines when it is a ``LineWriter``."""

    def __init__(self, tap: Tap) -> None:
        self._tap = tap
        self._declared: set[str] = set()

    def declare(self, stream: str, schema: dict[str, t.Any], key: list[str]) -> None:
        """Write ``stream``'s SCHEMA once per run, for a stream that is not in the catalog."""
        if stream not in self._declared:
            self._declared.add(stream)
            self._tap.write_message(SchemaMessage(stream=stream, schema=schema, key_properties=key))

    @property
    def _lines(self) -> LineWriter | None:
        writer = self._tap.message_writer
        return writer if isinstance(writer, LineWriter) else None

    def takes_lines(self) -> bool:
        """Whether records may be written as preformatted lines (the tap's own writer)."""
        return self._lines is not None

    def write_lines(self, lines: bytes) -> None:
        """Write preformatted RECORD lines; only when ``takes_lines()``."""
        writer = self._lines
        if writer is None:
            raise RuntimeError("preformatted lines need the tap's LineWriter")
        writer.write_lines(lines)

    def write_record(
        self,
        stream: str,
        record: dict[str, t.Any],
        version: int | None,
        extracted_at: dt.datetime,
    ) -> None:
        """Write a RECORD message for ``stream`` (``extracted_at``: when its page arrived)."""
        writer = self._lines
        if writer is not None:
            writer.write_record(stream, record, version, extracted_at)
        else:
            self._tap.write_message(
                RecordMessage(
                    stream=stream, record=record, version=version, time_extracted=extracted_at
                )
            )
