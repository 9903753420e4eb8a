"""Podbean- and Simplecast-shaped APIs served by the simulator, synced into real PostgreSQL: a
clean sync against the ground truth, a sync under faults (expired tokens included), an
interrupted sync, tokens that expire or rotate mid-sync, the leaky bucket, and credentials."""

import json
import logging
import time
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from datetime import date

import httpx
import psycopg
import pytest
from psycopg import sql

from assets.ingestion.platforms.podbean import PodbeanClient, podbean_api
from assets.ingestion.platforms.sync import PlatformSources, sync_platform
from resources.platform_http import ApiError, ApiPolicy, Secret
from resources.warehouse import warehouse_at
from simulator.platform_hosts import HOST_FAULT_KINDS, podbean_client_id
from simulator.platforms import api_token, hosted_shows, platform_sources, platform_truth
from simulator.server import SimulatorServer
from tests.conftest import query

HOSTS = ("podbean", "simplecast")
WINDOW = (date(2026, 10, 31), date(2026, 11, 1))
BUCKET = (60, 300.0)  # Podbean's 60 beans, leaking 150 times faster than its 2 per second
FAST = {"timeout_seconds": 0.4, "wait_initial_seconds": 0.02}
TABLES = {
    "raw.podbean_episodes": "tenant_id, podcast_id, episode_id",
    "raw.podbean_episode_downloads_daily": "tenant_id, podcast_id, episode_id, download_date",
    "raw.simplecast_episodes": "tenant_id, podcast_id, episode_id",
    "raw.simplecast_episode_ad_markers": "tenant_id, podcast_id, episode_id, marker_id",
    "raw.simplecast_episode_downloads_daily": "tenant_id, podcast_id, episode_id, download_date",
    "raw.simplecast_episode_locations": "tenant_id, podcast_id, episode_id, download_date, country_code",
    "raw.simplecast_episode_technology": "tenant_id, podcast_id, episode_id, download_date, dimension, name",
    "quarantine.platform_records": "platform, tenant_id, source_id, stream, record_key, reason_code",
}


def sources_for(sim: SimulatorServer, **options) -> tuple[PlatformSources, dict[str, str]]:
    section, environ = platform_sources(sim.network, sim.base_url, **{**FAST, **options})
    section["podbean"].update(rate_limit_requests=60, rate_limit_seconds=60 / BUCKET[1])
    return PlatformSources.model_validate(section), environ


def sync_hosts(url: str, sim: SimulatorServer, batch_id: str) -> dict:
    """Both platforms, side by side (as their Dagster assets run)."""
    sources, environ = sources_for(sim)
    with ThreadPoolExecutor(len(HOSTS)) as pool:
        runs = {p: pool.submit(sync_platform, warehouse_at(url), sources, p, batch_id, *WINDOW, environ=environ) for p in HOSTS}
    return {p: run.result() for p, run in runs.items()}


def snapshot(url: str) -> dict[str, list[tuple]]:
    """Every row of the tables, ordered by key, without load bookkeeping."""
    out = {}
    with psycopg.connect(url) as conn:
        for table, key in TABLES.items():
            schema, name = table.split(".")
            columns = [r[0] for r in conn.execute(
                "select column_name from information_schema.columns where table_schema = %s and table_name = %s "
                "and column_name not in ('_ingested_at', '_batch_id') order by ordinal_position",
                (schema, name)).fetchall()]
            where = sql.SQL("where platform in ('podbean', 'simplecast')" if schema == "quarantine" else "")
            # Simplecast's episode payload links to the simulator that served it (its port).
            selected = [sql.SQL("payload - 'href'") if c == "payload" else sql.Identifier(c) for c in columns]
            out[table] = conn.execute(sql.SQL("select {} from {} {} order by {}").format(
                sql.SQL(", ").join(selected), sql.Identifier(schema, name), where, sql.SQL(key))).fetchall()
    return out


def accounts(network, platform: str) -> set[str]:
    return {h.tenant_id for h in hosted_shows(network) if h.platform == platform}


