"""Spotify for Creators- and Apple Podcasts Connect-shaped analytics served by the simulator,
synced into real PostgreSQL: a clean sync equals the ground truth, late days are replaced by the
next partition's look-back window, and a sync under 20 % faults ends with the clean data."""

from datetime import date

import dagster as dg
import psycopg
import pytest
import yaml
from psycopg import sql

from assets.ingestion.platforms.apple import AppleClient
from assets.ingestion.platforms.assets import PLATFORM_ASSETS
from assets.ingestion.platforms.listening import bearer_api
from assets.ingestion.platforms.spotify import SpotifyClient
from assets.ingestion.platforms.sync import PlatformSources, sync_platform
from resources.platform_http import ApiError, ApiPolicy, Secret
from resources.warehouse import WarehouseResource, warehouse_at
from simulator.listening import AGE_BUCKETS, GENDERS, listening_shows, listening_token, listening_truth
from simulator.network import build_network
from simulator.platforms import platform_sources
from simulator.server import SimulatorServer
from tests.conftest import query

# The platforms' "today" is 2026-11-05: that day is not reported yet and 11-04 is partial.
WINDOW = (date(2026, 11, 2), date(2026, 11, 5))
FAST = {"timeout_seconds": 0.4, "wait_initial_seconds": 0.02, "concurrency": 8}
PLATFORMS = ("spotify", "apple")
TABLES = {
    "raw.spotify_episodes": "tenant_id, show_id, episode_id",
    "raw.spotify_episode_metrics_daily": "tenant_id, show_id, episode_id, metric_date",
    "raw.spotify_show_metrics_daily": "tenant_id, show_id, metric_date",
    "raw.spotify_show_demographics_daily": "tenant_id, show_id, metric_date, age_bucket, gender",
    "raw.apple_episodes": "tenant_id, show_id, episode_id",
    "raw.apple_episode_metrics_daily": "tenant_id, show_id, episode_id, metric_date",
    "raw.apple_show_followers_daily": "tenant_id, show_id, metric_date",
    "quarantine.platform_records": "platform, tenant_id, source_id, stream, record_key, reason_code",
}
def sync_all(url: str, sim: SimulatorServer, batch_id: str, window=WINDOW) -> dict:
    section, environ = platform_sources(sim.network, sim.base_url, **FAST)
    sources = PlatformSources.model_validate(section)
    return {p: sync_platform(warehouse_at(url), sources, p, batch_id, *window, environ=environ) for p in PLATFORMS}


def snapshot(url: str) -> dict[str, list[tuple]]:
    out = {}
    with psycopg.connect(url) as conn:
        for table, key in TABLES.items():
            schema, name = table.split(".")
            columns = [r[0] for r in conn.execute(
                "select column_name from information_schema.columns where table_schema = %s and table_name = %s "
                # feed_url names the simulator's port, which differs between simulators
                "and column_name not in ('_ingested_at', '_batch_id', 'feed_url') order by ordinal_position",
                (schema, name))]
            out[table] = conn.execute(sql.SQL("select {} from {} where {} order by {}").format(
                sql.SQL(", ").join(map(sql.Identifier, columns)), sql.Identifier(schema, name),
                sql.SQL("platform = any(%s)" if schema == "quarantine" else "true"), sql.SQL(key)),
                (list(PLATFORMS),) if schema == "quarantine" else None).fetchall()
    return out


