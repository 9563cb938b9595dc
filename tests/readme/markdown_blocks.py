"""The fenced code blocks of a Markdown file, and which of them the README test runs.

The convention (README.md, and every README addition, follows it):

* a block whose info string is ``bash``, ``sh``, ``shell`` or ``console`` is executed, in file
  order, in one shell session (variables and ``export`` carry over, as in one terminal);
* such a block preceded by the line ``<!-- readme-test: syntax-only -->`` (the last non-blank
  line before the fence) cannot run offline (a real tenant, a server that runs until stopped):
  it is only checked with ``bash -n``;
* in a ``console`` block, lines starting with ``$ `` are the commands (the other lines are their
  output); without any ``$ `` line the whole block is commands;
* blocks of other languages (yaml, json, sql, text, none) are not run.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

SHELL_LANGUAGES = frozenset({"bash", "sh", "shell", "console"})
SYNTAX_ONLY_MARKER = "<!-- readme-test: syntax-only -->"
_FENCE = re.compile(r"^(?P<indent> *)(?P<fence>`{3,}|~{3,})\s*(?P<info>[^`]*)$")


@dataclass(frozen=True)
class Block:
    """One fenced code block."""

    language: str
    text: str
    line: int  # 1-based line of the opening fence
    syntax_only: bool

    @property
    def is_shell(self) -> bool:
        return self.language in SHELL_LANGUAGES

    @property
    def runs(self) -> bool:
        """Executed by the README test (a shell block not marked syntax-only)."""
        return self.is_shell and not self.syntax_only

    def script(self) -> str:
        """The shell commands of the block (``console``: the ``$ `` lines and continuations)."""
        if self.language != "console" or not re.search(r"(?m)^\$ ", self.text):
            return self.text
        commands, continued = [], False
        for line in self.text.splitlines():
            if line.startswith("$ ") or continued:
                commands.append(line[2:] if line.startswith("$ ") and not continued else line)
                continued = line.endswith("\\")
        return "\n".join(commands) + "\n"


def blocks(markdown: str) -> list[Block]:
    """Every fenced block of ``markdown``, in order. An unclosed fence is an error."""
    lines = markdown.splitlines()
    found: list[Block] = []
    i = 0
    while i < len(lines):
        m = _FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        indent, fence = len(m["indent"]), m["fence"]
        language = (m["info"].split() or [""])[0].lower()
        previous = next((x.strip() for x in reversed(lines[:i]) if x.strip()), "")
        body: list[str] = []
        j = i + 1
        while j < len(lines) and not re.fullmatch(
            rf" *{re.escape(fence[0])}{{{len(fence)},}}\s*", lines[j]
        ):
            line = lines[j]
            body.append(line[min(indent, len(line) - len(line.lstrip(" "))) :])
            j += 1
        if j == len(lines):
            msg = f"unclosed code fence at line {i + 1}"
            raise ValueError(msg)
        text = "\n".join(body) + "\n"
        found.append(Block(language, text, i + 1, previous == SYNTAX_ONLY_MARKER))
        i = j + 1
    return found


def readme_blocks(path: Path) -> list[Block]:
    """The blocks of a Markdown file."""
    return blocks(path.read_text(encoding="utf-8"))
