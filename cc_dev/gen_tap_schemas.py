"""Generate the tap's ``data`` schemas from the Clinical Conductor OpenAPI document.

For every catalogue stream, the GET response model of its endpoint becomes the JSON schema of the
record's ``data`` property, written to ``tap_clinical_conductor/schemas/<stream>.json``. The
spec (Swagger 2.0, build 8.5.12) is not shipped: it sits beside the repository in
``../shared/reference/``. Run this when the spec or the catalogue changes::

    python -m cc_dev.gen_tap_schemas [PATH/TO/clinical-conductor-openapi-8.5.12.json]

``tests/tap/test_schemas.py`` regenerates in memory and fails when the files differ.

The spec describes what a tenant should send; real tenants run newer builds and send more. So
every property is nullable, every object allows unknown properties, and validation keywords that
data could break (``enum``, ``maxLength``, ``pattern``, ``required``) are left out; enum values
stay in the description. Integers keep the range of their .NET type (``int32``/``int64``), which
typed targets read as the column width. Nested models are inlined; a model that contains itself
is cut at the repeat as an open object.
"""

from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path

from tap_clinical_conductor.catalogue import CATALOGUE, Endpoint
from tap_clinical_conductor.records import id_is_string

SPEC_NAME = "clinical-conductor-openapi-8.5.12.json"
SCHEMA_DIR = Path(__file__).resolve().parents[1] / "tap_clinical_conductor" / "schemas"
#: Environment variable naming the spec file, for a checkout without ``../shared`` beside it.
SPEC_ENV = "CC_OPENAPI_SPEC"

_INT_RANGES = {"int32": 31, "int64": 63}


def spec_path() -> Path | None:
    """The spec: ``$CC_OPENAPI_SPEC``, else ``../shared/reference/`` beside the repository.

    In a git worktree the main checkout's ``../shared`` counts as beside the repository too.
    """
    if os.environ.get(SPEC_ENV):
        return Path(os.environ[SPEC_ENV])
    root = SCHEMA_DIR.parents[1]
    roots = [root]
    dot_git = root / ".git"
    if dot_git.is_file():  # a worktree: "gitdir: <main>/.git/worktrees/<name>"
        gitdir = Path(dot_git.read_text().split(":", 1)[1].strip())
        roots.append(gitdir.parents[2])
    for folder in roots:
        candidate = folder.parent / "shared" / "reference" / SPEC_NAME
        if candidate.exists():
            return candidate
    return None


def _norm(path: str) -> str:
    """A path with its parameter names erased: the spec names them ``{id}`` in places."""
    return re.sub(r"\{[^}]*\}", "{}", path.lower())


def _nullable(kind: str) -> list[str]:
    return [kind, "null"]


class _Converter:
    """Swagger 2.0 definitions to self-contained, permissive JSON schemas."""

    def __init__(self, definitions: dict) -> None:
        self.definitions = definitions

    def model(self, name: str, stack: tuple[str, ...] = ()) -> dict:
        """An object schema for definition ``name``, nested models inlined."""
        definition = self.definitions[name]
        schema: dict = {"type": _nullable("object")}
        if name in stack:
            schema["description"] = f"{name} (contains itself; not expanded further)"
            schema["additionalProperties"] = True
            return schema
        schema["properties"] = {
            field: self.property(prop, (*stack, name))
            for field, prop in definition.get("properties", {}).items()
        }
        schema["additionalProperties"] = True
        return schema

    def property(self, prop: dict, stack: tuple[str, ...]) -> dict:
        """One property: nullable, with its format, description and nested models."""
        if "$ref" in prop:
            schema = self.model(prop["$ref"].rsplit("/", 1)[-1], stack)
        else:
            kind = prop.get("type", "object")
            schema = {"type": _nullable(kind)}
            fmt = prop.get("format")
            if kind == "array":
                schema["items"] = self.property(prop.get("items", {}), stack)
            elif kind == "object":
                schema["additionalProperties"] = True
            elif kind == "integer" and fmt in _INT_RANGES:
                bits = _INT_RANGES[fmt]
                schema["minimum"] = -(2**bits)
                schema["maximum"] = 2**bits - 1
            elif kind == "string" and fmt in ("date-time", "date", "uuid"):
                schema["format"] = fmt
        description = prop.get("description", "").strip()
        if "enum" in prop:
            values = ", ".join(str(v) for v in prop["enum"])
            lead = f"{description.rstrip('.')}. " if description else ""
            description = f"{lead}Values in the spec: {values}."
        if description:
            schema = {"description": description, **schema}
        return schema


