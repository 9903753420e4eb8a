"""Sync hosting and listening-platform APIs into `raw.<platform>_*`: the registry of platforms,
the `platforms:` section of sources.yaml, and `sync_platform`, which runs one platform's shows.

Credentials are read from the environment variables that `sources.yaml` names; they travel
only in request headers.
"""

from __future__ import annotations

import contextvars
import time
from collections.abc import Collection
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, create_model

from assets.ingestion.platforms.apple import Apple
from assets.ingestion.platforms.base import Checkpoint, Platform, ShowSync, SyncStats, no_checkpoint, policy_for
from assets.ingestion.platforms.buzzsprout import Buzzsprout
from assets.ingestion.platforms.megaphone import Megaphone
from assets.ingestion.platforms.podbean import Podbean
from assets.ingestion.platforms.simplecast import Simplecast
from assets.ingestion.platforms.spotify import Spotify
from assets.ingestion.platforms.transistor import Transistor
from resources.platform_http import ApiClient
from resources.warehouse import WarehouseResource

# Every platform the sync knows, by name. A platform module adds its `Platform` here.
PLATFORMS: dict[str, Platform] = {
    p.name: p for p in (Buzzsprout(), Transistor(), Podbean(), Simplecast(), Spotify(), Apple(), Megaphone())
}
# The columns of every platform stream's raw table, as each platform module's streams declare
# them (`Stream.raw_columns`): read by the merge, the quality suite and, through
# tests/test_raw_columns.py, held equal to the dbt sources.
RAW_COLUMNS: dict[str, tuple[str, ...]] = {
    table: columns for p in PLATFORMS.values() for table, columns in p.raw_columns().items()
}


class _SourcesBase(BaseModel):
    allow_private_hosts: bool = False


# The `platforms:` section of sources.yaml: one optional section per registered platform.
PlatformSources = create_model(
    "PlatformSources", __base__=_SourcesBase,
    **{name: (p.config_model | None, None) for name, p in PLATFORMS.items()},
)


def load_platform_sources(path: Path) -> Any:
    document = yaml.safe_load(path.read_text()) if path.exists() else None
    return PlatformSources.model_validate((document or {}).get("platforms") or {})


def ensure_platform_tables(warehouse: WarehouseResource) -> None:
    """The platform tables (resources/sql/platforms*.sql) come with the schema migrations: stop
    with one line unless the warehouse is at the code's revision."""
    warehouse.require_schema()


def sync_platform(
    warehouse: WarehouseResource, sources: Any, platform: str, batch_id: str, start: date | None = None,
    end: date | None = None, checkpoint: Checkpoint = no_checkpoint, environ: dict[str, str] | None = None,
    raise_errors: bool = False, streams: Collection[str] | None = None, sync_id: str | None = None,
) -> SyncStats:
    """Sync one platform's configured shows: its `streams` (all by default); daily streams only
    when a window [start, end] is given.

    `sync_id` names the logical sync (a Dagster run and its re-executions share one): a stream
    this sync already finished is skipped, one that stopped part-way resumes at its cursor.

    Shows run concurrently (bounded by the policy's concurrency); shows sharing a credential
    share one client, so its rate limit covers the whole account. Each show runs in a copy of the
    caller's context, so the connection it takes from the warehouse carries the asset's session
    name (`podcast-analytics:<op>`) as the caller's would."""
    spec = PLATFORMS[platform]
    config = getattr(sources, platform)
    stats = SyncStats()
    ensure_platform_tables(warehouse)
    if config is None or not config.shows:
        return stats
    wanted = frozenset(streams) if streams is not None else frozenset(s.name for s in spec.streams)
    policy = policy_for(config, sources.allow_private_hosts)
    clients: dict[tuple[str, ...], ApiClient] = {}
    jobs: list[ShowSync] = []
    for show in config.shows:
        account = show.credential_envs
        if account not in clients:
            clients[account] = spec.open_api(config, show, policy, environ)
        jobs.append(ShowSync(spec, warehouse, config, show, spec.client(clients[account], show, config), wanted, start, end,
                             batch_id, sync_id or batch_id, SyncStats(), checkpoint))

    def run(job: ShowSync) -> Exception | None:
        started = time.perf_counter()
        try:
            spec.sync_show(job)
        except Exception as exc:  # noqa: BLE001 (one show's failure must not lose the others' work)
            return exc
        finally:
            job.stats.show_seconds += time.perf_counter() - started
        return None

    caller = contextvars.copy_context()
    try:
        with ThreadPoolExecutor(policy.concurrency, f"{platform}-sync") as pool:
            outcomes = list(pool.map(lambda job: caller.copy().run(run, job), jobs))
        errors = []
        for job, exc in zip(jobs, outcomes):
            stats.merge(job.stats)  # what a failed show stored before it failed is stored for good
            if exc is not None:
                stats.failed_sources[f"{job.show.tenant_id}/{job.show.source_id}"] = f"{type(exc).__name__}: {exc}"
                errors.append(exc)
        if errors and raise_errors:
            raise errors[0]
    finally:
        for job in jobs:
            job.close()
        for client in clients.values():
            stats.requests += client.stats.requests
            stats.retries.update(client.stats.retry_reasons)
            stats.network_seconds += client.stats.network_seconds
            stats.wait_seconds += client.stats.wait_seconds + client.stats.backoff_seconds
            client.close()
    return stats