def stored_metrics(url: str) -> dict[str, dict]:
    """The metric tables keyed like `listening_truth`."""
    spotify_episodes = {(t, s, e, d): {"starts": a, "streams": b, "listeners": c, "median_completion_percentage": p,
                                       "median_completion_seconds": q}
                        for t, s, e, d, a, b, c, p, q in query(url, (
                            "select tenant_id, show_id, episode_id, metric_date, starts, streams, listeners, "
                            "median_completion_percentage, median_completion_seconds "
                            "from raw.spotify_episode_metrics_daily"))}
    return {
        "spotify_episode_metrics": spotify_episodes,
        "spotify_show_metrics": {(t, s, d): {"starts": a, "streams": b, "listeners": c, "followers": f}
                                 for t, s, d, a, b, c, f in query(url, (
                                     "select tenant_id, show_id, metric_date, starts, streams, listeners, followers "
                                     "from raw.spotify_show_metrics_daily"))},
        "spotify_demographics": {(t, s, d, a, g): n for t, s, d, a, g, n in query(url, (
            "select tenant_id, show_id, metric_date, age_bucket, gender, listeners "
            "from raw.spotify_show_demographics_daily"))},
        "apple_episode_metrics": {(t, s, e, d): {"plays": a, "listeners": b, "engaged_listeners": c,
                                                 "time_listened_seconds": x}
                                  for t, s, e, d, a, b, c, x in query(url, (
                                      "select tenant_id, show_id, episode_id, metric_date, plays, listeners, "
                                      "engaged_listeners, time_listened_seconds from raw.apple_episode_metrics_daily"))},
        "apple_show_followers": {(t, s, d): (f, g, lost) for t, s, d, f, g, lost in query(url, (
            "select tenant_id, show_id, metric_date, followers, followers_gained, followers_lost "
            "from raw.apple_show_followers_daily"))},
    }


@pytest.fixture(scope="module")
def network():
    """A third of the session's network (12 shows): the shared store writes row by row."""
    return build_network(seed=7, tenants=3, shows_per_tenant=4, episodes_per_show=(30, 70))


@pytest.fixture(scope="module")
def clean_sim(network):
    with SimulatorServer(network) as server:
        yield server


@pytest.fixture(scope="module")
def clean(new_warehouse, clean_sim):
    url = new_warehouse("t_listening")
    stats = sync_all(url, clean_sim, "clean-1")
    yield url, stats, snapshot(url)


def test_clean_sync_matches_ground_truth(clean, network):
    url, stats, _ = clean
    truth = listening_truth(network, *WINDOW)
    assert not stats["spotify"].failed_sources and not stats["apple"].failed_sources
    stored = stored_metrics(url)
    for name in ("spotify_episode_metrics", "spotify_show_metrics", "spotify_demographics", "apple_episode_metrics",
                 "apple_show_followers"):
        assert stored[name] == truth[name], name
    # Every show of the network is on both platforms; 11-05 is not reported yet, 11-04 only partly.
    assert len({k[:2] for k in stored["spotify_show_metrics"]}) == len(network.shows) == 12
    assert {k[2] for k in stored["spotify_show_metrics"]} == {date(2026, 11, 2), date(2026, 11, 3), date(2026, 11, 4)}
    assert 100 < len(stored["spotify_episode_metrics"]) < 1000 and len(stored["apple_episode_metrics"]) > 100
    assert len(stored["spotify_demographics"]) == 12 * 3 * len(AGE_BUCKETS) * len(GENDERS)
    shares = query(url, "select metric_date, show_id, sum(share) from raw.spotify_show_demographics_daily group by 1, 2")
    assert all(abs(float(total) - 1) < 1e-4 for _, _, total in shares)
    # Planted bad records are quarantined, one row each, with their reason.
    quarantined = query(url, "select platform, stream, record_date, reason_code, count(*) from quarantine.platform_records "
                             "group by 1, 2, 3, 4")
    assert {(p, s, d): n for p, s, d, _, n in quarantined} == dict(truth["quarantined"])
    assert {r for _, _, _, r, _ in quarantined} == {"invalid_count"} and sum(truth["quarantined"].values()) >= 3


