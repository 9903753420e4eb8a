"""Storage shared by the campaign and conversion ingestion: the tables (resources/sql/campaigns.sql
and campaigns_ops.sql), upserts that rewrite a row only when its content changed, quarantine
rows, API cursors and the file ledger.

The record is the unit that fails: `parse_record` turns whatever a record breaks in its parser
(a wrong type anywhere, a NUL byte, a non-finite number, an id that is not a plain identifier)
into `Invalid` with a reason, and `store` quarantines a row the database refuses instead of
losing the rows stored with it."""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Iterable, Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import psycopg
from psycopg import sql
from psycopg.types.json import Jsonb

from resources.identifiers import InvalidIdentifier, validate_identifier
from resources.warehouse import WarehouseResource

META_COLUMNS = ("_source", "_batch_id", "_ingested_at")
# Filled in by the warehouse (its default, and `upsert` on a change), never by a record.
FILLED_BY_WAREHOUSE = frozenset({"_ingested_at"})


class Invalid(Exception):
    """A record that cannot be stored: `code` is the quarantine reason."""

    def __init__(self, code: str, detail: str):
        super().__init__(f"{code}: {detail}")
        self.code, self.detail = code, detail


def not_future(row: dict[str, Any], latest: datetime | None, column: str = "occurred_at") -> dict[str, Any]:
    """The row unless its `column` is after `latest` (the load's time plus the clock-skew tolerance,
    `Settings.latest_event_time`): a time from the future is `future_timestamp`."""
    when = row[column]
    if latest is not None and when is not None and when > latest:
        raise Invalid("future_timestamp", f"{column.replace('_', ' ')} {when.isoformat()}, after the load's "
                                          f"time plus tolerance ({latest.isoformat(timespec='seconds')})")
    return row


def ensure_campaign_tables(warehouse: WarehouseResource) -> None:
    """The sponsorship tables (campaigns.sql, campaigns_ops.sql) come with the schema migrations:
    stop with one line unless the warehouse is at the code's revision."""
    warehouse.require_schema()


