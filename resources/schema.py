"""The warehouse's schema as versioned migrations (Alembic, `resources/migrations/versions/`).

`podcast-analytics migrate`, the demo and `dev` apply them (`migrate`); asset runs never issue
DDL, they only compare the warehouse's revision with the code's (`require_schema`, cached per
process) and stop with one line when they differ. A new revision is one file
(`new_revision`, or `podcast-analytics migrate --new "what it does"`).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from pathlib import Path

import psycopg

from resources.warehouse import WarehouseError, describe_url, libpq_url, one_line

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
# Taken by every `migrate` on its database (resources/migrations/env.py).
MIGRATION_LOCK = "hashtext('podcast_analytics.migrate')"
MIGRATE_APPLICATION_NAME = "podcast-analytics/migrate"
# The revision table is ours by name: Dagster's PostgreSQL storage keeps its own Alembic revision
# in `alembic_version` when it shares the warehouse's database (DAGSTER_PG_URL = DATABASE_URL).
VERSION_TABLE = "podcast_analytics_schema_version"


@dataclass(frozen=True)
class Migration:
    """What `migrate` did: the revision before and after, and the revisions applied in order."""

    before: str | None
    after: str | None
    applied: list[str] = field(default_factory=list)
    timescale: str = ""  # what became of the raw time-series tables (resources.warehouse.apply_timescale)

    def describe(self) -> str:
        if not self.applied:
            text = f"schema at {self.after} (head), nothing to apply"
        else:
            start = f"from {self.before}" if self.before else "from an empty or pre-migration warehouse"
            text = f"schema at {self.after} (head), {start}: applied {', '.join(self.applied)}"
        return f"{text}; {self.timescale}" if self.timescale else text


def _config(script_location: Path | None = None, connection=None, timescale: tuple | None = None):
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(script_location or MIGRATIONS_DIR))
    # Revision files are named <revision>_<slug>.py (0003_listener_events_codec.py).
    config.set_main_option("file_template", "%%(rev)s_%%(slug)s")
    if connection is not None:
        config.attributes["connection"] = connection
    # (PODCAST_TIMESCALEDB, each time-series table's policies), for the revisions that need them
    config.attributes["timescale"] = timescale
    return config


def _script(script_location: Path | None = None):
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(_config(script_location))


@functools.cache
def head_revision(script_location: Path | None = None) -> str:
    """The revision this code expects (the single head of `versions/`)."""
    heads = _script(script_location).get_heads()
    if len(heads) != 1:
        raise WarehouseError(f"the migrations have {len(heads)} heads ({', '.join(sorted(heads))}): "
                             "give the newer revision `down_revision` = the older head")
    return heads[0]


def current_revision(conn: psycopg.Connection) -> str | None:
    """The warehouse's revision; None before the first `migrate` (no revision table)."""
    exists = conn.execute(f"select to_regclass('public.{VERSION_TABLE}') is not null").fetchone()[0]
    if not exists:
        return None
    row = conn.execute(f"select version_num from public.{VERSION_TABLE}").fetchone()
    return row[0] if row else None


def run_script(statements: str) -> None:
    """Run SQL text (several statements, `do $$ ... $$` blocks, no parameters) inside the current
    revision's transaction. Through psycopg itself: SQLAlchemy's text() would read `:name` as a
    bind parameter."""
    from alembic import op

    op.get_bind().connection.driver_connection.execute(statements)


