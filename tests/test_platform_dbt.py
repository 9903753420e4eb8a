"""Platform API data through dbt: staging per platform, one episode identity across feeds and
platforms (int_episodes_unified), platform ids in dim_episodes and fct_platform_metrics_daily,
compared with the simulator's ground truth in real PostgreSQL."""

import hashlib
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import psycopg
import pytest
from psycopg import sql

from assets.ingestion.megaphone_export import export_filesystem, load_export_day, scan_exports
from assets.ingestion.platforms.sync import PlatformSources, sync_platform
from assets.ingestion.rss_ingest import ingest_rss
from resources.warehouse import bootstrap, warehouse_at, with_database
from simulator.megaphone import write_megaphone_exports
from simulator.megaphone_api import megaphone_identity_truth
from simulator.listening import listening_identity_truth, listening_truth
from simulator.platform_hosts import PODBEAN_BUCKET
from simulator.platforms import episode_identity_truth, platform_sources, platform_truth
from simulator.server import SimulatorServer
from tests.conftest import query
from tests.test_downloads_incremental import dbt_build
from tests.test_platform_sync import FAST, TRANSISTOR_LIMIT, WINDOW
from tests.test_rss_ingest import sources_for as rss_sources_for

# The hosts whose episodes drift from the feed items (changed guids, re-prefixed URLs, ...).
PLATFORMS = ("buzzsprout", "transistor")
HOSTS = (*PLATFORMS, "podbean", "simplecast")
LISTENING = ("spotify", "apple")
ALL_PLATFORMS = (*HOSTS, *LISTENING)
# Megaphone's catalog comes from its API, its numbers from the delivery exports.
MODELLED = (*ALL_PLATFORMS, "megaphone")
METRICS = ("downloads", "streams", "starts", "plays", "listeners", "engaged_listeners", "seconds_listened")
# The platform models and everything upstream of them; not the access-log models.
SELECT = ("+dim_episodes", "+fct_platform_listener_engagement", "+int_platform_episodes_unmatched")


def feed_episode_id(tenant_id: str, feed_url: str, guid: str) -> str:
    """dim_episodes.episode_id of a feed item (stg_rss__episodes)."""
    return hashlib.md5(f"{tenant_id}|{feed_url}|{guid}".encode()).hexdigest()


def all_sources_for(sim: SimulatorServer, feeds_base_url: str) -> tuple[PlatformSources, dict[str, str]]:
    """Every platform's section for the simulator `sim`, with the listening platforms' shows
    configured with their feeds as served from `feeds_base_url`; Podbean's client paces itself
    to the simulator's (faster) leaky bucket."""
    section, environ = platform_sources(sim.network, sim.base_url, **FAST)
    section["transistor"]["per_page"] = 25
    section["podbean"].update(rate_limit_requests=PODBEAN_BUCKET[0],
                              rate_limit_seconds=PODBEAN_BUCKET[0] / PODBEAN_BUCKET[1])
    for platform in LISTENING:
        for show in section[platform]["shows"]:
            show["feed_url"] = feeds_base_url + show["feed_url"].removeprefix(sim.base_url)
    return PlatformSources.model_validate(section), environ


def load_megaphone_exports(url: str, network) -> dict[tuple, dict[str, int]]:
    """Write the network's Megaphone exports of the window (in memory) and load every day;
    returns what they hold per (tenant, network, podcast, episode, day)."""
    root = f"memory://platform-dbt-{uuid.uuid4().hex[:8]}"
    days = [WINDOW[0] + timedelta(days=i) for i in range((WINDOW[1] - WINDOW[0]).days + 1)]
    exported = write_megaphone_exports(network, root, days)
    fs, path = export_filesystem(root)
    with psycopg.connect(url, autocommit=True) as conn:
        for export in scan_exports(fs, path):
            load_export_day(conn, fs, export, "megaphone-1")
    return exported["metrics"]


@pytest.fixture(scope="module")
def warehouse(admin_url, network, simulator, truth, tmp_path_factory):
    """One database: feeds polled, every host and listening platform synced (side by side), the
    platform models built with dbt."""
    name = f"t_platform_dbt_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL("create database {}").format(sql.Identifier(name)))
    url = with_database(admin_url, name)
    try:
        bootstrap(url)
        with SimulatorServer(network, transistor_limit=TRANSISTOR_LIMIT) as apis:
            sources, environ = all_sources_for(apis, simulator.base_url)
            with ThreadPoolExecutor(3) as pool:
                runs = {p: pool.submit(sync_platform, warehouse_at(url), sources, p, "sync-1", *WINDOW, environ=environ)
                        for p in MODELLED}
                stats = {p: run.result() for p, run in runs.items()}
        assert not any(s.failed_sources for s in stats.values())
        ingest_rss(warehouse_at(url), rss_sources_for(truth), batch_id="rss-1")
        megaphone = load_megaphone_exports(url, network)
        target = str(tmp_path_factory.mktemp("dbt-target"))
        dbt_build(url, target, "--select", *SELECT, "--indirect-selection", "cautious")
        yield url, target, megaphone
    finally:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(name)))


