"""Every shell block of README.md runs, in order, as a user would run it (markdown_blocks.py has
the convention: which blocks run, which are only syntax-checked).

The blocks run in one bash session (``set -e``) in a copy of the project (tracked and new files of
the working tree, so an edited README runs as edited) that reuses the installed ``.venv`` and the
plugins in ``.meltano``, with its own Meltano system database, its own embedded PostgreSQL in the
copy's ``.pgdata`` and the fake tenant on a free port: the developer's warehouse, state and demo
are never touched. Before the first block the session is what the README's "By hand" recipe makes
it: ``.venv/bin`` on PATH, ``make sandbox-start`` and ``make pg-start`` done,
``TAP_CLINICAL_CONDUCTOR_API_KEY=dev-key``; afterwards ``make sandbox-stop`` and ``make pg-stop``.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
from markdown_blocks import Block, blocks, readme_blocks

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
#: The whole README session; it runs three pipelines of the small fake tenant (about 2 minutes).
TIMEOUT_SECONDS = 900
#: The caller's own settings would send the blocks elsewhere (as in cc_dev/meltano_runner.py).
#: So are make's own variables when the suite runs under `make test` (a terminal has none).
FOREIGN_ENV = (
    "TAP_CLINICAL_CONDUCTOR_",
    "TARGET_POSTGRES_",
    "DBT_",
    "CC_",
    "MELTANO_",
    "MAKE",
    "MFLAGS",
)
BLOCK_MARK = "README-TEST block "
#: Per-checkout state the copy must not share (it gets its own, or links to the installed one).
LOCAL_STATE = (".git", ".venv", ".meltano", ".pgdata", ".sandbox", ".pytest_cache", ".ruff_cache")


# --- the convention (pure logic) ------------------------------------------------------------
def test_convention_selects_blocks_and_markers():
    md = "\n".join(
        [
            "```sh",
            "echo run",
            "```",
            "<!-- readme-test: syntax-only -->",
            "",
            "```bash",
            "meltano --environment=prod run daily",
            "```",
            "```yaml",
            "a: 1",
            "```",
            "- item",
            "  ```console",
            "  $ echo one \\",
            "    two",
            "  output line",
            "  $ echo three",
            "  ```",
            "```",
            "plain",
            "```",
        ]
    )
    found = blocks(md)
    assert [(b.language, b.line, b.runs, b.syntax_only) for b in found] == [
        ("sh", 1, True, False),
        ("bash", 6, False, True),
        ("yaml", 9, False, False),
        ("console", 13, True, False),
        ("", 19, False, False),
    ]
    assert found[3].script() == "echo one \\\n  two\necho three\n"
    assert Block("shell", "make x\n", 1, False).runs


def test_convention_refuses_an_unclosed_fence():
    with pytest.raises(ValueError, match="unclosed code fence at line 2"):
        blocks("text\n```sh\necho\n")


def test_readme_has_blocks_to_run_and_they_parse():
    found = readme_blocks(README)
    assert any(b.runs for b in found), "README.md has no shell block to run"
    for block in (b for b in found if b.is_shell):
        proc = subprocess.run(
            ["bash", "-n"], input=block.script(), capture_output=True, text=True, check=False
        )
        assert proc.returncode == 0, f"README.md line {block.line}: {proc.stderr}\n{block.text}"


def test_dev_api_url_is_where_make_sandbox_serves():
    makefile = (ROOT / "Makefile").read_text()
    port = next(
        line.split("?=")[1].strip()
        for line in makefile.splitlines()
        if line.startswith("SANDBOX_PORT ?=")
    )
    assert f"api_url: http://127.0.0.1:{port}/CCSWeb" in (ROOT / "meltano.yml").read_text()


# --- the README, run ----------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def project_copy(dest: Path) -> None:
    """The working tree's tracked and new (not ignored) files; the installed .venv and plugins."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        check=False,
    )
    if listed.returncode == 0:
        for rel in filter(None, listed.stdout.decode().split("\0")):
            if (ROOT / rel).is_file():
                (dest / rel).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(ROOT / rel, dest / rel)
    else:  # not a git checkout
        skip = shutil.ignore_patterns(*LOCAL_STATE, "__pycache__", "target", "logs")
        shutil.copytree(ROOT, dest, ignore=skip, symlinks=True, dirs_exist_ok=True)
    (dest / ".venv").symlink_to(ROOT / ".venv")
    (dest / ".meltano").mkdir()
    for kind in ("extractors", "loaders", "utilities"):
        (dest / ".meltano" / kind).symlink_to(ROOT / ".meltano" / kind)
    # make's install targets are up to date: a reinstall from the copy would point the shared
    # .venv's editable install at this temporary directory.
    (dest / ".meltano" / ".installed").touch()
    installed = (ROOT / ".venv" / ".installed").stat().st_mtime
    for name in ("pyproject.toml", "meltano.yml", "transform.meltano.yml"):
        if (dest / name).exists() and (dest / name).stat().st_mtime >= installed:
            os.utime(dest / name, (installed - 1, installed - 1))


