"""Platform API data through dbt: staging per platform, one episode identity across feeds and
platforms (int_episodes_unified), platform ids in dim_episodes and fct_platform_metrics_daily,
compared with the simulator's ground truth in real PostgreSQL."""

import hashlib
import uuid
from collections import Counter

import psycopg
import pytest
from psycopg import sql

from assets.ingestion.platforms.sync import sync_platform
from assets.ingestion.rss_ingest import ingest_rss
from resources.warehouse import bootstrap, with_database
from simulator.platforms import episode_identity_truth, platform_truth
from simulator.server import SimulatorServer
from tests.conftest import query
from tests.test_downloads_incremental import dbt_build
from tests.test_platform_sync import TRANSISTOR_LIMIT, WINDOW, sources_for
from tests.test_rss_ingest import sources_for as rss_sources_for

PLATFORMS = ("buzzsprout", "transistor")
# The platform models and everything upstream of them; not the access-log models.
SELECT = ("+dim_episodes", "+fct_platform_listener_engagement", "+int_platform_episodes_unmatched")


def feed_episode_id(tenant_id: str, feed_url: str, guid: str) -> str:
    """dim_episodes.episode_id of a feed item (stg_rss__episodes)."""
    return hashlib.md5(f"{tenant_id}|{feed_url}|{guid}".encode()).hexdigest()


@pytest.fixture(scope="module")
def warehouse(admin_url, network, simulator, truth, tmp_path_factory):
    """One database: feeds polled, both platforms synced, the platform models built with dbt."""
    name = f"t_platform_dbt_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL("create database {}").format(sql.Identifier(name)))
    url = with_database(admin_url, name)
    try:
        bootstrap(url)
        with SimulatorServer(network, transistor_limit=TRANSISTOR_LIMIT) as apis:
            sources, environ = sources_for(apis)
            stats = {p: sync_platform(url, sources, p, "sync-1", *WINDOW, environ=environ) for p in PLATFORMS}
        assert not any(s.failed_sources for s in stats.values())
        ingest_rss(url, rss_sources_for(truth), batch_id="rss-1")
        target = str(tmp_path_factory.mktemp("dbt-target"))
        dbt_build(url, target, "--select", *SELECT, "--indirect-selection", "cautious")
        yield url, target
    finally:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(name)))


@pytest.fixture(scope="module")
def identity(network, simulator):
    """Which feed item each Buzzsprout and Transistor episode is (the platforms modelled in dbt)."""
    return {k: v for k, v in episode_identity_truth(network, simulator.base_url).items() if k[0] in PLATFORMS}


def resolved(url: str) -> dict[tuple[str, str, str], tuple]:
    return {(p, s, e): rest for p, s, e, *rest in query(url, """
        select platform, source_show_id, platform_episode_id, episode_id, match_method, match_confidence,
               unmatched_reason
        from intermediate.int_episodes_unified""")}


def test_identity_resolution_matches_the_ground_truth(warehouse, identity):
    url, _ = warehouse
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
    url, _ = warehouse
    got = resolved(url)
    planted = {k for k, v in identity.items() if v.kind == "api_only"}
    assert len(planted) >= 4
    assert all(got[k][1] == "unmatched" and got[k][0] is None for k in planted)
    listed = {(p, s, e): reason for p, s, e, reason in query(url, """
        select platform, source_show_id, platform_episode_id, unmatched_reason
        from intermediate.int_platform_episodes_unmatched""")}
    assert set(listed) == {k for k, v in got.items() if v[1] == "unmatched"} >= planted
    # A private bonus episode (or a quarantined item) is simply not in the show's feed; a show whose
    # feed is quarantined has no feed to match at all.
    feedless_shows = {(p, s) for (p, s, _), v in identity.items() if v.kind == "feed_quarantined"}
    assert len(feedless_shows) >= 2
    assert listed == {(p, s, e): "show_not_found_in_feeds" if (p, s) in feedless_shows else "not_in_feed"
                      for (p, s, e) in listed}
    assert {listed[k] for k in planted} == {"not_in_feed", "show_not_found_in_feeds"}


def test_dim_episodes_carry_the_platform_ids(warehouse, identity):
    url, _ = warehouse
    rows = query(url, """
        select episode_id, buzzsprout_episode_id, transistor_episode_id, platform_episode_ids, platforms
        from marts.dim_episodes""")
    by_episode = {r[0]: r[1:] for r in rows}
    want: dict[str, dict[str, str]] = {}
    for (platform, _, episode_id), v in identity.items():
        if v.feed_episode:
            want.setdefault(feed_episode_id(*v.feed_episode), {})[platform] = episode_id
    hits = [e for e, ids in want.items()
            if by_episode[e][0] == ids.get("buzzsprout") and by_episode[e][1] == ids.get("transistor")]
    assert len(hits) >= 0.99 * len(want) and len(want) > 1000
    for e in hits[:50]:
        assert by_episode[e][2] == want[e] and by_episode[e][3] == sorted(want[e])
    # Feed episodes no platform hosts keep empty platform columns.
    assert sum(1 for r in rows if r[0] not in want and r[1:] == (None, None, {}, [])) == len(rows) - len(want) > 300


def test_platform_metrics_equal_the_platform_truth(warehouse, network, identity):
    url, _ = warehouse
    truth = platform_truth(network, *WINDOW)
    for platform in PLATFORMS:
        got = {(t, s, e, d): n for t, s, e, d, n in query(url, """
            select tenant_id, source_show_id, platform_episode_id, metric_date, downloads
            from marts.fct_platform_metrics_daily where platform = %s""", (platform,))}
        assert got == truth["downloads"][platform] and sum(got.values()) > 10_000
    # Each row carries the unified episode: the dim_episodes id when matched, its own otherwise.
    rows = query(url, """
        select platform, source_show_id, platform_episode_id, unified_episode_id, episode_id, streams, plays
        from marts.fct_platform_metrics_daily""")
    for platform, show, episode, unified, episode_id, streams, plays in rows:
        feed = identity[(platform, show, episode)].feed_episode
        if episode_id is not None:
            assert unified == episode_id == feed_episode_id(*feed)
        assert streams is None and plays is None  # hosts report downloads only
    engagement = dict(query(url, "select platform, sum(downloads) from marts.fct_platform_listener_engagement group by 1"))
    assert {p: int(n) for p, n in engagement.items()} == {
        p: sum(truth["downloads"][p].values()) for p in PLATFORMS}


def test_reconciliation_test_catches_a_lost_metric_row(warehouse):
    url, target = warehouse
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
