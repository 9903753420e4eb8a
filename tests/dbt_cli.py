"""Runs the dbt CLI of this virtualenv on the project, against a test warehouse."""

import os
import subprocess
import sys
from pathlib import Path

from resources.warehouse import dbt_env

PROJECT = Path(__file__).resolve().parents[1] / "dbt_project"


def run_dbt(url: str, target: str | Path, *args: str, check: bool = False) -> subprocess.CompletedProcess:
    """`dbt <args>` with its target and log paths under `target`; with check, a failure fails the test."""
    target = str(target)
    result = subprocess.run(
        [str(Path(sys.executable).with_name("dbt")), *args, "--project-dir", str(PROJECT), "--profiles-dir",
         str(PROJECT), "--target-path", target, "--log-path", target + "/logs"],
        capture_output=True, text=True, env={**os.environ, **dbt_env(url)}, timeout=540,
    )
    assert result.returncode == 0 or not check, result.stdout[-4000:]
    return result