def response_model(spec: dict, endpoint: Endpoint) -> dict | None:
    """The schema of one record of ``endpoint``'s GET response, ``None`` when not in the spec."""
    paths = {_norm(p): item for p, item in spec["paths"].items()}
    item = paths.get(_norm(endpoint.path))
    if item is None or "get" not in item:
        return None
    schema = item["get"]["responses"]["200"]["schema"]
    if schema.get("type") == "array":
        return schema["items"]
    name = schema["$ref"].rsplit("/", 1)[-1]
    if name.startswith("PageResultOf"):
        return spec["definitions"][name]["properties"]["Items"]["items"]
    return schema  # one object (instance details)


def data_schema(spec: dict, endpoint: Endpoint) -> dict:
    """The JSON schema of ``data`` in ``endpoint``'s records."""
    model = response_model(spec, endpoint)
    convert = _Converter(spec["definitions"])
    title = (model or {}).get("$ref", "").rsplit("/", 1)[-1]
    if title:
        described = f"The API object, model {title} of the CC OpenAPI document 8.5.12."
        schema = convert.model(title)
    elif model is not None:  # a list of scalars: the tap wraps each as {"value": ...}
        described = "One entry of the list the API returns, as {value: entry}."
        schema = {"properties": {"value": convert.property(model, ())}}
    else:
        described = "The API object; this endpoint is not in the CC OpenAPI document 8.5.12."
        schema = {"properties": {}}
    _accept_key_type(endpoint, schema["properties"])
    return {
        "type": "object",
        "description": f"{described} Unknown fields are kept; every field may be null.",
        **({"title": title} if title else {}),
        "properties": schema["properties"],
        "additionalProperties": True,
    }


def _accept_key_type(endpoint: Endpoint, properties: dict) -> None:
    """Let the id field also hold the type the tap keys the stream by, where the spec differs.

    The tap reads its key from this field; a spec that disagrees with the catalogue (site payment
    check requests: a uuid in the spec, an integer in the catalogue) is a question for a real
    tenant, so both are accepted until it is answered.
    """
    prop = properties.get(endpoint.id_field)
    if endpoint.id_from or prop is None:
        return
    keyed = "string" if id_is_string(endpoint) else "integer"
    if keyed not in prop["type"]:
        spec_type = prop["type"][0]
        prop["type"] = [spec_type, keyed, "null"]
        note = f"The spec types it as {spec_type}; the tap keys the stream by an {keyed} id."
        prop["description"] = f"{prop.get('description', '').rstrip('.')}. {note}".lstrip(". ")


def generate(spec: dict) -> dict[str, str]:
    """File name -> text of every schema file, one per catalogue stream."""
    return {
        f"{endpoint.name}.json": json.dumps(data_schema(spec, endpoint), indent=1) + "\n"
        for endpoint in CATALOGUE
    }


def main(argv: list[str]) -> int:
    """Write the schema files; remove files of streams no longer in the catalogue."""
    path = Path(argv[0]) if argv else spec_path()
    if path is None or not path.exists():
        print(f"spec not found: pass its path or set {SPEC_ENV}", file=sys.stderr)
        return 2
    files = generate(json.loads(path.read_text()))
    for stale in set(p.name for p in SCHEMA_DIR.glob("*.json")) - set(files):
        (SCHEMA_DIR / stale).unlink()
    for name, text in files.items():
        (SCHEMA_DIR / name).write_text(text)
    print(f"wrote {len(files)} schemas to {SCHEMA_DIR} from {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
