"""Storage shared by the campaign and conversion ingestion: the tables (resources/sql/campaigns.sql
and campaigns_ops.sql), upserts that rewrite a row only when its content changed, quarantine
rows, API cursors and the file ledger."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import psycopg
from psycopg import sql
from psycopg.types.json import Jsonb

from resources.schema import require_schema

META_COLUMNS = ("_source", "_batch_id", "_ingested_at")


class Invalid(Exception):
    """A record that cannot be stored: `code` is the quarantine reason."""

    def __init__(self, code: str, detail: str):
        super().__init__(f"{code}: {detail}")
        self.code, self.detail = code, detail


def ensure_campaign_tables(url: str) -> None:
    """The sponsorship tables (campaigns.sql, campaigns_ops.sql) come with the schema migrations:
    stop with one line unless the warehouse is at the code's revision."""
    require_schema(url)


def _jsonable(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    return value


def payload(document: Any) -> Jsonb:
    return Jsonb(json.loads(json.dumps(document, default=_jsonable)))


def upsert(conn: psycopg.Connection, table: str, keys: Sequence[str], rows: Iterable[dict[str, Any]],
           update: bool = True) -> int:
    """Insert rows or update them on their key; a row whose stored content is the same is left
    alone (its `_ingested_at` and `_batch_id` stay). `update=False`: existing rows are kept as
    they are. Returns the rows inserted or changed."""
    schema, name = table.split(".")
    changed = 0
    statement = None
    columns: list[str] = []
    with conn.cursor() as cur:
        for row in rows:
            if statement is None:
                columns = list(row)
                content = [c for c in columns if c not in keys and c not in META_COLUMNS]
                target = sql.Identifier(schema, name)
                statement = sql.SQL(
                    "insert into {table} ({cols}) values ({vals}) on conflict ({keys}) "
                    + ("do update set {sets} where ({old}) is distinct from ({new})" if update else "do nothing")
                ).format(
                    table=target,
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
            cur.execute(statement, row)
            changed += cur.rowcount
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
                quarantined: int, batch_id: str | None) -> None:
    conn.execute(
        "insert into ops.campaign_files (file_key, kind, tenant_id, sha256, rows, quarantined, _batch_id) "
        "values (%s, %s, %s, %s, %s, %s, %s) on conflict (file_key) do update set sha256 = excluded.sha256, "
        "rows = excluded.rows, quarantined = excluded.quarantined, _batch_id = excluded._batch_id, loaded_at = now()",
        (file_key, kind, tenant_id, sha256, rows, quarantined, batch_id),
    )