def test_episodes_map_back_to_the_feed(clean, network):
    url, _, _ = clean
    truth = listening_truth(network, *WINDOW)
    spotify = {(t, s, e): (n, d) for t, s, e, n, d in query(
        url, "select tenant_id, show_id, episode_id, name, release_date from raw.spotify_episodes")}
    apple = {(t, s, e): g for t, s, e, g in query(url, "select tenant_id, show_id, episode_id, guid from raw.apple_episodes")}
    assert spotify == truth["spotify_episodes"] and len(spotify) > 500
    assert apple == truth["apple_episodes"] and len(apple) == len(spotify)
    # Spotify ids are base62, Apple ids numeric; the feed URL travels with every episode.
    assert all(len(e) == 22 and e.isalnum() for _, _, e in spotify) and all(e.isdigit() for _, _, e in apple)
    feed_items = {(s.tenant_id, ep.guid) for s in network.shows for ep in s.episodes if ep.guid}
    assert sum((t, g) in feed_items for (t, _, _), g in apple.items()) >= 0.98 * len(apple)
    feeds = query(url, "select distinct show_id, feed_url, show_name from raw.apple_episodes")
    by_id = {s.show_id: s.show for s in listening_shows(network, "apple")}
    assert len(feeds) == 12 and all(f.endswith(by_id[i].path) and n == by_id[i].title for i, f, n in feeds)


def test_rerun_changes_nothing(clean, clean_sim):
    url, _, before = clean
    again = sync_all(url, clean_sim, "clean-2")
    assert sum(sum(s.rows_written.values()) for s in again.values()) == 0
    assert sum(sum(s.rows_seen.values()) for s in again.values()) > 2000
    assert snapshot(url) == before


def test_sync_under_20_percent_faults_ends_with_the_data_of_a_clean_sync(new_warehouse, network, clean):
    url = new_warehouse("t_listening")
    with SimulatorServer(network, api_faults=0.2, api_fault_seed=5, api_retry_after=0, api_hang_seconds=0.6) as sim:
        stats = sync_all(url, sim, "faulty-1")
        served = dict(sim.apis.faults_served)
    assert not stats["spotify"].failed_sources and not stats["apple"].failed_sources
    assert snapshot(url) == clean[2]
    assert sum(served.values()) > 50
    assert {"http_429", "timeout", "invalid_json"} <= set(stats["spotify"].retries) | set(stats["apple"].retries)


def test_late_days_are_replaced_by_the_next_partitions_lookback(fresh_db, network, tmp_path, monkeypatch):
    keys = {dg.AssetKey(["raw", t]) for t in ("spotify_episode_metrics_daily", "spotify_show_metrics_daily",
                                              "spotify_show_demographics_daily", "apple_episode_metrics_daily",
                                              "apple_show_followers_daily")}
    assets = [a for a in PLATFORM_ASSETS if a.key in keys]
    resources = {"warehouse": WarehouseResource(database_url=fresh_db)}
    with SimulatorServer(network) as sim:
        section, environ = platform_sources(network, sim.base_url, **FAST)  # look-back: the default 3 days
        sources_file = tmp_path / "sources.yaml"
        sources_file.write_text(yaml.safe_dump({"platforms": {p: section[p] for p in ("allow_private_hosts", *PLATFORMS)}}))
        for name, value in environ.items():
            monkeypatch.setenv(name, value)
        config = {"ops": {a.op.name: {"config": {"sources_file": str(sources_file)}} for a in assets}}
        first = dg.materialize(assets, resources=resources, partition_key="2026-11-04", run_config=config)
        after_first = stored_metrics(fresh_db)
        sim.apis.restate()  # a day later: 11-04 is final, 11-05 partial
        second = dg.materialize(assets, resources=resources, partition_key="2026-11-05", run_config=config)
    assert first.success and second.success
    windows = {m.asset_key.path[-1]: m.materialization.metadata["window"].value
               for m in second.get_asset_materialization_events()}
    assert set(windows.values()) == {"2026-11-02..2026-11-05"}
    assert after_first == {k: v for k, v in listening_truth(network, date(2026, 11, 1), date(2026, 11, 4)).items()
                           if k in after_first}
    truth = listening_truth(network, date(2026, 11, 1), date(2026, 11, 5), revision=1)
    stored = stored_metrics(fresh_db)
    for name, rows in stored.items():
        assert rows == truth[name], name
        # The partial day was replaced, the missing day arrived, and earlier days stayed as they were.
        assert {k for k in rows if rows[k] != after_first[name].get(k)} <= {k for k in rows if date(2026, 11, 4) in k
                                                                             or date(2026, 11, 5) in k}
    partial = {k: v for k, v in after_first["apple_episode_metrics"].items() if k[3] == date(2026, 11, 4)}
    assert partial and all(stored["apple_episode_metrics"][k]["plays"] > v["plays"] for k, v in partial.items()
                           if stored["apple_episode_metrics"][k]["plays"] > 1)
    assert any(k[2] == date(2026, 11, 5) for k in stored["spotify_show_metrics"])
    counts = dict(query(fresh_db, "select metric_date, count(*) from raw.spotify_show_metrics_daily group by 1"))
    assert counts == {date(2026, 11, d): 12 for d in range(1, 6)}  # one row per show and day: no duplicates


