"""Developer tooling around the Meltano project: embedded PostgreSQL, the demo, e2e helpers.

Not part of the tap: nothing in ``tap_clinical_conductor`` imports from here.
"""

from __future__ import annotations

from pathlib import Path


def project_root() -> Path:
    """The Meltano project directory (the folder that holds ``meltano.yml``)."""
    here = Path(__file__).resolve().parents[1]
    if (here / "meltano.yml").exists():
        return here
    cwd = Path.cwd()
    for folder in (cwd, *cwd.parents):
        if (folder / "meltano.yml").exists():
            return folder
    msg = "meltano.yml not found above cc_dev or the current directory"
    raise FileNotFoundError(msg)