def session_script(run: list[Block], folder: Path) -> str:
    """One bash session: the prologue, then each block sourced from its own file (so a failure
    names the block and the line in it), in README order."""
    parts = [
        "set -eE -o pipefail",
        "trap 'echo \"README-TEST failed: $__block, line $LINENO\" >&2' ERR",
        "__block=prologue",
        "make sandbox-start",
        "make pg-start",
        "export TAP_CLINICAL_CONDUCTOR_API_KEY=dev-key",
    ]
    for n, block in enumerate(run, 1):
        path = folder / f"block-{n:02d}-line-{block.line}.sh"
        path.write_text(block.script())
        parts += [
            f"__block='README.md block at line {block.line}'",
            f'echo "{BLOCK_MARK}at README.md line {block.line} t=$(date +%s)" >&2',
            f"source '{path}'",
        ]
    parts.append('echo "README-TEST done t=$(date +%s)" >&2')
    return "\n".join(parts) + "\n"


@pytest.mark.e2e
def test_readme_shell_blocks_run_in_order(tmp_path):
    if (
        not (ROOT / ".meltano" / "utilities").exists()
        or not (ROOT / ".venv" / ".installed").exists()
    ):
        pytest.fail("plugins are not installed: run `make install` (make test does)")
    run = [b for b in readme_blocks(README) if b.runs]
    # The embedded server runs as an unprivileged user when we are root: a short, open directory.
    base = Path(tempfile.mkdtemp(prefix="cc-readme-", dir="/tmp"))
    os.chmod(base, 0o755)
    project = base / "p"
    project.mkdir()
    project_copy(project)
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(FOREIGN_ENV)}
    env.update(
        PATH=f"{project / '.venv' / 'bin'}{os.pathsep}{env.get('PATH', '')}",
        MELTANO_CLI_DISABLE_VERSION_CHECK="true",
        SANDBOX_PORT=str(port),
        TAP_CLINICAL_CONDUCTOR_API_URL=f"http://127.0.0.1:{port}/CCSWeb",
    )
    log = tmp_path / "readme-session.log"
    (tmp_path / "readme-session.sh").write_text(script := session_script(run, tmp_path))
    started = time.monotonic()
    try:
        with log.open("w") as out:
            proc = subprocess.Popen(
                ["bash", "-c", script],
                cwd=project,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            try:
                rc = proc.wait(timeout=TIMEOUT_SECONDS)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
                rc = None
    finally:
        for stop in ("sandbox-stop", "pg-stop"):
            subprocess.run(["make", stop], cwd=project, env=env, capture_output=True, check=False)
        shutil.rmtree(base, ignore_errors=True)
    output = log.read_text()
    marks = [x for x in output.splitlines() if x.startswith((BLOCK_MARK, "README-TEST done"))]
    current = [x for x in marks if x.startswith(BLOCK_MARK)]
    where = current[-1].removeprefix(BLOCK_MARK).split(" t=")[0] if current else "the prologue"
    tail = "\n".join(output.splitlines()[-60:])
    if rc is None:
        pytest.fail(f"README session timed out after {TIMEOUT_SECONDS} s in {where}:\n{tail}")
    assert rc == 0, f"README.md: a command failed in {where} (exit {rc}); log {log}:\n{tail}"
    assert "README-TEST done" in output
    times = [int(x.rsplit("t=", 1)[1]) for x in marks]
    per_block = ", ".join(
        f"line {b.line}: {t1 - t0} s" for b, t0, t1 in zip(run, times, times[1:], strict=True)
    )
    print(f"README session: {len(run)} blocks in {time.monotonic() - started:.0f} s ({per_block})")
