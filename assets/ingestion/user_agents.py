"""User-agent patterns (OPAWG user-agents-v2 format) into `raw.user_agent_patterns`.

Where the patterns come from, first found wins:
1. `PODCAST_USER_AGENT_PATTERNS_DIR`: a directory of OPAWG files (`bots.json`, `apps.json`,
   `libraries.json`, `browsers.json`, `devices.json`, any prefix allowed);
2. the copy `podcast-analytics user-agents update` downloaded from opawg/user-agents-v2,
   validated and stored with its version under the data dir (`<data dir>/user_agents/current`);
3. the platform's small built-in list (`resources/user_agents/`): it classifies the simulator's
   agents but counts most real bots as listeners, so a WARN check on the asset (and a line in
   `podcast-analytics status`) says it is in use.

Each pattern is tried by PostgreSQL, which applies them in dbt; one it cannot compile is
quarantined with the error.
"""

import hashlib
import json
import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import dagster as dg
import psycopg

from resources.settings import REPO_ROOT, Settings, get_settings
from resources.warehouse import WarehouseResource

PATTERN_SETS = ("bots", "apps", "libraries", "browsers", "devices")
# The columns of the raw table this asset writes, declared here once: the COPY of the patterns,
# the quality suite (pipelines/checks/quality.py) and the dbt source read them, and
# tests/test_raw_columns.py holds the warehouse's table and dbt's source to them.
RAW_COLUMNS = {
    "user_agent_patterns": ("pattern_set", "ordinal", "name", "pattern", "category", "source_file", "_ingested_at",
                            "_batch_id"),
}
# A stored pattern row (`read_patterns`) plus the batch; the load time is the warehouse's default.
PATTERN_COLUMNS = tuple(c for c in RAW_COLUMNS["user_agent_patterns"] if c != "_ingested_at")
BUILT_IN_DIR = REPO_ROOT / "resources" / "user_agents"

# The upstream project and the files `user-agents update` takes from it (its README's layout:
# the pattern files under src/, their JSON schema under schemas/).
OPAWG_REPOSITORY = "opawg/user-agents-v2"
OPAWG_URL = f"https://raw.githubusercontent.com/{OPAWG_REPOSITORY}/master"
OPAWG_FILES = {**{name: f"src/{name}.json" for name in (*PATTERN_SETS, "referrers")},
               "schema": "schemas/patterns.schema.json"}
MAX_FILE_BYTES = 8 * 1024 * 1024  # the largest OPAWG file (apps) is ~160 kB
SOURCE_CHECK = "opawg_patterns_in_use"


def named_json(folders, stem: str) -> list[Path]:
    """The files of `folders` named `<stem>.json`, or with any prefix ending in `__` or `-`
    (`opawg__user-agents-v2__bots.json`), sorted."""
    return sorted(p for where in folders if where.is_dir() for p in where.glob(f"*{stem}.json")
                  if p.name == f"{stem}.json" or p.name.endswith((f"__{stem}.json", f"-{stem}.json")))


def find_pattern_files(folder: Path) -> dict[str, Path]:
    files: dict[str, Path] = {}
    for name in PATTERN_SETS:
        matches = named_json([folder], name)
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
            with cur.copy(f"copy raw.user_agent_patterns ({', '.join(PATTERN_COLUMNS)}) from stdin") as copy:
                for row in kept:
                    copy.write_row((*row, batch_id))
            cur.executemany(
                "insert into quarantine.user_agent_patterns (pattern_set, ordinal, name, pattern, reason_code, detail) "
                "values (%s, %s, %s, %s, %s, %s)", bad)
    counts = {name: sum(1 for r in kept if r[0] == name) for name in PATTERN_SETS}
    counts["quarantined"] = len(bad)
    return counts


# --- where the patterns come from ---------------------------------------------------------------

