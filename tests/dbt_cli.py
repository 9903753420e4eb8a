"""Runs dbt on the project against a test warehouse: dbt's own programmatic entry point
(`dbtRunner`, the command line's code) in the test's process, as `dbt <args>` would run.

A `dbt` process spends seconds before its first statement: importing dbt and its adapter, then
parsing the project again whenever its connection or vars differ from the parse in its target
folder. The tests run dbt a hundred times, switching between warehouses and vars (a partition
window, none), so they run it in-process (imported once) and keep dbt's parse per warehouse and
vars for the next run. The platform itself runs the `dbt` command (assets/dbt.py)."""

import atexit
import hashlib
import io
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from resources.warehouse import dbt_env

PROJECT = Path(__file__).resolve().parents[1] / "dbt_project"
PARTIAL_PARSE = "partial_parse.msgpack"
_parsed: Path | None = None


def _parse_cache(url: str, args: tuple[str, ...]) -> Path:
    """Where this process keeps dbt's parse of the project for a warehouse and a set of vars.
    dbt checks the connection, the vars and every file's checksum itself before it reuses a
    parse, so a parse kept here only saves time."""
    global _parsed
    if _parsed is None:
        _parsed = Path(tempfile.mkdtemp(prefix="pa-dbt-parse-"))
        atexit.register(shutil.rmtree, _parsed, ignore_errors=True)
    dbt_vars = next((args[n + 1] for n, arg in enumerate(args[:-1]) if arg == "--vars"), "{}")
    key = hashlib.sha256(repr((sorted(dbt_env(url).items()), dbt_vars.replace(" ", ""))).encode()).hexdigest()[:16]
    return _parsed / f"{key}.msgpack"


def run_dbt(url: str, target: str | Path, *args: str, check: bool = False) -> subprocess.CompletedProcess:
    """`dbt <args>` with its target and log paths under `target`: its exit code (0, 1 when a node
    failed, 2 when dbt itself did) and what it printed; with check, a failure fails the test."""
    from dbt.cli.main import dbtRunner
    from dbt_common.events.functions import capture_stdout_logs, stop_capture_stdout_logs

    target = str(target)
    cached, parsed = _parse_cache(url, args), Path(target) / PARTIAL_PARSE
    if cached.exists():
        parsed.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(cached, parsed)
    command = [*args, "--project-dir", str(PROJECT), "--profiles-dir", str(PROJECT), "--target-path", target,
               "--log-path", target + "/logs"]
    printed, connection = io.StringIO(), dbt_env(url)
    saved = {name: os.environ.get(name) for name in connection}
    os.environ.update(connection)  # the profile reads the connection from the environment
    capture_stdout_logs(printed)
    try:
        outcome = dbtRunner().invoke(command)
    finally:
        stop_capture_stdout_logs()
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
    if parsed.exists():
        shutil.copyfile(parsed, cached)
    code = 0 if outcome.success else 2 if outcome.exception is not None else 1
    result = subprocess.CompletedProcess(["dbt", *command], code, printed.getvalue(), str(outcome.exception or ""))
    assert result.returncode == 0 or not check, result.stdout[-4000:]
    return result
