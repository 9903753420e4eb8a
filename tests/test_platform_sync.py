"""Hosting-platform APIs served by the simulator, synced into real PostgreSQL: a clean sync
against the ground truth, a sync under faults, an interrupted sync, re-runs, and credentials."""

import json
import logging
import time
from datetime import date

import dagster as dg
import psycopg
import pytest
import yaml
from psycopg import sql

from assets.ingestion.platforms.assets import CATALOG_KEYS, METRIC_KEYS, PLATFORM_ASSETS
from assets.ingestion.platforms.buzzsprout import BuzzsproutClient, buzzsprout_api
from assets.ingestion.platforms.sync import PlatformSources, sync_platform
from assets.ingestion.platforms.transistor import TransistorClient, transistor_api
from resources.platform_http import ApiClient, ApiError, ApiPolicy, Secret
from resources.warehouse import WarehouseResource, warehouse_at
from simulator.platforms import FAULT_KINDS, api_token, hosted_shows, platform_sources, platform_truth
from simulator.server import SimulatorServer
from tests.conftest import query

WINDOW = (date(2026, 10, 30), date(2026, 11, 2))
TRANSISTOR_LIMIT = (10, 0.2)  # the real 10 requests / 10 s, scaled down fifty times
FAST = {"timeout_seconds": 0.4, "wait_initial_seconds": 0.02, "rate_limit_seconds": 0.2}
TABLES = {
    "raw.buzzsprout_episodes": "tenant_id, podcast_id, episode_id",
    "raw.buzzsprout_episode_downloads_daily": "tenant_id, podcast_id, episode_id, download_date",
    "raw.transistor_episodes": "tenant_id, show_id, episode_id",
    "raw.transistor_episode_downloads_daily": "tenant_id, show_id, episode_id, download_date",
    "quarantine.platform_records": "platform, tenant_id, source_id, stream, record_key, reason_code",
}
BOOKKEEPING = {"_ingested_at", "_batch_id"}
# The assets of the platforms these tests are about (other platforms have their own tests).
HOST_ASSETS = [a for a in PLATFORM_ASSETS if a.key.path[-1].startswith(("buzzsprout_", "transistor_"))]


def sources_for(sim: SimulatorServer, **options) -> tuple[PlatformSources, dict[str, str]]:
    section, environ = platform_sources(sim.network, sim.base_url, **{**FAST, **options})
    section["transistor"]["per_page"] = 25
    return PlatformSources.model_validate(section), environ


def sync_all(url: str, sim: SimulatorServer, batch_id: str, **kwargs) -> dict:
    sources, environ = sources_for(sim, **kwargs.pop("options", {}))
    return {p: sync_platform(warehouse_at(url), sources, p, batch_id, *WINDOW, environ=environ, **kwargs)
            for p in ("buzzsprout", "transistor")}


def snapshot(url: str, bookkeeping: bool = False) -> dict[str, list[tuple]]:
    """Every row of the platform tables, ordered by key (without load bookkeeping unless asked)."""
    out = {}
    with psycopg.connect(url) as conn:
        for table, key in TABLES.items():
            schema, name = table.split(".")
            columns = [r[0] for r in conn.execute(
                "select column_name from information_schema.columns where table_schema = %s and table_name = %s "
                "order by ordinal_position", (schema, name)).fetchall()]
            keep = columns if bookkeeping else [c for c in columns if c not in BOOKKEEPING]
            if bookkeeping:
                keep = ["xmin::text", *keep]
            statement = sql.SQL("select {} from {} order by {}").format(
                sql.SQL(", ").join(sql.SQL(c) if c.startswith("xmin") else sql.Identifier(c) for c in keep),
                sql.Identifier(schema, name), sql.SQL(key))
            out[table] = conn.execute(statement).fetchall()
    return out


@pytest.fixture(scope="module")
def clean_sim(network):
    with SimulatorServer(network, transistor_limit=TRANSISTOR_LIMIT) as server:
        yield server


@pytest.fixture(scope="module")
def faulty_sim(network):
    with SimulatorServer(network, transistor_limit=TRANSISTOR_LIMIT, api_faults=0.2, api_fault_seed=11,
                         api_retry_after=0, api_hang_seconds=0.6) as server:
        yield server


