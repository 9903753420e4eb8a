"""Runs the dbt CLI of this virtualenv on the project, against a test warehouse."""

import atexit
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from resources.warehouse import dbt_env

PROJECT = Path(__file__).resolve().parents[1] / "dbt_project"
PARTIAL_PARSE = "partial_parse.msgpack"
_parsed: Path | None = None


def _parse_cache(url: str, args: tuple[str, ...]) -> Path:
    """Where this process keeps dbt's partial-parse state for a warehouse and a set of vars.

    dbt parses the whole project again (seconds) when its connection or its vars differ from the
    last parse in the target folder; the tests switch between vars (a window, none) and between
    warehouses, each test in its own target folder. dbt checks the connection, the vars and every
    file's checksum itself before it reuses a parse, so this only saves the time."""
    global _parsed
    if _parsed is None:
        _parsed = Path(tempfile.mkdtemp(prefix="pa-dbt-parse-"))
        atexit.register(shutil.rmtree, _parsed, ignore_errors=True)
    dbt_vars = next((args[n + 1] for n, arg in enumerate(args[:-1]) if arg == "--vars"), "{}")
    key = hashlib.sha256(repr((sorted(dbt_env(url).items()), dbt_vars.replace(" ", ""))).encode()).hexdigest()[:16]
    return _parsed / f"{key}.msgpack"


def run_dbt(url: str, target: str | Path, *args: str, check: bool = False) -> subprocess.CompletedProcess:
    """`dbt <args>` with its target and log paths under `target`; with check, a failure fails the test."""
    target = str(target)
    cached, parsed = _parse_cache(url, args), Path(target) / PARTIAL_PARSE
    if cached.exists():
        parsed.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(cached, parsed)
    result = subprocess.run(
        [str(Path(sys.executable).with_name("dbt")), *args, "--project-dir", str(PROJECT), "--profiles-dir",
         str(PROJECT), "--target-path", target, "--log-path", target + "/logs"],
        capture_output=True, text=True, env={**os.environ, **dbt_env(url)}, timeout=540,
    )
    if parsed.exists():
        shutil.copyfile(parsed, cached)
    assert result.returncode == 0 or not check, result.stdout[-4000:]
    return result
