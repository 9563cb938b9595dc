"""The package's shape: imports run one way, each module says what it owns, and private
singer-sdk internals are touched in one guarded module only."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import tap_clinical_conductor

PACKAGE = Path(tap_clinical_conductor.__file__).parent
#: singer-sdk internals with no public hook; only `sdk_private.py` may name them.
PRIVATE_SDK = re.compile(
    r"\b(_sync_records|_write_record_message|_increment_stream_state|_stream_version"
    r"|_write_activate_version_message|is_flushed)\b"
)


def modules() -> dict[str, ast.Module]:
    return {p.stem: ast.parse(p.read_text()) for p in sorted(PACKAGE.glob("*.py"))}


def imports(tree: ast.Module) -> set[str]:
    """Sibling modules imported anywhere in ``tree`` (``TYPE_CHECKING`` blocks included)."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            if node.module == "tap_clinical_conductor":
                found.update(alias.name for alias in node.names)
            elif node.module.startswith("tap_clinical_conductor."):
                found.add(node.module.split(".")[1])
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("tap_clinical_conductor."):
                    found.add(alias.name.split(".")[1])
    return found


def test_imports_have_no_cycle():
    graph = {name: imports(tree) for name, tree in modules().items()}
    order: list[str] = []
    visiting: list[str] = []

    def visit(name: str) -> None:
        if name in order:
            return
        assert name not in visiting, f"import cycle: {' -> '.join([*visiting, name])}"
        visiting.append(name)
        for dependency in sorted(graph.get(name, ())):
            visit(dependency)
        visiting.pop()
        order.append(name)

    for name in graph:
        visit(name)
    # The settings and discovery sit on top: only the command lines import the tap.
    assert {name for name, deps in graph.items() if "tap" in deps} == {"__main__", "plan"}


def test_every_module_opens_with_what_it_owns():
    for name, tree in modules().items():
        doc = ast.get_docstring(tree)
        assert doc and len(doc) > 20, name


def test_private_sdk_internals_are_named_in_one_module():
    offenders = {
        p.name
        for p in PACKAGE.glob("*.py")
        if p.name != "sdk_private.py" and PRIVATE_SDK.search(p.read_text())
    }
    assert not offenders