@dataclass(frozen=True)
class PatternSource:
    """The folder the asset loads and why: `configured` (PODCAST_USER_AGENT_PATTERNS_DIR),
    `stored` (the copy `user-agents update` keeps, with its version) or `built-in`."""

    folder: Path
    origin: str
    version: dict | None = None

    @property
    def built_in(self) -> bool:
        return self.origin == "built-in"

    def describe(self) -> str:
        if self.origin == "stored":
            version = self.version or {}
            label = f"commit {version['commit'][:12]}" if version.get("commit") else f"version {version.get('id')}"
            when = version.get("date") or version.get("fetched_at")
            return f"OPAWG user-agents-v2 {label} ({when}) from {version.get('source')}, stored in {self.folder}"
        if self.origin == "configured":
            return f"the pattern files in {self.folder} (PODCAST_USER_AGENT_PATTERNS_DIR)"
        return (f"the built-in list ({self.folder}): most real bots count as listeners and most apps are "
                f"misnamed; run `podcast-analytics user-agents update` to use OPAWG's patterns")


def pattern_source(settings: Settings | None = None) -> PatternSource:
    """The configured folder, else the stored OPAWG copy, else the built-in list."""
    settings = settings or get_settings()
    if settings.user_agent_patterns_dir is not None:
        folder = settings.user_agent_patterns_dir
        same = folder.exists() and folder.resolve() == BUILT_IN_DIR.resolve()
        return PatternSource(folder, "built-in" if same else "configured")
    store = settings.resolved_user_agent_store_dir()
    version = stored_version(store)
    if version is not None:
        return PatternSource((store / "current").resolve(), "stored", version)
    return PatternSource(BUILT_IN_DIR, "built-in")


def stored_version(store_dir: Path) -> dict | None:
    """The manifest of the stored copy (`<store>/current/VERSION.json`), or None when there is none."""
    try:
        return json.loads((store_dir / "current" / "VERSION.json").read_text())
    except (OSError, ValueError):
        return None


# --- `podcast-analytics user-agents update` ---------------------------------------------------------

class PatternUpdateError(Exception):
    """An update refused: the message is one line naming the file and the problem."""


# What the loader needs of every pattern file, whatever the upstream schema says (it does not
# require `entries`, so `{}` would pass it): at least one entry, each with a name and a pattern.
PATTERN_FILE_SHAPE = {
    "type": "object",
    "required": ["entries"],
    "properties": {"entries": {"type": "array", "minItems": 1, "items": {
        "type": "object", "required": ["name", "pattern"],
        "properties": {"name": {"type": "string", "minLength": 1}, "pattern": {"type": "string", "minLength": 1}},
    }}},
}


def update_patterns(source: str | None, store_dir: Path, policy=None) -> tuple[dict, bool]:
    """Take the OPAWG files from `source` (an http(s) base URL laid out as the upstream repository,
    or a directory; default: upstream), validate every one and store them as a new version.
    Returns the manifest and whether the stored copy changed. Nothing is written unless every
    file is valid, so a refused update keeps the previous copy."""
    source = source or OPAWG_URL
    if re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*://", source):
        files, commit, date = download_opawg(source, policy)
    else:
        folder = Path(source).expanduser()
        if not folder.is_dir():
            raise PatternUpdateError(f"{source} is neither an http(s) URL nor a directory")
        files, commit, date = read_opawg_dir(folder), None, None
    counts = validate_opawg(files)
    return store_opawg(files, store_dir, source, commit, date, counts)


def download_opawg(base: str, policy=None) -> tuple[dict[str, bytes], str | None, str | None]:
    """GET every file of `OPAWG_FILES` under `base` with the project's safe client (timeouts,
    retries, a size cap). For the upstream default the current commit is looked up first and
    the files are taken at that commit, so the version stored is the version downloaded."""
    from resources.http import Fetcher, FetchPolicy

    # The operator names the source (a mirror on the LAN is fine): private hosts are allowed.
    policy = policy or FetchPolicy(timeout_seconds=30.0, max_bytes=MAX_FILE_BYTES, allow_private_hosts=True)
    base = base.rstrip("/")
    commit = date = None
    files: dict[str, bytes] = {}
    with Fetcher(policy) as fetcher:
        if base == OPAWG_URL:
            commit, date = _upstream_commit(fetcher)
            if commit:
                base = f"https://raw.githubusercontent.com/{OPAWG_REPOSITORY}/{commit}"
        for name, path in OPAWG_FILES.items():
            result = fetcher.fetch(f"{base}/{path}")
            if not result.ok or result.status_code != 200:
                raise PatternUpdateError(f"{base}/{path}: {result.error_code or result.status_code}: "
                                         f"{result.error or 'no body'}")
            files[name] = result.body
            if name == "bots" and date is None:
                date = result.last_modified
    return files, commit, date