@pytest.fixture(scope="module")
def clean_sim(network):
    with SimulatorServer(network, podbean_bucket=BUCKET) as server:
        yield server


@pytest.fixture(scope="module")
def clean(new_warehouse, clean_sim):
    """One database synced once from the fault-free simulator: the reference for other tests."""
    url = new_warehouse("t_hosts")
    before = Counter(clean_sim.apis.hosts.tokens_issued)
    stats = sync_hosts(url, clean_sim, "clean-1")
    tokens = Counter(clean_sim.apis.hosts.tokens_issued)
    tokens.subtract(before)
    yield url, stats, snapshot(url), +tokens


def test_clean_sync_matches_ground_truth(clean, network, clean_sim):
    url, stats, _, tokens = clean
    truth = platform_truth(network, *WINDOW)
    for platform in HOSTS:
        assert not stats[platform].failed_sources
        downloads = {(t, s, e, d): n for t, s, e, d, n in query(
            url, f"select tenant_id, podcast_id, episode_id, download_date, downloads "
                 f"from raw.{platform}_episode_downloads_daily")}
        assert len(downloads) > 500 and downloads == truth["downloads"][platform]
        quarantined = {(t, s, d): n for t, s, d, n in query(
            url, "select tenant_id, source_id, record_date, count(*) from quarantine.platform_records "
                 "where platform = %s group by 1, 2, 3", (platform,))}
        assert quarantined and quarantined == dict(truth["quarantined"][platform])
    # Podbean lists no guids: its episodes are the truth's ids with the feed's enclosures.
    podbean = set(query(url, "select tenant_id, podcast_id, episode_id, media_url from raw.podbean_episodes"))
    assert len(podbean) > 300 and podbean == {
        (h.tenant_id, h.source_id, e.episode_id, e.audio_url) for h in hosted_shows(network) if h.platform == "podbean"
        for e in h.episodes}
    simplecast = set(query(url, "select tenant_id, podcast_id, episode_id, guid from raw.simplecast_episodes"))
    assert len(simplecast) > 300 and simplecast == truth["episodes"]["simplecast"]
    feed_items = {(s.tenant_id, e.guid): e.enclosure_url for s in network.shows for e in s.episodes
                  if e.guid and e.defect != "duplicate_guid"}
    enclosures = query(url, "select tenant_id, guid, enclosure_url from raw.simplecast_episodes")
    matched = [r for r in enclosures if (r[0], r[1]) in feed_items]
    assert len(matched) >= 0.98 * len(enclosures) and all(feed_items[(t, g)] == u for t, g, u in matched)
    for table, kind in (("locations", "country_code"), ("technology", "dimension, name")):
        rows = query(url, f"select tenant_id, podcast_id, episode_id, download_date, {kind}, downloads "
                          f"from raw.simplecast_episode_{table}")
        assert len(rows) > 600 and {r[:-1]: r[-1] for r in rows} == truth[table]["simplecast"]
    markers = {r[:4]: (r[4], r[5]) for r in query(
        url, "select tenant_id, podcast_id, episode_id, marker_id, ad_type, offset_seconds "
             "from raw.simplecast_episode_ad_markers")}
    assert len(markers) > 600 and markers == truth["ad_markers"]["simplecast"]
    # Every day's breakdowns add up to that day's downloads.
    by_country = defaultdict(int)
    for t, s, e, d, n in query(url, "select tenant_id, podcast_id, episode_id, download_date, downloads "
                                    "from raw.simplecast_episode_locations"):
        by_country[(t, s, e, d)] += n
    assert {k: n for k, n in truth["downloads"]["simplecast"].items() if n} == dict(by_country)
    # One token per Podbean account: none expired during the sync.
    assert tokens == Counter({t: 1 for t in accounts(network, "podbean")})
    assert clean_sim.apis.hosts.expired_refusals["podbean"] == 0


