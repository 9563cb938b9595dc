"""The schema of each stream's ``data``: its API model, generated from the OpenAPI document.

One JSON file per catalogue stream, written by ``cc_dev/gen_tap_schemas.py`` from the CC OpenAPI
document (build 8.5.12), which is not shipped. The files are package data; this module only reads
them. Every field is nullable and unknown fields are allowed: tenants run newer builds than the
spec and send more than it says.
"""

from __future__ import annotations

import json
import typing as t
from importlib import resources


def data_schema(stream: str) -> dict[str, t.Any]:
    """The JSON schema of ``data`` in the records of ``stream`` (a fresh copy)."""
    text = resources.files(__package__).joinpath(f"{stream}.json").read_text(encoding="utf-8")
    schema: dict[str, t.Any] = json.loads(text)
    return schema