def _upstream_commit(fetcher) -> tuple[str | None, str | None]:
    """The newest commit of the upstream repository and its date (GitHub's API), or (None, None)
    when it cannot be had (rate limit, no network to api.github.com): the files still are."""
    result = fetcher.fetch(f"https://api.github.com/repos/{OPAWG_REPOSITORY}/commits/master")
    try:
        document = json.loads(result.body or b"")
        sha = document["sha"]
        return (sha if re.fullmatch(r"[0-9a-f]{40}", sha) else None), document["commit"]["committer"]["date"]
    except (ValueError, KeyError, TypeError):
        return None, None


def read_opawg_dir(folder: Path) -> dict[str, bytes]:
    """The OPAWG files of a directory: a clone of the repository (`src/`, `schemas/`) or a flat
    folder (`bots.json` or any `<prefix>__bots.json`). The pattern sets are required; referrers
    and the schema are taken when present."""
    base = folder / "src" if (folder / "src").is_dir() else folder
    files: dict[str, bytes] = {}
    wanted = {name: name for name in (*PATTERN_SETS, "referrers")} | {"schema": "patterns.schema"}
    for key, stem in wanted.items():
        candidates = named_json({base, folder, folder / "schemas"}, stem)
        if not candidates:
            continue
        if candidates[0].stat().st_size > MAX_FILE_BYTES:
            raise PatternUpdateError(f"{candidates[0]}: larger than {MAX_FILE_BYTES} bytes")
        files[key] = candidates[0].read_bytes()
    missing = [name for name in PATTERN_SETS if name not in files]
    if missing:
        raise PatternUpdateError(f"{folder} has no {', '.join(f'{n}.json' for n in missing)}")
    return files


def _file_name(key: str) -> str:
    return "patterns.schema.json" if key == "schema" else f"{key}.json"


def validate_opawg(files: dict[str, bytes]) -> dict[str, int]:
    """Every pattern file against OPAWG's JSON schema (when the source has it) and the shape the
    loader needs. Returns the entries per file; raises `PatternUpdateError` on the first problem."""
    from jsonschema import Draft7Validator
    from jsonschema.exceptions import SchemaError, best_match

    documents = {}
    for key, body in files.items():
        try:
            documents[key] = json.loads(body)
        except (UnicodeDecodeError, ValueError) as exc:
            raise PatternUpdateError(f"{_file_name(key)}: not JSON ({' '.join(str(exc).split())[:160]})") from None
    validators = [Draft7Validator(PATTERN_FILE_SHAPE)]
    schema = documents.pop("schema", None)
    if schema is not None:
        try:
            Draft7Validator.check_schema(schema)
        except SchemaError as exc:
            raise PatternUpdateError(f"patterns.schema.json: not a JSON schema ({exc.message[:160]})") from None
        validators.insert(0, Draft7Validator(schema))
    counts = {}
    for key, document in documents.items():
        for validator in validators:
            error = best_match(validator.iter_errors(document))
            if error is not None:
                where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error.absolute_path).lstrip(".")
                raise PatternUpdateError(f"{_file_name(key)}: {where or 'document'}: {error.message[:200]}")
        counts[key] = len(document["entries"])
    return counts


