"""The prod environment's dbt connects with the loader's variables (TARGET_POSTGRES_HOST, _PORT,
_USER, _PASSWORD, _DATABASE): ``meltano --environment=prod invoke dbt-postgres:debug`` against the
session's PostgreSQL, given only those. The dev environment's dbt is run by tests/readme (the
README's "By hand" recipe, nothing exported)."""

from __future__ import annotations

import os
import subprocess

from cc_dev.meltano_runner import bin_dir

LOADER_VARIABLE = {
    "DBT_POSTGRES_HOST": "TARGET_POSTGRES_HOST",
    "DBT_POSTGRES_PORT": "TARGET_POSTGRES_PORT",
    "DBT_POSTGRES_USER": "TARGET_POSTGRES_USER",
    "DBT_POSTGRES_PASSWORD": "TARGET_POSTGRES_PASSWORD",
    "DBT_POSTGRES_DBNAME": "TARGET_POSTGRES_DATABASE",
}


def dbt_debug_in_prod(project_root, loader_env: dict[str, str]) -> subprocess.CompletedProcess:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("TAP_CLINICAL_CONDUCTOR_", "TARGET_POSTGRES_", "DBT_", "CC_"))
    }
    env.update(
        loader_env,
        PATH=f"{bin_dir()}{os.pathsep}{env.get('PATH', '')}",
        MELTANO_ENVIRONMENT="prod",
        MELTANO_CLI_DISABLE_VERSION_CHECK="true",
    )
    return subprocess.run(
        [str(bin_dir() / "meltano"), "invoke", "dbt-postgres:debug"],
        cwd=project_root,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_prod_dbt_connects_with_the_loaders_variables(project_root, warehouse_server, tmp_path):
    loader_env = {LOADER_VARIABLE[k]: v for k, v in warehouse_server.dbt_env().items()}
    loader_env["DBT_LOG_PATH"] = str(tmp_path)
    ok = dbt_debug_in_prod(project_root, loader_env)
    assert ok.returncode == 0, ok.stdout[-3000:] + ok.stderr[-3000:]
    assert "All checks passed" in ok.stdout + ok.stderr
    # The same with the loader's database misnamed: dbt follows the variable, and fails.
    wrong = dbt_debug_in_prod(project_root, {**loader_env, "TARGET_POSTGRES_DATABASE": "nope"})
    assert wrong.returncode != 0
    assert 'database "nope" does not exist' in wrong.stdout + wrong.stderr
