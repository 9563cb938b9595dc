"""``make sandbox-start`` / ``make sandbox-stop``: the fake tenant in the background.

``make sandbox`` serves the tenant in the foreground (the terminal is taken until Ctrl-C). This
runs the same ``cc-sandbox serve ...`` detached, its output in ``.sandbox/sandbox.log`` and its
pid in ``.sandbox/sandbox.pid``; ``start`` returns once the tenant listens, ``stop`` ends it.

Command line: ``python -m cc_dev.sandbox_service start -- <cc-sandbox arguments>`` or ``stop``.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from cc_dev import project_root

#: Seconds to wait for the tenant to listen (it generates its data first).
START_TIMEOUT = 120


def _files() -> tuple[Path, Path]:
    folder = project_root() / ".sandbox"
    folder.mkdir(exist_ok=True)
    return folder / "sandbox.pid", folder / "sandbox.log"


def _running_pid() -> int | None:
    pid_file, _ = _files()
    try:
        pid = int(pid_file.read_text())
        os.kill(pid, 0)
    except (OSError, ValueError):
        return None
    return pid


def start(args: list[str]) -> int:
    """Start ``cc-sandbox ARGS`` detached; 0 once it listens (or when it already runs)."""
    pid_file, log_file = _files()
    if pid := _running_pid():
        print(f"the fake tenant already runs (pid {pid}); make sandbox-stop stops it")
        return 0
    exe = Path(sys.executable).parent / "cc-sandbox"
    with log_file.open("w") as log:
        proc = subprocess.Popen(  # noqa: S603 - our own console script
            [str(exe), *args], stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    pid_file.write_text(f"{proc.pid}\n")
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        text = log_file.read_text()
        if "listening on" in text:
            print(f"{text.strip().splitlines()[-1]} (pid {proc.pid}, log {log_file})")
            return 0
        if proc.poll() is not None:
            print(f"cc-sandbox exited ({proc.returncode}):\n{text}", file=sys.stderr)
            pid_file.unlink(missing_ok=True)
            return 1
        time.sleep(0.2)
    proc.terminate()
    pid_file.unlink(missing_ok=True)
    print(f"cc-sandbox did not listen within {START_TIMEOUT} s; see {log_file}", file=sys.stderr)
    return 1


def stop() -> int:
    """Stop the background tenant (SIGTERM, as Ctrl-C would); 0 also when none runs."""
    pid_file, _ = _files()
    pid = _running_pid()
    if pid is None:
        print("the fake tenant is not running")
        pid_file.unlink(missing_ok=True)
        return 0
    os.kill(pid, signal.SIGTERM)
    for _ in range(100):
        try:
            os.kill(pid, 0)
        except OSError:
            break
        time.sleep(0.1)
    pid_file.unlink(missing_ok=True)
    print(f"stopped the fake tenant (pid {pid})")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Command line: start -- ARGS, or stop."""
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["start"]:
        rest = argv[1:]
        return start(rest[1:] if rest[:1] == ["--"] else rest)
    if argv == ["stop"]:
        return stop()
    usage = "usage: python -m cc_dev.sandbox_service start -- <cc-sandbox args> | stop"
    print(usage, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