def migrate(url: str, lock_timeout: str = "30s", script_location: Path | None = None,
            timescaledb: str | None = None, policies: dict[str, dict[str, str]] | None = None) -> Migration:
    """Apply every revision the warehouse at `url` lacks. Its sessions wait at most `lock_timeout`
    for a table (a load's COPY, a reader's transaction) and then stop with one line, instead of
    queueing every later query of that table behind them; nothing of the interrupted revision stays.

    Then, every time, the raw time-series tables are brought to the TimescaleDB settings
    (`timescaledb`: PODCAST_TIMESCALEDB; `policies`: their chunk intervals, compression and
    retention; default: the settings): hypertables once the server preloads the extension, their
    policies as the settings say (`resources.warehouse.apply_timescale`)."""
    import sqlalchemy as sa
    from alembic import command
    from alembic.runtime.migration import MigrationContext
    from alembic.util import CommandError

    from resources.settings import get_settings
    from resources.warehouse import apply_timescale

    if timescaledb is None or policies is None:
        settings = get_settings()
        timescaledb = timescaledb or settings.timescaledb
        policies = policies or settings.time_series_policies()

    def connect() -> psycopg.Connection:
        return psycopg.connect(libpq_url(url), connect_timeout=10, application_name=MIGRATE_APPLICATION_NAME,
                               options=f"-c lock_timeout={lock_timeout}")

    engine = sa.create_engine("postgresql+psycopg://", creator=connect, poolclass=sa.pool.NullPool)
    target = head_revision(script_location)
    before = None
    try:
        with engine.connect() as connection:
            before = MigrationContext.configure(connection, opts={"version_table": VERSION_TABLE}).get_current_revision()
            connection.commit()
            command.upgrade(_config(script_location, connection, (timescaledb, policies)), "head")
            after = MigrationContext.configure(connection, opts={"version_table": VERSION_TABLE}).get_current_revision()
            connection.commit()
            connection.exec_driver_sql(f"select pg_advisory_xact_lock({MIGRATION_LOCK})")
            timescale = apply_timescale(connection.connection.driver_connection, timescaledb, policies)
            connection.commit()
    except (sa.exc.DBAPIError, psycopg.Error) as exc:
        # SQLAlchemy wraps the driver's error; a revision's script (`run_script`) raises it as is
        cause = exc.orig if isinstance(exc, sa.exc.DBAPIError) and exc.orig is not None else exc
        reason = one_line(cause)
        if isinstance(cause, psycopg.errors.LockNotAvailable):
            reason += (f" (another session held a table for more than lock_timeout {lock_timeout}: "
                       f"the revision was rolled back; run `podcast-analytics migrate` again when it is free)")
        raise WarehouseError(f"cannot migrate {describe_url(url)} from {before or 'none'} to {target}: {reason}") from None
    except WarehouseError as exc:  # TimescaleDB asked for and not possible, or created and not preloaded
        raise WarehouseError(f"cannot migrate {describe_url(url)}: {exc}") from None
    except CommandError as exc:
        raise WarehouseError(f"cannot migrate {describe_url(url)}: {one_line(exc)} (warehouse schema at "
                             f"{before}, this code knows revisions up to {target})") from None
    finally:
        engine.dispose()
    script = _script(script_location)
    applied = [] if before == after else [
        rev.revision for rev in reversed(list(script.iterate_revisions(after, before)))]
    _checked.discard(_database_key(url))
    return Migration(before=before, after=after, applied=applied, timescale=timescale)


_checked: set[tuple] = set()


def _database_key(url: str) -> tuple:
    info = psycopg.conninfo.conninfo_to_dict(libpq_url(url))
    return tuple(info.get(k) for k in ("host", "port", "dbname", "user"))


def require_schema(url: str, script_location: Path | None = None) -> None:
    """Stop with one line unless the warehouse is at the code's revision. One query, once per
    process and database: what asset runs do instead of DDL."""
    key = _database_key(url)
    if key in _checked:
        return
    expected = head_revision(script_location)
    try:
        with psycopg.connect(libpq_url(url), connect_timeout=10) as conn:
            current = current_revision(conn)
    except psycopg.Error as exc:
        raise WarehouseError(f"cannot read the schema revision of {describe_url(url)}: {one_line(exc)}") from None
    if current != expected:
        raise WarehouseError(f"warehouse schema at {current or 'none'}, code expects {expected}: "
                             f"run `podcast-analytics migrate`")
    _checked.add(key)


def new_revision(message: str, script_location: Path | None = None) -> Path:
    """Write the next revision file (`<NNNN>_<slug>.py`, after the current head) and return it."""
    from alembic import command

    location = script_location or MIGRATIONS_DIR
    head = _script(location).get_current_head()
    number = int(head) + 1 if head and head.isdigit() else 1
    script = command.revision(_config(location), message=message, rev_id=f"{number:04d}")
    head_revision.cache_clear()
    return Path(script.path)
