"""What the loaders have already stored, read from their own ledgers (`ops.listener_log_files`,
`ops.campaign_files`, `ops.megaphone_export_files`).

The file sensors decide "new" from these tables, not from a cursor of their own: a file the demo,
a manual run, a backfill or an earlier sensor tick loaded is in the ledger, whoever launched it,
so a sensor started later (`dev` after `demo`, a daemon restarted with an empty cursor) requests
nothing twice, and no sensor state grows with the number of files ever seen.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date

from resources.warehouse import WarehouseResource

LEDGERS = {  # ledger -> (table, query of (key, size or null, loaded at, state, log date or null))
    # state: `current` (the row stands for the file as stored), `stale` (a duplicate whose original
    # is no longer loaded with its content: it must be loaded now), `deleted` (the file left)
    "listener_logs": ("ops.listener_log_files", """
        select f.file_key, f.size_bytes, extract(epoch from f.loaded_at),
               case when f.status = 'deleted' then 'deleted'
                    when f.status = 'duplicate' and not exists (
                        select 1 from ops.listener_log_files o
                        where o.file_key = f.duplicate_of and o.status = 'loaded' and o.sha256 = f.sha256) then 'stale'
                    else 'current' end,
               f.log_date
        from ops.listener_log_files f"""),
    "conversions": ("ops.campaign_files",
                    "select file_key, null::bigint, extract(epoch from loaded_at), 'current', null::date "
                    "from ops.campaign_files where kind in ('pixel', 'vanity')"),
    "megaphone": ("ops.megaphone_export_files",
                  "select file_path, size_bytes, extract(epoch from loaded_at), 'current', null::date "
                  "from ops.megaphone_export_files"),
}


@dataclass(frozen=True)
class Stored:
    """A ledger row: the size the loader read (when it keeps one), when it stored the file, and
    whether the row still stands for the file (`current`), must be loaded again (`stale`) or
    records a file that left (`deleted`); the log date, for the log ledger."""

    size: int | None
    loaded_at: float
    state: str = "current"
    log_date: date | None = None


def read_ledger(warehouse: WarehouseResource, ledger: str) -> dict[str, Stored]:
    """Every file of `ledger`; empty when the warehouse has no such table yet (never bootstrapped)."""
    with warehouse.connect() as conn:
        table, statement = LEDGERS[ledger]
        if conn.execute("select to_regclass(%s)", (table,)).fetchone()[0] is None:
            return {}
        return {key: Stored(size, float(loaded), state, day)
                for key, size, loaded, state, day in conn.execute(statement)}


def needs_load(stored: Stored | None, size: int, mtime: float | None) -> bool:
    """A file needs a load when the ledger does not hold it as it is now: no row, a row of a file
    that left or of a duplicate whose original went, another size, or the file was modified after
    it was stored (a rewrite of the same size). The loader compares checksums, so a file only
    touched is read and found unchanged, once: the run key below stops a second request for the
    same (name, size, time)."""
    if stored is None or stored.state != "current":
        return True
    if stored.size is not None and stored.size != size:
        return True
    return mtime is not None and mtime > stored.loaded_at


def run_key(prefix: str, files: Iterable[tuple]) -> str:
    """A run key for a set of file versions (with the ledger's state of each, where the request
    comes from it): the same files in the same versions ask once."""
    digest = hashlib.sha256(json.dumps(sorted(files), default=str).encode()).hexdigest()[:16]
    return f"{prefix}:{digest}"