@pytest.fixture(scope="module")
def clean(new_warehouse, clean_sim):
    """One database synced once from the fault-free simulator: the reference for other tests."""
    url = new_warehouse("t_platform")
    stats = sync_all(url, clean_sim, "clean-1")
    yield url, stats, snapshot(url)


def test_clean_sync_matches_ground_truth(clean, network):
    url, stats, _ = clean
    truth = platform_truth(network, *WINDOW)
    for platform, source_column in (("buzzsprout", "podcast_id"), ("transistor", "show_id")):
        assert not stats[platform].failed_sources
        episodes = set(query(url, f"select tenant_id, {source_column}, episode_id, guid from raw.{platform}_episodes"))
        assert len(episodes) > 500 and episodes == truth["episodes"][platform]
        downloads = {(t, s, e, d): n for t, s, e, d, n in query(
            url, f"select tenant_id, {source_column}, episode_id, download_date, downloads "
                 f"from raw.{platform}_episode_downloads_daily")}
        assert len(downloads) > 1000 and downloads == truth["downloads"][platform]
        quarantined = {(t, s, d): n for t, s, d, n in query(
            url, "select tenant_id, source_id, record_date, count(*) from quarantine.platform_records "
                 "where platform = %s group by 1, 2, 3", (platform,))}
        assert quarantined and quarantined == dict(truth["quarantined"][platform])


def test_api_episodes_are_stored_as_the_host_lists_them(clean, network):
    """Guid, title, media URL and time land in raw exactly as the API sends them, host quirks and
    all; matching them with the feed items is dbt's work (tests/test_platform_dbt.py)."""
    url = clean[0]
    listed = {(h.tenant_id, h.source_id, e.episode_id): (e.guid, e.title, e.audio_url, e.published_at)
              for h in hosted_shows(network) if h.platform in ("buzzsprout", "transistor") for e in h.episodes}
    rows = query(url, "select tenant_id, podcast_id, episode_id, guid, title, audio_url, published_at "
                      "from raw.buzzsprout_episodes union all select tenant_id, show_id, episode_id, guid, title, "
                      "media_url, published_at from raw.transistor_episodes")
    assert {(t, s, e): tuple(rest) for t, s, e, *rest in rows} == listed
    feed_guids = {(s.tenant_id, e.guid) for s in network.shows for e in s.episodes if e.guid}
    shared = sum((t, g) in feed_guids for t, _, _, g, *_ in rows)
    assert 0.6 * len(rows) < shared < len(rows)  # most hosts keep the feed's guid, not all


def test_rerun_changes_nothing(clean, clean_sim):
    url, first, _ = clean
    before = snapshot(url, bookkeeping=True)
    again = sync_all(url, clean_sim, "clean-2")
    assert snapshot(url, bookkeeping=True) == before  # same row versions: nothing was rewritten
    assert sum(again["buzzsprout"].rows_written.values()) == sum(again["transistor"].rows_written.values()) == 0
    # Unchanged Buzzsprout episode lists answer 304 to the stored ETag.
    assert again["buzzsprout"].not_modified == len([h for h in hosted_shows(clean_sim.network) if h.platform == "buzzsprout"])


def test_sync_under_20_percent_faults_ends_with_the_data_of_a_clean_sync(new_warehouse, faulty_sim, clean):
    url = new_warehouse("t_platform")
    stats = sync_all(url, faulty_sim, "faulty-1")
    assert not stats["buzzsprout"].failed_sources and not stats["transistor"].failed_sources
    assert snapshot(url) == clean[2]
    served = faulty_sim.apis.faults_served
    assert set(served) == set(FAULT_KINDS) and sum(served.values()) > 20
    retried = stats["buzzsprout"].retries + stats["transistor"].retries
    assert {"http_429", "http_500", "timeout", "invalid_json"} <= set(retried)