@pytest.fixture(scope="module")
def every_identity(network, simulator):
    """Which feed item each episode of every platform modelled in dbt is."""
    return {**episode_identity_truth(network, simulator.base_url),
            **listening_identity_truth(network, simulator.base_url),
            **megaphone_identity_truth(network, simulator.base_url)}


@pytest.fixture(scope="module")
def identity(every_identity):
    """Which feed item each Buzzsprout and Transistor episode (the drifting hosts) is."""
    return {k: v for k, v in every_identity.items() if k[0] in PLATFORMS}


def resolved(url: str, platforms: tuple[str, ...] = PLATFORMS) -> dict[tuple[str, str, str], tuple]:
    return {(p, s, e): rest for p, s, e, *rest in query(url, """
        select platform, source_show_id, platform_episode_id, episode_id, match_method, match_confidence,
               unmatched_reason
        from intermediate.int_episodes_unified where platform = any(%s)""", (list(platforms),))}


def test_identity_resolution_matches_the_ground_truth(warehouse, identity):
    url, *_ = warehouse
    got = resolved(url)
    # No platform episode is lost or doubled: exactly the episodes the APIs list.
    assert set(got) == set(identity) and len(got) == len(identity) > 1500
    expected = {k: feed_episode_id(*v.feed_episode) if v.feed_episode else None for k, v in identity.items()}
    right = [k for k in identity if got[k][0] == expected[k]]
    wrong = {k: (got[k], identity[k]) for k in identity if got[k][0] != expected[k]}
    assert len(right) >= 0.99 * len(identity), list(wrong.items())[:10]
    # Also among the episodes that do have a feed item in the warehouse alone.
    matchable = [k for k, v in identity.items() if v.feed_episode]
    assert len(matchable) > 1000 and len(set(right) & set(matchable)) >= 0.99 * len(matchable)
    # Nothing is matched to a wrong feed episode; a miss can only be an episode left unmatched.
    assert all(got[k][0] is None for k in wrong)

    # The simulator's drift (changed guids, re-prefixed URLs, retitled and shifted episodes)
    # makes every kind of evidence count, each with its confidence.
    methods = Counter(v[1] for v in got.values())
    assert methods["guid"] > 1000 and methods["enclosure_url"] > 50 and methods["title_date"] > 10
    confidence = {m: {float(v[2]) for v in got.values() if v[1] == m} for m in methods}
    assert confidence["guid"] == {1.0} and confidence["enclosure_url"] == {0.95}
    assert confidence["title_date"] <= {0.9, 0.8} and confidence["unmatched"] == {0.0}


def test_every_unmatched_platform_episode_is_reported(warehouse, identity):
    url, *_ = warehouse
    got = resolved(url)
    planted = {k for k, v in identity.items() if v.kind == "api_only"}
    assert len(planted) >= 4
    assert all(got[k][1] == "unmatched" and got[k][0] is None for k in planted)
    listed = {(p, s, e): reason for p, s, e, reason in query(url, """
        select platform, source_show_id, platform_episode_id, unmatched_reason
        from intermediate.int_platform_episodes_unmatched where platform = any(%s)""", (list(PLATFORMS),))}
    assert set(listed) == {k for k, v in got.items() if v[1] == "unmatched"} >= planted
    # A private bonus episode (or a quarantined item) is simply not in the show's feed; a show whose
    # feed is quarantined has no feed to match at all.
    feedless_shows = {(p, s) for (p, s, _), v in identity.items() if v.kind == "feed_quarantined"}
    assert len(feedless_shows) >= 2
    assert listed == {(p, s, e): "show_not_found_in_feeds" if (p, s) in feedless_shows else "not_in_feed"
                      for (p, s, e) in listed}
    assert {listed[k] for k in planted} == {"not_in_feed", "show_not_found_in_feeds"}


