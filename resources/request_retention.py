"""Retention of the request-level dbt tables (docs/PARTITIONED_DBT.md, "Retention").

The daily-partitioned models that hold a row per request or per day's agent
(`int_listener_requests_screened`, `int_download_windows`, `int_downloads_iab_filtered`,
`int_user_agents_daily`: the models whose config `meta` names a `retention_day_column`) keep the days of the last `request_retention_days` (dbt var, 90; 0 keeps
every day); older days are deleted by their day column. The facts built from them keep their
history: a partitioned run replaces only its own days, and no model reads a request-level table
outside its run's days.

What a deletion leaves out is recorded (`ops.request_table_horizons`, migration 0013): the first
day each table still holds. A partitioned run reads the request-level rows of its days and of the
day before (a day's IAB windows start from the windows the day before left open), so a run whose
first day is on or before that day is refused: it would count windows without their start and
replace downloads with fewer, unless no request is stored before its first day. A full rebuild,
or a run from the first stored request to the last pruned day or later, reads the raw events again
and clears the record.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, date, timedelta

import psycopg
from psycopg import sql

from resources.warehouse import WarehouseError

HORIZONS = "ops.request_table_horizons"


def prune_request_tables(conn: psycopg.Connection, tables: Mapping[str, str], retention_days: int,
                         today: date) -> dict[str, int]:
    """Delete the days before `today - retention_days` from each table (`schema.table` -> its day
    column), in the caller's transaction, and record the first day each table keeps when it lost
    rows. Returns the rows deleted per table; nothing for a retention of 0 (keep every day)."""
    if retention_days <= 0:
        return {}
    kept_from = today - timedelta(days=retention_days)
    deleted: dict[str, int] = {}
    for table, column in sorted(tables.items()):
        if conn.execute("select to_regclass(%s) is null", (table,)).fetchone()[0]:
            continue  # not built yet
        schema, name = table.split(".")
        rows = conn.execute(sql.SQL("delete from {}.{} where {} < %s").format(
            sql.Identifier(schema), sql.Identifier(name), sql.Identifier(column)), (kept_from,)).rowcount
        deleted[table] = rows
        if rows:
            # A retention raised later deletes nothing more: the recorded day stays the latest cut.
            conn.execute(f"""
                insert into {HORIZONS} (table_name, kept_from, rows_deleted) values (%s, %s, %s)
                on conflict (table_name) do update
                set kept_from = greatest(excluded.kept_from, request_table_horizons.kept_from),
                    pruned_at = now(), rows_deleted = request_table_horizons.rows_deleted + excluded.rows_deleted
            """, (table, kept_from, rows))
    return deleted


def request_horizons(conn: psycopg.Connection) -> dict[str, date]:
    """Each request-level table that lost days to the retention, and the first day it keeps."""
    if conn.execute("select to_regclass(%s) is null", (HORIZONS,)).fetchone()[0]:
        return {}
    return dict(conn.execute(f"select table_name, kept_from from {HORIZONS}").fetchall())


def check_request_window(horizons: Mapping[str, date], since: date, tables: Iterable[str],
                         models: Iterable[str]) -> None:
    """Refuse a partitioned run from `since` on of `models` (which read or are the request-level
    `tables`) when the day before `since` is no longer kept by one of those tables (`horizons`,
    from request_horizons): its windows would start without the ones that day left open, and its
    downloads would shrink. (A run from the first stored request on needs no earlier day: the
    caller does not ask, reads_from_the_first_request.) WarehouseError names the models, the
    table, the first day it keeps and what to run instead."""
    needed = since - timedelta(days=1)
    for table in sorted(set(tables) & set(horizons)):
        kept_from = horizons[table]
        if needed < kept_from:
            raise WarehouseError(
                f"a run of {', '.join(sorted(models))} from {since:%Y-%m-%d} on reads the request-level rows of "
                f"{needed:%Y-%m-%d} on (a day's IAB windows start from the day before's), but {table} keeps days "
                f"from {kept_from:%Y-%m-%d} on (its retention, the dbt var request_retention_days): run the days "
                f"from {kept_from + timedelta(days=1):%Y-%m-%d} on only, or rebuild the partitioned models in full "
                "(a full refresh, which reads the raw events again)")


def reads_from_the_first_request(conn: psycopg.Connection, since: date) -> bool:
    """Whether a run from `since` on starts at or before the first stored request (the index on
    event_time): it needs no windows of an earlier day, and it rebuilds every pruned day of its
    range from the raw events (a rule change's backfill from the first day built)."""
    first = first_request_day(conn)
    return first is None or since <= first


def first_request_day(conn: psycopg.Connection) -> date | None:
    """The UTC day of the first stored request (the index on event_time)."""
    first = conn.execute("select min(event_time) from raw.listener_events").fetchone()[0]
    return None if first is None else first.astimezone(UTC).date()


def clear_request_horizons(conn: psycopg.Connection, tables: Iterable[str]) -> None:
    """The tables were rebuilt from the raw events (a full refresh, or a run from the first stored
    request past the last pruned day): they hold every day again."""
    names = sorted(tables)
    if names and not conn.execute("select to_regclass(%s) is null", (HORIZONS,)).fetchone()[0]:
        conn.execute(f"delete from {HORIZONS} where table_name = any(%s)", (names,))