def test_interrupted_sync_resumes_without_duplicates_or_gaps(new_warehouse, clean_sim, clean):
    url = new_warehouse("t_platform")

    class Crash(Exception):
        pass

    def crash_after(limit):
        stored = {"units": 0, "crashed": False}

        def checkpoint(stream, cursor):
            stored["units"] += 1
            # The first crash lands in the middle of a stream (its cursor says "not complete").
            if stored["crashed"] or (stored["units"] >= limit and not cursor["complete"]):
                stored["crashed"] = True
                raise Crash(f"stopped after {stored['units']} units in {stream}")
        return checkpoint

    # One show at a time: the first half of the shows completes, then every show stops after the
    # page/day it is storing (the first of them mid-stream, the later ones after their first unit).
    sources, environ = sources_for(clean_sim, concurrency=1)
    clean_units = {p: clean[1][p].units for p in ("buzzsprout", "transistor")}
    first = {p: sync_platform(warehouse_at(url), sources, p, "cut-1", *WINDOW, environ=environ,
                              checkpoint=crash_after(clean_units[p] // 2 + 1))
             for p in ("buzzsprout", "transistor")}
    partial = snapshot(url)
    for platform in ("buzzsprout", "transistor"):
        shows = len(getattr(sources, platform).shows)
        assert 0 < len(first[platform].failed_sources) < shows
        table = f"raw.{platform}_episode_downloads_daily"
        assert 0 < len(partial[table]) < len(clean[2][table])

    # The retry of the same sync (a re-executed run) picks up where each stream stopped.
    resumed = {p: sync_platform(warehouse_at(url), sources, p, "cut-1", *WINDOW, environ=environ) for p in ("buzzsprout", "transistor")}
    for platform in ("buzzsprout", "transistor"):
        assert not resumed[platform].failed_sources and resumed[platform].resumed >= 1
        # Every page/day was stored exactly once over the two attempts: nothing redone, nothing skipped.
        assert first[platform].units + resumed[platform].units == clean_units[platform]
    assert snapshot(url) == clean[2]


def test_per_download_detail_pages_add_up_to_the_daily_total(clean_sim):
    show = next(h for h in hosted_shows(clean_sim.network) if h.platform == "buzzsprout")
    token = Secret(api_token(clean_sim.network.seed, "buzzsprout", show.tenant_id))
    policy = ApiPolicy(allow_private_hosts=True, timeout_seconds=2)
    with buzzsprout_api(f"{clean_sim.base_url}/buzzsprout/api", token, policy) as api:
        client = BuzzsproutClient(api, show.source_id)
        day = date(2026, 10, 31)
        totals = {str(r["episode_id"]): r["total"] for r in client.daily_downloads(day) if r["episode_id"]}
        episode_id, total = max(totals.items(), key=lambda kv: kv[1])
        pages = list(client.download_details(episode_id, day, per_page=7))
    assert total > 14 and len(pages) == -(-total // 7)
    records = [r for _, page, _ in pages for r in page]
    assert len(records) == total
    assert {"id", "app", "device", "device_type", "country_code", "region", "city", "continent", "media_type"} == set(records[0])
    assert pages[-1][2] is None and [p for p, _, _ in pages] == list(range(1, len(pages) + 1))


def test_transistor_pages_by_links_next_or_by_meta_alone(network):
    show = next(h for h in hosted_shows(network) if h.platform == "transistor")
    key = Secret(api_token(network.seed, "transistor", show.tenant_id))
    policy = ApiPolicy(allow_private_hosts=True, timeout_seconds=2)

    def pages(sim):
        with transistor_api(f"{sim.base_url}/transistor/v1", key, policy) as api:
            client = TransistorClient(api, show.source_id, per_page=9)
            return [(page, [r["id"] for r in resources], nxt) for page, resources, nxt in client.episodes()]

    with SimulatorServer(network, transistor_limit=(1000, 1.0)) as linked_sim:
        linked = pages(linked_sim)
    with SimulatorServer(network, transistor_limit=(1000, 1.0), transistor_links=False) as meta_sim:
        by_meta = pages(meta_sim)
    assert len(linked) == -(-len(show.episodes) // 9) > 3
    assert by_meta == linked
    assert sorted(i for _, ids, _ in linked for i in ids) == sorted(e.episode_id for e in show.episodes)


def test_retry_after_of_a_rate_limit_block_is_honoured(network):
    show = next(h for h in hosted_shows(network) if h.platform == "transistor")
    key = Secret(api_token(network.seed, "transistor", show.tenant_id))
    with SimulatorServer(network, transistor_limit=(3, 1.0)) as sim:
        # No client-side pacing here: the server's block (429, Retry-After: 1) must be waited out.
        # (A generous timeout: on a busy machine a slow answer must not count as a second retry.)
        policy = ApiPolicy(allow_private_hosts=True, timeout_seconds=30, wait_initial_seconds=0.01)
        with ApiClient(f"{sim.base_url}/transistor/v1", policy, {"x-api-key": key}) as api:
            started = time.perf_counter()
            for _ in range(4):
                api.get("/episodes", {"show_id": show.source_id, "pagination[per]": 1})
            elapsed = time.perf_counter() - started
    assert api.stats.retry_reasons == {"http_429": 1}
    assert elapsed >= 1.0


def test_size_cap_and_auth_failures_are_final_errors_without_the_credential(clean_sim):
    show = next(h for h in hosted_shows(clean_sim.network) if h.platform == "buzzsprout")
    good = Secret(api_token(clean_sim.network.seed, "buzzsprout", show.tenant_id))
    base = f"{clean_sim.base_url}/buzzsprout/api"
    with buzzsprout_api(base, good, ApiPolicy(allow_private_hosts=True, max_bytes=2000)) as api:
        with pytest.raises(ApiError) as too_large:
            BuzzsproutClient(api, show.source_id).episodes()
    assert too_large.value.code == "response_too_large" and api.stats.requests == 1
    wrong = Secret("wrong-token-0123456789")
    with buzzsprout_api(base, wrong, ApiPolicy(allow_private_hosts=True)) as api:
        with pytest.raises(ApiError) as denied:
            BuzzsproutClient(api, show.source_id).episodes()
    assert denied.value.code == "http_401" and "wrong-token" not in str(denied.value)
    assert "wrong-token" not in repr(wrong) and "wrong-token" not in str(api._auth)


def test_assets_materialize_and_never_expose_credentials(fresh_db, clean_sim, tmp_path, monkeypatch, caplog, capfd):
    section, environ = platform_sources(clean_sim.network, clean_sim.base_url, **FAST, lookback_days=1)
    section["transistor"]["per_page"] = 100
    sources_file = tmp_path / "sources.yaml"
    sources_file.write_text(yaml.safe_dump({"platforms": section}))
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    caplog.set_level(logging.DEBUG)
    resources = {"warehouse": WarehouseResource(database_url=fresh_db)}
    run_config = {"ops": {a.op.name: {"config": {"sources_file": str(sources_file)}} for a in PLATFORM_ASSETS}}
    episodes = [a for a in HOST_ASSETS if a.key in CATALOG_KEYS]
    downloads = [a for a in HOST_ASSETS if a.key in METRIC_KEYS]
    results = [
        dg.materialize(episodes, resources=resources, run_config={"ops": {a.op.name: run_config["ops"][a.op.name] for a in episodes}}),
        dg.materialize(downloads, resources=resources, partition_key="2026-11-02",
                       run_config={"ops": {a.op.name: run_config["ops"][a.op.name] for a in downloads}}),
    ]
    assert all(r.success for r in results)
    materializations = [m for r in results for m in r.get_asset_materialization_events()]
    metadata = {m.asset_key.path[-1]: m.materialization.metadata for m in materializations}
    assert metadata["transistor_episode_downloads_daily"]["window"].value == "2026-11-01..2026-11-02"
    assert metadata["buzzsprout_episode_downloads_daily"]["dagster/row_count"].value > 100
    days = query(fresh_db, "select distinct download_date from raw.transistor_episode_downloads_daily order by 1")
    assert [d for (d,) in days] == [date(2026, 11, 1), date(2026, 11, 2)]

    # A run with a wrong key fails; neither the good nor the wrong credential shows anywhere.
    monkeypatch.setenv(next(iter(environ)), "wrong-key-5f2c9b")
    failed = dg.materialize(episodes, resources=resources, raise_on_error=False,
                            run_config={"ops": {a.op.name: run_config["ops"][a.op.name] for a in episodes}})
    assert not failed.success
    captured = capfd.readouterr()
    events = json.dumps([str(e) for r in [*results, failed] for e in r.all_events])
    stored = json.dumps(query(fresh_db, "select * from quarantine.platform_records") +
                        query(fresh_db, "select * from ops.platform_sync_cursors"), default=str)
    for secret in [*environ.values(), "wrong-key-5f2c9b"]:
        for where, text in (("logs", caplog.text), ("stdout", captured.out), ("stderr", captured.err),
                            ("events", events), ("tables", stored)):
            assert secret not in text, where
    assert "401" in events


def test_a_partition_run_rereads_its_lookback_window_and_picks_up_restated_days(fresh_db, network, tmp_path, monkeypatch):
    with SimulatorServer(network, transistor_limit=TRANSISTOR_LIMIT) as sim:
        section, environ = platform_sources(network, sim.base_url, **FAST, lookback_days=2)
        sources_file = tmp_path / "sources.yaml"
        sources_file.write_text(yaml.safe_dump({"platforms": section}))
        for name, value in environ.items():
            monkeypatch.setenv(name, value)
        downloads = [a for a in HOST_ASSETS if a.key in METRIC_KEYS]
        config = {"ops": {a.op.name: {"config": {"sources_file": str(sources_file)}} for a in downloads}}
        resources = {"warehouse": WarehouseResource(database_url=fresh_db)}
        window = (date(2026, 11, 3), date(2026, 11, 5))  # partition 2026-11-05 and two days of look-back

        def stored(platform, source_column):
            return {(t, s, e, d): n for t, s, e, d, n in query(
                fresh_db, f"select tenant_id, {source_column}, episode_id, download_date, downloads "
                          f"from raw.{platform}_episode_downloads_daily")}

        def changed(result):
            return {m.asset_key.path[-1]: m.materialization.metadata["rows_inserted_or_changed"].value
                    for m in result.get_asset_materialization_events()}

        first = dg.materialize(downloads, resources=resources, partition_key="2026-11-05", run_config=config)
        before = platform_truth(network, *window)
        sim.apis.restate()
        second = dg.materialize(downloads, resources=resources, partition_key="2026-11-05", run_config=config)
        after = platform_truth(network, *window, revision=1)
    assert first.success and second.success
    for platform, source_column in (("buzzsprout", "podcast_id"), ("transistor", "show_id")):
        assert stored(platform, source_column) == after["downloads"][platform] != before["downloads"][platform]
        restated = {k for k, n in after["downloads"][platform].items() if before["downloads"][platform].get(k) != n}
        assert restated and {k[3] for k in restated} <= {date(2026, 11, 4), date(2026, 11, 5)}
        # Only the restated rows were written again.
        assert changed(second)[f"{platform}_episode_downloads_daily"] == {f"{platform}_downloads": len(restated)}


RECORD_SESSIONS = """
create table public.ddl_sessions (application_name text, object_identity text);
create function public.record_ddl_session() returns event_trigger language plpgsql as $$
declare
    command record;
begin
    for command in select * from pg_event_trigger_ddl_commands() loop
        insert into public.ddl_sessions values (current_setting('application_name'), command.object_identity);
    end loop;
end $$;
create event trigger record_ddl_session on ddl_command_end execute function public.record_ddl_session();
"""


def test_a_platform_asset_stores_in_sessions_named_for_it(fresh_db, clean_sim, tmp_path, monkeypatch):
    """The shows of a sync run on worker threads; the connections they take from the warehouse
    resource carry the asset's session name all the same (pg_stat_activity, the server log)."""
    section, environ = platform_sources(clean_sim.network, clean_sim.base_url, **FAST)
    sources_file = tmp_path / "sources.yaml"
    sources_file.write_text(yaml.safe_dump({"platforms": {"allow_private_hosts": True, "buzzsprout": section["buzzsprout"]}}))
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    with psycopg.connect(fresh_db, autocommit=True) as conn:
        conn.execute(RECORD_SESSIONS)
    [episodes] = [a for a in HOST_ASSETS if a.key == dg.AssetKey(["raw", "buzzsprout_episodes"])]
    result = dg.materialize([episodes], resources={"warehouse": WarehouseResource(database_url=fresh_db)},
                            run_config={"ops": {episodes.op.name: {"config": {"sources_file": str(sources_file)}}}})
    assert result.success
    shows = len(section["buzzsprout"]["shows"])
    sessions = query(fresh_db, "select application_name from public.ddl_sessions "
                               "where object_identity like '%stage_buzzsprout_episodes'")
    assert shows > 1 and sessions == [(f"podcast-analytics:{episodes.op.name}",)] * shows