def _evidence(value: Any) -> Any:
    """A document as jsonb can hold it: NUL characters shown as U+FFFD (PostgreSQL text and
    jsonb refuse them), non-finite numbers, decimals and dates as text."""
    if isinstance(value, str):
        return value.replace("\x00", "\ufffd")
    if isinstance(value, dict):
        return {_evidence(str(k)): _evidence(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_evidence(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    if value is None or isinstance(value, (bool, int, float)):
        return value
    return str(value)


def payload(document: Any) -> Jsonb:
    return Jsonb(_evidence(document))


# Columns holding a list of text; every other column holds one value.
ARRAY_COLUMNS = frozenset({"promo_codes", "vanity_urls", "discount_codes"})


def identifier(kind: str, value: Any) -> str:
    """A sponsor, campaign, placement or tenant id that may become a file or folder name:
    `resources.identifiers`' pattern, else the record is refused (`invalid_identifier`)."""
    text = str(value).strip() if isinstance(value, (str, int)) and not isinstance(value, bool) else value
    try:
        return validate_identifier(kind, text)
    except InvalidIdentifier as exc:
        raise Invalid("invalid_identifier", str(exc)) from None


def checked(row: dict[str, Any]) -> dict[str, Any]:
    """The row when every column holds what the table can store: text without NUL, a list of
    text where a list belongs, finite numbers; else `Invalid` naming the column."""
    for column, value in row.items():
        if column == "payload":
            continue
        if column in ARRAY_COLUMNS:
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise Invalid("invalid_type", f"{column} is not a list of text")
            values = value
        elif isinstance(value, (dict, list, tuple, set)):
            raise Invalid("invalid_type", f"{column} is a {type(value).__name__} where one value is expected")
        else:
            values = [value]
        for v in values:
            if isinstance(v, str) and "\x00" in v:
                raise Invalid("invalid_text", f"{column} contains a NUL byte")
            if isinstance(v, float) and not math.isfinite(v) or isinstance(v, Decimal) and not v.is_finite():
                raise Invalid("invalid_number", f"{column} is not a finite number")
    return row


def parse_record(parse: Callable[..., dict[str, Any]], *args: Any) -> dict[str, Any]:
    """`parse(*args)`, checked: a record that breaks its parser in a way the parser did not name
    (an object where text is expected, a number where a list is) is `Invalid` too."""
    try:
        return checked(parse(*args))
    except Invalid:
        raise
    except (TypeError, AttributeError, KeyError, IndexError, ValueError, ArithmeticError) as exc:
        raise Invalid("invalid_record", f"{type(exc).__name__}: {str(exc)[:200]}") from None


@functools.cache
def _upsert_sql(table: str, columns: tuple[str, ...], keys: tuple[str, ...], update: bool) -> sql.Composed:
    schema, name = table.split(".")
    content = [c for c in columns if c not in keys and c not in META_COLUMNS]
    return sql.SQL(
        "insert into {table} ({cols}) values ({vals}) on conflict ({keys}) "
        + ("do update set {sets} where ({old}) is distinct from ({new})" if update else "do nothing")
    ).format(
        table=sql.Identifier(schema, name),
        cols=sql.SQL(", ").join(map(sql.Identifier, columns)),
        vals=sql.SQL(", ").join(sql.Placeholder(c) for c in columns),
        keys=sql.SQL(", ").join(map(sql.Identifier, keys)),
        sets=sql.SQL(", ").join(
            sql.SQL("{} = excluded.{}").format(sql.Identifier(c), sql.Identifier(c))
            for c in [*content, "_batch_id"] if c in columns
        ) + sql.SQL(", _ingested_at = now()"),
        old=sql.SQL(", ").join(sql.Identifier(name, c) for c in content),
        new=sql.SQL(", ").join(sql.SQL("excluded.{}").format(sql.Identifier(c)) for c in content),
    )


def upsert(conn: psycopg.Connection, table: str, columns: Sequence[str], keys: Sequence[str],
           rows: Iterable[dict[str, Any]], update: bool = True) -> int:
    """Insert rows or update them on their key; a row whose stored content is the same is left
    alone (its `_ingested_at` and `_batch_id` stay). `update=False`: existing rows are kept as
    they are. Returns the rows inserted or changed.

    `columns` are the table's as the module that writes it declares them (its `RAW_COLUMNS`):
    every row holds exactly those the warehouse does not fill in, else `ValueError` (a parser
    and its table have drifted apart)."""
    staged = tuple(c for c in columns if c not in FILLED_BY_WAREHOUSE)
    statement = _upsert_sql(table, staged, tuple(keys), update)
    changed = 0
    with conn.cursor() as cur:
        for row in rows:
            if row.keys() != set(staged):
                raise ValueError(f"{table}: a row with columns {sorted(row)} where {sorted(staged)} are declared")
            cur.execute(statement, row)
            changed += cur.rowcount
    return changed


def store(conn: psycopg.Connection, table: str, columns: Sequence[str], keys: Sequence[str],
          rows: list[dict[str, Any]], refuse: Callable[[int, Invalid], None], update: bool = True) -> int:
    """`upsert` of a batch; when the database refuses a row of it (a value out of a column's
    range, a check constraint), the batch is stored row by row and each refused row's index goes
    to `refuse` with the reason `rejected_by_database`. Runs inside the caller's transaction."""
    try:
        with conn.transaction():
            return upsert(conn, table, columns, keys, rows, update)
    except (psycopg.errors.DataError, psycopg.errors.IntegrityError):
        pass
    changed = 0
    for i, row in enumerate(rows):
        try:
            with conn.transaction():
                changed += upsert(conn, table, columns, keys, [row], update)
        except (psycopg.errors.DataError, psycopg.errors.IntegrityError) as exc:
            refuse(i, Invalid("rejected_by_database", f"{type(exc).__name__}: {str(exc).splitlines()[0][:300]}"))
    return changed


def quarantine(conn: psycopg.Connection, tenant_id: str, source: str, record_key: str, error: Invalid,
               document: Any, batch_id: str | None) -> int:
    cur = conn.execute(
        "insert into quarantine.campaign_records (tenant_id, source, record_key, reason_code, detail, payload, _batch_id) "
        "values (%s, %s, %s, %s, %s, %s, %s) on conflict do nothing",
        (tenant_id, source, record_key, error.code, error.detail[:500], payload(document), batch_id),
    )
    return cur.rowcount


def read_cursor(conn: psycopg.Connection, tenant_id: str, source: str, stream: str) -> str | None:
    row = conn.execute("select cursor from ops.campaign_sync_cursors where tenant_id = %s and source = %s and stream = %s",
                       (tenant_id, source, stream)).fetchone()
    return row[0] if row else None


def write_cursor(conn: psycopg.Connection, tenant_id: str, source: str, stream: str, cursor: str) -> None:
    conn.execute(
        "insert into ops.campaign_sync_cursors (tenant_id, source, stream, cursor) values (%s, %s, %s, %s) "
        "on conflict (tenant_id, source, stream) do update set cursor = excluded.cursor, updated_at = now() "
        "where campaign_sync_cursors.cursor < excluded.cursor",
        (tenant_id, source, stream, cursor),
    )


def file_loaded(conn: psycopg.Connection, file_key: str, sha256: str) -> bool:
    return conn.execute("select 1 from ops.campaign_files where file_key = %s and sha256 = %s",
                        (file_key, sha256)).fetchone() is not None


def record_file(conn: psycopg.Connection, file_key: str, kind: str, tenant_id: str, sha256: str, rows: int,
                quarantined: int, batch_id: str | None, refused: Invalid | None = None) -> None:
    """The file's bytes as loaded; `refused`: the file could not be read (all of it or past a
    point), with the reason. Either way the same bytes are not read again."""
    conn.execute(
        "insert into ops.campaign_files (file_key, kind, tenant_id, sha256, rows, quarantined, refused_reason, "
        "refused_detail, _batch_id) values (%s, %s, %s, %s, %s, %s, %s, %s, %s) on conflict (file_key) do update set "
        "sha256 = excluded.sha256, rows = excluded.rows, quarantined = excluded.quarantined, "
        "refused_reason = excluded.refused_reason, refused_detail = excluded.refused_detail, "
        "_batch_id = excluded._batch_id, loaded_at = now()",
        (file_key, kind, tenant_id, sha256, rows, quarantined, refused.code if refused else None,
         refused.detail[:500] if refused else None, batch_id),
    )