def test_dim_episodes_carry_the_platform_ids(warehouse, every_identity):
    url, *_ = warehouse
    columns = sql.SQL(", ").join(sql.Identifier(f"{p}_episode_id") for p in MODELLED)
    rows = query(url, sql.SQL("select episode_id, platform_episode_ids, platforms, {} from marts.dim_episodes")
                 .format(columns))
    by_episode = {r[0]: r[1:] for r in rows}
    want: dict[str, dict[str, str]] = {}
    for (platform, _, episode_id), v in every_identity.items():
        if v.feed_episode:
            want.setdefault(feed_episode_id(*v.feed_episode), {})[platform] = episode_id
    for position, platform in enumerate(MODELLED, start=2):
        hosted = [e for e, ids in want.items() if platform in ids]
        hits = [e for e in hosted if by_episode[e][position] == want[e][platform]]
        assert len(hits) >= 0.99 * len(hosted) and len(hosted) > 150, platform
    complete = [e for e, ids in want.items() if by_episode[e][0] == ids]
    assert len(complete) >= 0.99 * len(want) and len(want) > 2000
    for e in complete[:50]:
        assert by_episode[e][1] == sorted(want[e])
    # Every usable feed item is on Spotify and Apple; the feed episodes no platform lists (items
    # the listening platforms' crawlers refuse) keep empty platform columns.
    assert all({"spotify", "apple"} <= set(ids) for ids in want.values())
    empty = [r for r in rows if r[0] not in want]
    assert all(r[1:] == ({}, [], *[None] * len(MODELLED)) for r in empty)
    assert len(empty) < 0.02 * len(rows)


@pytest.mark.parametrize(("platform", "evidence"), [
    ("podbean", "enclosure_url"), ("simplecast", "guid"), ("spotify", "title_date"), ("apple", "guid"),
    ("megaphone", "guid")])
def test_each_platform_resolves_to_its_feed_episodes(warehouse, every_identity, platform, evidence):
    """Podbean shows no guid (its media URL is the evidence), Simplecast, Apple and Megaphone's
    catalog show the feed's guid (Megaphone its own uid for a few, matched by media URL), Spotify
    only a name and a release date (title and date within the configured feed)."""
    url, *_ = warehouse
    truth = {k: v for k, v in every_identity.items() if k[0] == platform}
    got = resolved(url, (platform,))
    # Every platform episode is resolved exactly once: none lost, none doubled.
    listed = query(url, "select count(*) from intermediate.int_episodes_unified where platform = %s", (platform,))
    assert set(got) == set(truth) and listed[0][0] == len(truth) > 250
    expected = {k: feed_episode_id(*v.feed_episode) if v.feed_episode else None for k, v in truth.items()}
    wrong = [(k, got[k], truth[k]) for k in truth if got[k][0] != expected[k]]
    assert len(wrong) <= 0.01 * len(truth), wrong[:5]
    assert all(got[k][0] is None for k, _, _ in wrong)  # a miss is left unmatched, never matched wrongly
    matched = [v for v in got.values() if v[0] is not None]
    methods = Counter(v[1] for v in matched)
    assert methods.most_common(1)[0][0] == evidence and methods[evidence] >= 0.9 * len(matched) > 150
    # The unmatched are reported with the reason: the show's feed is not in the warehouse, or the
    # item is not in the feed.
    reasons = {"feed_quarantined": "show_not_found_in_feeds", "item_quarantined": "not_in_feed"}
    for k, v in truth.items():
        if v.kind in reasons:
            assert tuple(got[k][1:]) == ("unmatched", 0, reasons[v.kind]), (k, got[k])


def test_platform_metrics_equal_the_platform_truth(warehouse, network, every_identity):
    url, *_ = warehouse
    hosts, listening = platform_truth(network, *WINDOW), listening_truth(network, *WINDOW)
    want = {p: {k: {"downloads": n} for k, n in hosts["downloads"][p].items()} for p in HOSTS}
    want["spotify"] = {k: {m: v[m] for m in ("starts", "streams", "listeners")}
                       for k, v in listening["spotify_episode_metrics"].items()}
    want["apple"] = {k: {"plays": v["plays"], "listeners": v["listeners"], "engaged_listeners": v["engaged_listeners"],
                         "seconds_listened": v["time_listened_seconds"]}
                     for k, v in listening["apple_episode_metrics"].items()}
    rows = query(url, sql.SQL("""
        select platform, tenant_id, source_show_id, platform_episode_id, metric_date, unified_episode_id, episode_id, {}
        from marts.fct_platform_metrics_daily where platform = any(%s)""").format(
        sql.SQL(", ").join(map(sql.Identifier, METRICS))), (list(ALL_PLATFORMS),))
    got: dict[str, dict] = {p: {} for p in ALL_PLATFORMS}
    for platform, tenant, show, episode, day, unified, episode_id, *metrics in rows:
        # A platform's own metrics, and null for the ones it does not report.
        got[platform][(tenant, show, episode, day)] = {m: n for m, n in zip(METRICS, metrics) if n is not None}
        # Each row carries the unified episode: the dim_episodes id when matched, its own otherwise.
        feed = every_identity[(platform, show, episode)].feed_episode
        if episode_id is not None:
            assert unified == episode_id == feed_episode_id(*feed)
        else:
            assert unified is not None
    for platform in ALL_PLATFORMS:
        assert got[platform] == want[platform] and len(want[platform]) > 100, platform
    assert sum(sum(v["downloads"] for v in want[p].values()) for p in PLATFORMS) > 10_000
    # Engagement by platform: the same totals per platform and metric.
    engagement = query(url, sql.SQL("""
        select platform, {} from marts.fct_platform_listener_engagement where platform = any(%s) group by 1""").format(
        sql.SQL(", ").join(sql.SQL("sum({})").format(sql.Identifier(m)) for m in METRICS)), (list(ALL_PLATFORMS),))
    assert {p: {m: int(n) for m, n in zip(METRICS, totals) if n is not None} for p, *totals in engagement} == {
        p: dict(sum((Counter(v) for v in want[p].values()), Counter())) for p in ALL_PLATFORMS}


