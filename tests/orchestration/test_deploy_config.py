"""The deployment configuration in the README: the code location validates as the Docker and
Kubernetes images run it, and every instance file matches Dagster's instance schema."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "orchestration" / "deploy"


@pytest.mark.parametrize(
    "path",
    [
        ROOT / "orchestration" / "dagster.yaml",
        DEPLOY / "dagster.docker.yaml",
        DEPLOY / "dagster.k8s.yaml",
    ],
    ids=lambda p: p.name,
)
def test_instance_files_match_dagsters_schema(path):
    from dagster._core.instance.config import dagster_instance_config

    config, _ = dagster_instance_config(str(path.parent), config_filename=path.name)
    limits = config["concurrency"]["runs"]["tag_concurrency_limits"]
    assert limits == [
        {"key": "dagster/partition", "value": {"applyLimitPerUniqueValue": True}, "limit": 1}
    ]
    assert config["concurrency"]["pools"]["default_limit"] == 1


def test_broken_instance_file_is_rejected(tmp_path):
    from dagster._core.errors import DagsterInvalidConfigError
    from dagster._core.instance.config import dagster_instance_config

    text = (DEPLOY / "dagster.k8s.yaml").read_text().replace("applyLimitPerUniqueValue", "perValue")
    (tmp_path / "dagster.yaml").write_text(text)
    with pytest.raises(DagsterInvalidConfigError):
        dagster_instance_config(str(tmp_path))


def test_definitions_validate_with_the_example_tenants(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "CC_TENANTS_FILE"}
    env["DAGSTER_HOME"] = str(tmp_path)
    dagster = Path(sys.executable).with_name("dagster")
    proc = subprocess.run(
        [str(dagster), "definitions", "validate", "-m", "orchestration.definitions"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Validation successful" in proc.stdout + proc.stderr