def test_sync_under_20_percent_faults_ends_with_the_data_of_a_clean_sync(new_warehouse, network, clean):
    url = new_warehouse("t_hosts")
    with SimulatorServer(network, podbean_bucket=BUCKET, api_faults=0.2, api_fault_seed=5, api_retry_after=0,
                         api_hang_seconds=0.6) as sim:
        stats = sync_hosts(url, sim, "faulty-1")
        served, tokens = dict(sim.apis.faults_served), sum(sim.apis.hosts.tokens_issued.values())
    assert not stats["podbean"].failed_sources and not stats["simplecast"].failed_sources
    assert snapshot(url) == clean[2]
    assert set(served) == set(HOST_FAULT_KINDS) and served["expired_token"] >= 5
    retried = stats["podbean"].retries + stats["simplecast"].retries
    assert {"http_429", "http_503", "timeout", "invalid_json"} <= set(retried)
    # Expired tokens were renewed, not retried: they are no failure, and Podbean issued new ones.
    assert not any("401" in reason for reason in retried)
    assert tokens > len(accounts(network, "podbean"))


def test_interrupted_sync_resumes_without_duplicates_or_gaps(new_warehouse, clean_sim, clean):
    url = new_warehouse("t_hosts")

    class Crash(Exception):
        pass

    def crash_after(limit):
        stored = {"units": 0, "crashed": False}

        def checkpoint(stream, cursor):
            stored["units"] += 1
            if stored["crashed"] or (stored["units"] >= limit and not cursor["complete"]):
                stored["crashed"] = True
                raise Crash(f"stopped after {stored['units']} units in {stream}")
        return checkpoint

    sources, environ = sources_for(clean_sim, concurrency=1)
    clean_units = {p: clean[1][p].units for p in HOSTS}
    first = {p: sync_platform(warehouse_at(url), sources, p, "cut-1", *WINDOW, environ=environ,
                              checkpoint=crash_after(clean_units[p] // 2 + 1)) for p in HOSTS}
    partial = snapshot(url)
    for platform in HOSTS:
        assert 0 < len(first[platform].failed_sources) < len(getattr(sources, platform).shows)
    assert 0 < len(partial["raw.podbean_episode_downloads_daily"]) < len(clean[2]["raw.podbean_episode_downloads_daily"])
    assert 0 < len(partial["raw.simplecast_episode_locations"]) < len(clean[2]["raw.simplecast_episode_locations"])

    resumed = {p: sync_platform(warehouse_at(url), sources, p, "cut-1", *WINDOW, environ=environ) for p in HOSTS}
    for platform in HOSTS:
        assert not resumed[platform].failed_sources and resumed[platform].resumed >= 1
        assert first[platform].units + resumed[platform].units == clean_units[platform]
    assert snapshot(url) == clean[2]


def test_a_podbean_token_that_expires_mid_sync_is_renewed(new_warehouse, network, clean):
    url = new_warehouse("t_hosts")
    with SimulatorServer(network, podbean_bucket=BUCKET) as sim:
        sources, environ = sources_for(sim, concurrency=1, timeout_seconds=5.0)  # one show at a time
        expired = []

        def expire_once(stream, cursor):
            if not expired and not cursor["complete"]:
                expired.append(sim.apis.hosts.expire_podbean_tokens())

        stats = sync_platform(warehouse_at(url), sources, "podbean", "expiry-1", *WINDOW, environ=environ, streams={"downloads"},
                              checkpoint=expire_once)
        issued, refusals = sum(sim.apis.hosts.tokens_issued.values()), sim.apis.hosts.expired_refusals["podbean"]
    assert expired == [1] and not stats.failed_sources
    # One token per account, plus one for the account whose token expired under it; the one
    # request the server refused was sent again, not retried.
    assert issued == len(accounts(network, "podbean")) + 1 and refusals == 1
    assert not stats.retries
    stored = snapshot(url)["raw.podbean_episode_downloads_daily"]
    assert stored == clean[2]["raw.podbean_episode_downloads_daily"]


def test_a_podbean_token_is_renewed_before_it_expires(network):
    show = next(h for h in hosted_shows(network) if h.platform == "podbean")
    with SimulatorServer(network, podbean_bucket=BUCKET, podbean_token_seconds=1.0) as sim:
        policy = ApiPolicy(allow_private_hosts=True, timeout_seconds=2)
        client_id = Secret(podbean_client_id(network.seed, show.tenant_id))
        secret = Secret(api_token(network.seed, "podbean", show.tenant_id))
        with podbean_api(f"{sim.base_url}/podbean/v1", client_id, secret, policy, client_auth="form") as api:
            client = PodbeanClient(api, show.source_id)
            episode = show.episodes[0].episode_id
            first = client.episode_stats(episode, *WINDOW)
            time.sleep(1.0)  # past the token's lifetime less its margin (a tenth of it)
            second = client.episode_stats(episode, *WINDOW)
            third = client.episode_stats(episode, *WINDOW)
        assert first == second == third and len(first) == 2
        assert api.auth.token_requests == 2 and api.auth.renewals == 0
        assert sim.apis.hosts.tokens_issued[show.tenant_id] == 2 and sim.apis.hosts.expired_refusals["podbean"] == 0


def test_a_rotated_simplecast_token_is_picked_up_mid_sync(new_warehouse, network, clean):
    url = new_warehouse("t_hosts")
    with SimulatorServer(network) as sim:
        sources, environ = sources_for(sim, concurrency=1, timeout_seconds=5.0)  # no slow-answer retries
        first_show = sources.simplecast.shows[0]
        rotated = []

        def rotate_once(stream, cursor):
            if not rotated:  # the operator rotates the token; the environment gets the new one
                rotated.append(sim.apis.hosts.rotate_simplecast_token(first_show.tenant_id))
                environ[first_show.token_env] = rotated[0]

        stats = sync_platform(warehouse_at(url), sources, "simplecast", "rotate-1", *WINDOW, environ=environ,
                              streams={"downloads"}, checkpoint=rotate_once)
        refusals = sim.apis.hosts.expired_refusals["simplecast"]
    assert rotated and not stats.failed_sources and refusals == 1 and not stats.retries
    assert snapshot(url)["raw.simplecast_episode_downloads_daily"] == clean[2]["raw.simplecast_episode_downloads_daily"]


def test_the_leaky_bucket_refuses_a_burst_and_paced_requests_pass(network):
    show = next(h for h in hosted_shows(network) if h.platform == "podbean")
    client_id = Secret(podbean_client_id(network.seed, show.tenant_id))
    secret = Secret(api_token(network.seed, "podbean", show.tenant_id))
    with SimulatorServer(network, podbean_bucket=(5, 10.0)) as sim:
        hosts = sim.apis.hosts
        # No client-side pacing: the sixth request of a burst overflows 5 beans and waits out Retry-After.
        with podbean_api(f"{sim.base_url}/podbean/v1", client_id, secret,
                         ApiPolicy(allow_private_hosts=True, timeout_seconds=2, wait_initial_seconds=0.01)) as api:
            started = time.perf_counter()
            for _ in range(6):
                api.get("/episodes", {"podcast_id": show.source_id, "limit": 1})
            elapsed = time.perf_counter() - started
        assert api.stats.retry_reasons == {"http_429": 1} and elapsed >= 1.0
        assert hosts.bucket_refusals[show.tenant_id] == 1
        # Paced at 5 per 0.5 s (the bucket leaks 10 per second), 15 requests pass untouched.
        time.sleep(0.6)
        paced = ApiPolicy(allow_private_hosts=True, timeout_seconds=2, rate_limit_requests=5, rate_limit_seconds=0.5)
        with podbean_api(f"{sim.base_url}/podbean/v1", client_id, secret, paced) as api:
            for _ in range(15):
                api.get("/episodes", {"podcast_id": show.source_id, "limit": 1})
        assert api.stats.retries == 0 and hosts.bucket_refusals[show.tenant_id] == 1


def test_credentials_and_tokens_never_appear_in_logs_metadata_errors_or_tables(new_warehouse, clean_sim, caplog, capfd):
    url = new_warehouse("t_hosts")
    caplog.set_level(logging.DEBUG)
    sources, environ = sources_for(clean_sim)
    good = sync_platform(warehouse_at(url), sources, "podbean", "secrets-1", streams={"episodes"}, environ=environ)
    good_simplecast = sync_platform(warehouse_at(url), sources, "simplecast", "secrets-1", streams={"episodes"}, environ=environ)
    # Wrong secrets: the token endpoint and the API refuse them, and say so without them.
    wrong = {k: (v[:-6] + "x0x0x0" if "SECRET" in k or "TOKEN" in k else v) for k, v in environ.items()}
    refused = sync_platform(warehouse_at(url), sources, "podbean", "secrets-2", streams={"episodes"}, environ=wrong)
    refused_simplecast = sync_platform(warehouse_at(url), sources, "simplecast", "secrets-2", streams={"episodes"}, environ=wrong)
    with pytest.raises(ApiError) as denied:
        show = sources.podbean.shows[0]
        with podbean_api(sources.podbean.base_url, Secret(wrong[show.client_id_env]),
                         Secret(wrong[show.client_secret_env]), ApiPolicy(allow_private_hosts=True)) as api:
            PodbeanClient(api, show.podcast_id).episode_stats("x", *WINDOW)
    assert not good.failed_sources and not good_simplecast.failed_sources
    assert len(refused.failed_sources) == len(sources.podbean.shows)
    assert len(refused_simplecast.failed_sources) == len(sources.simplecast.shows)
    assert denied.value.code == "token_refused" and "invalid_client" in str(denied.value)
    assert all("http_401" in reason for reason in refused_simplecast.failed_sources.values())

    captured = capfd.readouterr()
    issued = list(clean_sim.apis.hosts._podbean_tokens)
    assert issued
    texts = {
        "logs": caplog.text, "stdout": captured.out, "stderr": captured.err, "error": f"{denied.value!r} {denied.value}",
        "metadata": json.dumps([s.as_metadata() for s in (good, good_simplecast, refused, refused_simplecast)]),
        "tables": json.dumps(query(url, "select * from quarantine.platform_records") +
                             query(url, "select * from ops.platform_sync_cursors") +
                             query(url, "select payload from raw.podbean_episodes") +
                             query(url, "select payload from raw.simplecast_episodes"), default=str),
    }
    secrets = {*(v for k, v in environ.items() if k.startswith(("PODBEAN", "SIMPLECAST"))),
               *(v for k, v in wrong.items() if k.startswith(("PODBEAN", "SIMPLECAST"))), *issued}
    for secret in secrets:
        for where, text in texts.items():
            assert secret not in text, where


@pytest.mark.parametrize(("status", "headers", "body", "expired"), [
    (401, {}, {"error": "invalid_token", "error_description": "The access token provided has expired"}, True),
    (400, {}, {"error": "invalid_token", "error_description": "The access token provided has expired"}, True),
    (401, {}, {"error": "invalid_token", "error_description": "The access token provided is invalid"}, False),
    (401, {}, {"errors": [{"code": "token_expired", "detail": "log in again"}]}, True),
    (401, {"WWW-Authenticate": 'Bearer error="invalid_token", error_description="The token expired"'}, {}, True),
    (401, {"WWW-Authenticate": 'Bearer realm="api"'}, {"error": "invalid_client"}, False),
    (403, {}, {"error": "token_expired"}, False),
    (429, {}, {"error": "expired_token"}, False),
])
def test_what_counts_as_an_expired_token(status, headers, body, expired):
    from resources.platform_oauth import token_expired

    response = httpx.Response(status, headers=headers, content=json.dumps(body).encode())
    assert token_expired(response) is expired
    # An answer of undeclared length is never renewed on, whatever it says.
    streamed = httpx.Response(status, headers=headers, stream=httpx.ByteStream(json.dumps(body).encode()))
    assert token_expired(streamed) is False
