"""Linters as tests, so CI holds them: ruff over the Python (rules in pyproject.toml)."""

import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO_ROOT


def test_ruff_finds_nothing():
    ruff = Path(sys.executable).with_name("ruff")
    result = subprocess.run([str(ruff), "check", "--no-cache", "."], capture_output=True, text=True, cwd=REPO_ROOT,
                            timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
