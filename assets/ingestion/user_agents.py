"""User-agent patterns (OPAWG user-agents-v2 format) into `raw.user_agent_patterns`.

The platform ships its own small default set; `PODCAST_USER_AGENT_PATTERNS_DIR` points at a
directory of full OPAWG files instead (`bots.json`, `apps.json`, `libraries.json`,
`browsers.json`, `devices.json`, any prefix allowed). Each pattern is tried by PostgreSQL,
which applies them in dbt; one it cannot compile is quarantined with the error.
"""

import json
import re
from pathlib import Path

import dagster as dg
import psycopg

from pipelines.settings import get_settings
from resources.warehouse import WarehouseResource

PATTERN_SETS = ("bots", "apps", "libraries", "browsers", "devices")


def find_pattern_files(folder: Path) -> dict[str, Path]:
    files: dict[str, Path] = {}
    for name in PATTERN_SETS:
        matches = sorted(p for p in folder.glob(f"*{name}.json") if p.name == f"{name}.json" or p.name.endswith(f"__{name}.json") or p.name.endswith(f"-{name}.json"))
        if matches:
            files[name] = matches[0]
    missing = [n for n in PATTERN_SETS[:4] if n not in files]
    if missing:
        raise FileNotFoundError(f"{folder} lacks pattern files for: {', '.join(missing)}")
    return files


def read_patterns(folder: Path) -> list[tuple]:
    rows = []
    for name, path in find_pattern_files(folder).items():
        document = json.loads(path.read_text())
        entries = document["entries"] if isinstance(document, dict) else document
        for ordinal, entry in enumerate(entries):
            pattern = to_postgres_regex(entry.get("pattern") or "")
            rows.append((name, ordinal, entry.get("name") or "", pattern, entry.get("category"), path.name))
    return rows


_JS_BOUNDARY = re.compile(r"(?<!\\)((?:\\\\)*)\\([bB])")


def to_postgres_regex(pattern: str) -> str:
    """JavaScript-flavoured pattern to PostgreSQL's ARE: `\\b`/`\\B` are word boundaries in
    JavaScript but a backspace / an error in PostgreSQL, whose boundaries are `\\y`/`\\Y`."""
    return _JS_BOUNDARY.sub(lambda m: m.group(1) + ("\\y" if m.group(2) == "b" else "\\Y"), pattern)


def store_patterns(conn: psycopg.Connection, rows: list[tuple], batch_id: str) -> dict[str, int]:
    """Replace the pattern set (reference data: the newest files win), quarantining patterns
    PostgreSQL cannot compile."""
    kept, bad = [], []
    for row in rows:
        try:
            with conn.transaction():
                conn.execute("select '' ~ %s", (row[3],))
            if not row[3]:
                raise psycopg.errors.InvalidRegularExpression("empty pattern")
            kept.append(row)
        except psycopg.errors.InvalidRegularExpression as exc:
            bad.append((row[0], row[1], row[2], row[3], "invalid_regex", str(exc).strip()[:500]))
    with conn.transaction():
        conn.execute("delete from raw.user_agent_patterns")
        conn.execute("delete from quarantine.user_agent_patterns")
        with conn.cursor() as cur:
            with cur.copy("copy raw.user_agent_patterns (pattern_set, ordinal, name, pattern, category, source_file, _batch_id) from stdin") as copy:
                for row in kept:
                    copy.write_row((*row, batch_id))
            cur.executemany(
                "insert into quarantine.user_agent_patterns (pattern_set, ordinal, name, pattern, reason_code, detail) "
                "values (%s, %s, %s, %s, %s, %s)", bad)
    counts = {name: sum(1 for r in kept if r[0] == name) for name in PATTERN_SETS}
    counts["quarantined"] = len(bad)
    return counts


@dg.asset(
    key=["raw", "user_agent_patterns"], group_name="raw", kinds={"python", "postgres"},
    description="User-agent patterns (bots, apps, libraries, browsers, devices) used by IAB counting.",
)
def user_agent_patterns(context: dg.AssetExecutionContext, warehouse: WarehouseResource) -> dg.MaterializeResult:
    folder = get_settings().user_agent_patterns_dir
    rows = read_patterns(folder)
    warehouse.bootstrap()
    with warehouse.connect(autocommit=True) as conn:
        counts = store_patterns(conn, rows, context.run_id)
    return dg.MaterializeResult(metadata={
        "dagster/row_count": sum(v for k, v in counts.items() if k != "quarantined"),
        "source_dir": str(folder), **{f"patterns_{k}": v for k, v in counts.items()},
    })