def test_reconciliation_test_catches_a_lost_metric_row(warehouse):
    url, target, _ = warehouse
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute("delete from marts.fct_platform_metrics_daily where platform_metric_id = "
                           "(select min(platform_metric_id) from marts.fct_platform_metrics_daily) returning *").fetchone()
        try:
            tested = dbt_build(url, target, "--select", "platform_metrics_reconcile_with_staging",
                               command="test", check=False)
        finally:
            placeholders = sql.SQL(", ").join([sql.Placeholder()] * len(row))
            conn.execute(sql.SQL("insert into marts.fct_platform_metrics_daily values ({})").format(placeholders), row)
    assert tested.returncode == 1 and "platform_metrics_reconcile_with_staging" in tested.stdout


def test_megaphone_episodes_resolve_to_their_feed_episodes(warehouse, every_identity):
    """Megaphone's exports name episodes by id only; its catalog (the same ids, with guid, title,
    date and media URL) matches them to feed items, and the exports' numbers reach the fact
    unchanged under the feed episode."""
    url, _, exported = warehouse
    truth = {k: v for k, v in every_identity.items() if k[0] == "megaphone"}
    expected = {k[1:]: feed_episode_id(*v.feed_episode) if v.feed_episode else None for k, v in truth.items()}
    got = {(t, s, e, d): (n, listeners, unified, episode_id, method) for t, s, e, d, n, listeners, unified, episode_id, method
           in query(url, """
        select tenant_id, source_show_id, platform_episode_id, metric_date, downloads, listeners, unified_episode_id,
               episode_id, match_method
        from marts.fct_platform_metrics_daily where platform = 'megaphone'""")}
    assert {k: v[:2] for k, v in got.items()} == {
        (t, p, e, d): (m["downloads"], m["unique_listeners"]) for (t, _, p, e, d), m in exported.items()}
    assert len(got) > 40 and sum(v[0] for v in got.values()) > 500
    # Each day's numbers carry the feed episode its episode is (its own unified id when unmatched).
    right = [k for k, v in got.items() if v[3] == expected[k[1:3]]]
    assert len(right) >= 0.99 * len(got) and all(v[2] is not None for v in got.values())
    assert all(v[2] == v[3] for v in got.values() if v[3] is not None)
    matched = [k for k, v in got.items() if v[3] is not None]
    assert len(matched) >= 0.5 * len(got) and all(got[k][4] in ("guid", "enclosure_url") for k in matched)
    # The episodes: at least 99 % resolve to the feed episode they are; misses are left unmatched.
    resolved_now = resolved(url, ("megaphone",))
    assert set(resolved_now) == set(truth) and len(truth) > 250
    wrong = [k for k in truth if resolved_now[k][0] != expected[k[1:]]]
    assert len(wrong) <= 0.01 * len(truth) and all(resolved_now[k][0] is None for k in wrong)
    matchable = [k for k, v in truth.items() if v.feed_episode]
    assert len(matchable) > 150 and sum(resolved_now[k][0] == expected[k[1:]] for k in matchable) >= 0.99 * len(matchable)
    # Only episodes whose feed (or item) is not in the warehouse stay unmatched, with the reason.
    unmatched = {tuple(r[:3]): r[3] for r in query(url, """
        select platform, source_show_id, platform_episode_id, unmatched_reason
        from intermediate.int_platform_episodes_unmatched where platform = 'megaphone'""")}
    reasons = {"feed_quarantined": "show_not_found_in_feeds", "item_quarantined": "not_in_feed"}
    assert unmatched == {k: reasons[v.kind] for k, v in truth.items() if v.kind in reasons}
    assert "no_episode_details" not in unmatched.values()