def store_opawg(files: dict[str, bytes], store_dir: Path, source: str, commit: str | None, date: str | None,
                counts: dict[str, int]) -> tuple[dict, bool]:
    """Write the files as `<store>/versions/<id>/` (the id is a digest of their contents) and point
    `<store>/current` at it with an atomic symlink swap; the previous version is kept beside it.
    The same files again change nothing (not even the manifest)."""
    digests = {_file_name(k): hashlib.sha256(body).hexdigest() for k, body in sorted(files.items())}
    version_id = hashlib.sha256("".join(f"{n} {d}\n" for n, d in sorted(digests.items())).encode()).hexdigest()[:16]
    previous = stored_version(store_dir)
    if previous is not None and previous.get("id") == version_id:
        return previous, False
    versions = store_dir / "versions"
    versions.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".incoming-", dir=versions))
    try:
        for key, body in files.items():
            (staging / _file_name(key)).write_bytes(body)
        manifest = {
            "id": version_id, "repository": OPAWG_REPOSITORY, "source": source, "commit": commit, "date": date,
            "fetched_at": datetime.now(timezone.utc).replace(microsecond=0).isoformat(),
            "files": {_file_name(key): {"sha256": digests[_file_name(key)], "bytes": len(body),
                                        "entries": counts.get(key)} for key, body in files.items()},
        }
        (staging / "VERSION.json").write_text(json.dumps(manifest, indent=1) + "\n")
        target = versions / version_id
        if target.exists():
            shutil.rmtree(target)
        os.rename(staging, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    link = store_dir / ".current.new"
    link.unlink(missing_ok=True)
    os.symlink(Path("versions") / version_id, link)
    os.replace(link, store_dir / "current")
    keep = {version_id, (previous or {}).get("id")}
    for old in versions.iterdir():
        if old.name not in keep and not old.name.startswith(".incoming-"):
            shutil.rmtree(old, ignore_errors=True)
    return manifest, True


# --- the asset --------------------------------------------------------------------------------------

PATTERNS_KEY = dg.AssetKey(["raw", "user_agent_patterns"])


@dg.multi_asset(
    name="raw__user_agent_patterns",  # the op name @asset gave it
    specs=[dg.AssetSpec(
        PATTERNS_KEY, group_name="raw", kinds={"python", "postgres"},
        description="User-agent patterns (bots, apps, libraries, browsers, devices) used by IAB counting: "
                    "PODCAST_USER_AGENT_PATTERNS_DIR, else the OPAWG copy `podcast-analytics user-agents update` "
                    "stored, else the built-in list.")],
    check_specs=[dg.AssetCheckSpec(
        SOURCE_CHECK, asset=PATTERNS_KEY,
        description="The patterns are OPAWG's (stored by `podcast-analytics user-agents update`) or a configured "
                    "folder, not the small built-in list that counts most real bots as listeners.")],
    # The check judges the load it comes with: selectable with the asset, or the asset alone.
    can_subset=True,
)
def user_agent_patterns(context: dg.AssetExecutionContext, warehouse: WarehouseResource):
    source = pattern_source()
    rows = read_patterns(source.folder)
    warehouse.require_schema()
    with warehouse.connect(autocommit=True) as conn:
        counts = store_patterns(conn, rows, context.run.run_id)
    version = source.version or {}
    if source.built_in:
        context.log.warning(f"user-agent patterns: {source.describe()}")
    yield dg.MaterializeResult(
        asset_key=PATTERNS_KEY,
        metadata={
            "dagster/row_count": sum(v for k, v in counts.items() if k != "quarantined"),
            "source_dir": str(source.folder), "pattern_origin": source.origin,
            "opawg_version": version.get("id") or "", "opawg_commit": version.get("commit") or "",
            **{f"patterns_{k}": v for k, v in counts.items()},
        },
    )
    if dg.AssetCheckKey(PATTERNS_KEY, SOURCE_CHECK) in context.selected_asset_check_keys:
        yield dg.AssetCheckResult(
            asset_key=PATTERNS_KEY, check_name=SOURCE_CHECK, passed=not source.built_in,
            severity=dg.AssetCheckSeverity.WARN, description=source.describe(),
            metadata={"pattern_origin": source.origin})