def test_expired_credentials_fail_without_showing_the_token(clean_sim):
    network = clean_sim.network
    spotify_show = listening_shows(network, "spotify")[0]
    apple_show = listening_shows(network, "apple")[0]
    policy = ApiPolicy(allow_private_hosts=True, timeout_seconds=2)
    good = Secret(listening_token(network.seed, "apple", apple_show.tenant_id))
    with bearer_api(f"{clean_sim.base_url}/apple/pcc/v1/analytics", good, policy) as api:
        trends = AppleClient(api, apple_show.show_id).follower_trends(date(2026, 11, 1), date(2026, 11, 5))
    assert [len(trends[k]) for k in ("followerAllTimeTrends", "followerGrowthTrends")] == [4, 4]
    for base, client in ((f"{clean_sim.base_url}/apple/pcc/v1/analytics", lambda api: AppleClient(api, apple_show.show_id)),
                         (f"{clean_sim.base_url}/spotify/podcasters/v0", lambda api: SpotifyClient(api, spotify_show.show_id))):
        with bearer_api(base, Secret("expired-session-7731"), policy) as api:
            with pytest.raises(ApiError) as denied:
                client(api).follower_trends(date(2026, 11, 1), date(2026, 11, 2)) if "apple" in base \
                    else next(client(api).episodes())
        assert denied.value.code in ("http_302", "http_401") and "expired-session" not in str(denied.value)
        assert api.stats.requests == 1  # an auth failure is final: no retries


def test_interrupted_sync_resumes_without_duplicates_or_gaps(new_warehouse, clean_sim, clean):
    url = new_warehouse("t_listening")

    class Crash(Exception):
        pass

    def crash_after(limit):
        stored = {"units": 0, "crashed": False}

        def checkpoint(stream, cursor):
            stored["units"] += 1
            # The first crash lands mid-stream; then every show stops after the unit it is storing.
            if stored["crashed"] or (stored["units"] >= limit and not cursor["complete"]):
                stored["crashed"] = True
                raise Crash(f"stopped after {stored['units']} units in {stream}")
        return checkpoint

    section, environ = platform_sources(clean_sim.network, clean_sim.base_url, **{**FAST, "concurrency": 3})
    sources = PlatformSources.model_validate(section)
    clean_units = {p: clean[1][p].units for p in PLATFORMS}
    first = {p: sync_platform(warehouse_at(url), sources, p, "cut-1", *WINDOW, environ=environ,
                              checkpoint=crash_after(clean_units[p] // 2 + 1)) for p in PLATFORMS}
    for platform in PLATFORMS:
        assert 0 < len(first[platform].failed_sources) < len(getattr(sources, platform).shows)
    partial = snapshot(url)
    assert 0 < len(partial["raw.spotify_episode_metrics_daily"]) < len(clean[2]["raw.spotify_episode_metrics_daily"])
    # The retry of the same sync picks up where each stream stopped: every unit stored exactly once.
    resumed = {p: sync_platform(warehouse_at(url), sources, p, "cut-1", *WINDOW, environ=environ) for p in PLATFORMS}
    for platform in PLATFORMS:
        assert not resumed[platform].failed_sources and resumed[platform].resumed >= 1
        assert first[platform].units + resumed[platform].units == clean_units[platform]
    assert snapshot(url) == clean[2]
