"""The Megaphone-shaped episode catalog served by the simulator, synced into real PostgreSQL: a
clean sync equals the simulator's catalog and names the very ids the delivery exports name; a
sync under faults (and resumed after an interruption) stores the same; Link headers are
followed only to the API's own host."""

import json
import threading
from datetime import timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest

from assets.ingestion.platforms.megaphone import MegaphoneClient, megaphone_api, next_link
from assets.ingestion.platforms.paging import read_pages
from assets.ingestion.platforms.sync import PlatformSources, sync_platform
from resources.platform_http import ApiError, ApiPolicy, Secret
from resources.warehouse import warehouse_at
from simulator.megaphone import megaphone_shows
from simulator.megaphone_api import megaphone_catalog_truth, megaphone_token
from simulator.platforms import platform_sources
from simulator.server import SimulatorServer
from tests.conftest import query

FAST = {"timeout_seconds": 0.4, "wait_initial_seconds": 0.02}
PER_PAGE = 7  # several pages per podcast, so the Link header is followed


def sources_for(sim: SimulatorServer) -> tuple[PlatformSources, dict[str, str]]:
    section, environ = platform_sources(sim.network, sim.base_url, **FAST)
    section["megaphone"]["per_page"] = PER_PAGE
    return PlatformSources.model_validate(section), environ


def stored(url: str) -> dict[tuple, tuple]:
    return {(t, p, e): rest for t, p, e, *rest in query(url, """
        select tenant_id, podcast_id, episode_id, network_id, guid, uid, title, published_at, duration_seconds,
               audio_url
        from raw.megaphone_episodes""")}


def expected(network) -> dict[tuple, tuple]:
    networks = {s.podcast_id: s.network_id for s in megaphone_shows(network)}
    return {k: (networks[k[1]], e["guid"], e["uid"], e["title"], e["pubdate"], round(e["duration"]), e["audioFileUrl"])
            for k, e in megaphone_catalog_truth(network).items()}


def as_comparable(rows: dict[tuple, tuple]) -> dict[tuple, tuple]:
    return {k: (*v[:4], v[4].astimezone(timezone.utc).isoformat().replace("+00:00", "Z"), *v[5:])
            for k, v in rows.items()}


def test_clean_sync_equals_the_catalog_and_the_export_ids(fresh_db, network):
    with SimulatorServer(network) as sim:
        sources, environ = sources_for(sim)
        stats = sync_platform(warehouse_at(fresh_db), sources, "megaphone", "mega-1", environ=environ)
    want = expected(network)
    assert not stats.failed_sources and not stats.quarantined
    assert as_comparable(stored(fresh_db)) == want and len(want) > 100
    # One unit per page: every podcast took several pages, each followed through its Link header.
    shows = megaphone_shows(network)
    pages = sum(-(-len(s.episodes) // PER_PAGE) for s in shows)
    assert stats.units == pages > 2 * len(shows)
    # Every request is a page, or a retry of one (a busy machine can time a request out).
    assert stats.requests == stats.units + sum(stats.retries.values())
    assert stats.rows_written["megaphone_episodes"] == len(want)
    # The catalog names exactly the episodes the delivery exports are written for.
    assert set(want) == {(s.tenant_id, s.podcast_id, e.episode_id) for s in shows for e in s.episodes}
    # Guids are the feed's, but for a small share showing Megaphone's uid instead.
    feed_guids = {(s.tenant_id, s.podcast_id, e.episode_id): e.guid for s in shows for e in s.episodes}
    own = [k for k, v in want.items() if v[1] != feed_guids[k]]
    assert all(want[k][1] == want[k][2] for k in own) and 0 < len(own) < 0.15 * len(want)
    # A second sync changes nothing.
    with SimulatorServer(network) as sim:
        sources, environ = sources_for(sim)
        again = sync_platform(warehouse_at(fresh_db), sources, "megaphone", "mega-2", environ=environ)
    assert again.rows_written["megaphone_episodes"] == 0 and again.rows_seen["megaphone_episodes"] == len(want)


def test_sync_under_faults_and_interrupted_stores_the_same(fresh_db, network):
    class Stop(Exception):
        pass

    calls = []

    def interrupt(stream: str, cursor: dict) -> None:
        calls.append(cursor)
        if len(calls) == 3:
            raise Stop

    with SimulatorServer(network, api_faults=0.25, api_fault_seed=3, api_retry_after=0) as sim:
        sources, environ = sources_for(sim)
        first = sync_platform(warehouse_at(fresh_db), sources, "megaphone", "mega-1", checkpoint=interrupt, environ=environ,
                              sync_id="sync-a")
        assert len(first.failed_sources) >= 1  # the interrupted show; the others completed
        resumed = sync_platform(warehouse_at(fresh_db), sources, "megaphone", "mega-1", environ=environ, sync_id="sync-a")
        assert sum(sim.apis.faults_served.values()) > 5
    assert not resumed.failed_sources and resumed.resumed == 1
    assert sum(first.retries.values()) + sum(resumed.retries.values()) >= 5
    assert as_comparable(stored(fresh_db)) == expected(network)


def test_links_are_followed_to_the_api_host_only(network):
    assert next_link('<https://cms.megaphone.fm/api/x?page=3>; rel="next", <https://h/x?page=9>; rel="last"') \
        == "https://cms.megaphone.fm/api/x?page=3"
    assert next_link('<https://h/x?page=9>; rel="last"') is None and next_link(None) is None
    show = megaphone_shows(network)[0]
    api = megaphone_api("https://cms.megaphone.fm/api", Secret(megaphone_token(network.seed, show.tenant_id)),
                        ApiPolicy())
    client = MegaphoneClient(api, show.network_id, show.podcast_id)
    assert client.page_after('<https://cms.megaphone.fm/api/x?page=3&per_page=7>; rel="next"') == 3
    assert client.page_after('<https://cms.megaphone.fm/api/x?page=9>; rel="last"') is None
    with pytest.raises(ApiError) as refused:
        client.page_after('<https://elsewhere.example.net/api/episodes?page=2>; rel="next"')
    assert refused.value.code == "foreign_link"
    with pytest.raises(ApiError) as shapeless:
        client.page_after('<https://cms.megaphone.fm/api/x?cursor=abc>; rel="next"')
    assert shapeless.value.code == "unexpected_shape"
    api.close()


class GrowingCatalog(ThreadingHTTPServer):
    """A Megaphone-shaped episode list on loopback, newest first, that publishes an episode at
    its head just before the requests numbered in `publish_before`."""

    def __init__(self, size: int, publish_before: set[int]):
        self.episodes = [f"old{n}" for n in range(size)]
        self.publish_before, self.requests, self.published = publish_before, 0, 0
        super().__init__(("127.0.0.1", 0), CatalogHandler)


class CatalogHandler(BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 (the http.server name)
        server: GrowingCatalog = self.server
        server.requests += 1
        if server.requests in server.publish_before:
            server.episodes.insert(0, f"new{server.published}")
            server.published += 1
        query = parse_qs(urlsplit(self.path).query)
        page, per_page = int(query["page"][0]), int(query["per_page"][0])
        items = server.episodes[(page - 1) * per_page:page * per_page]
        body = json.dumps([{"id": i, "title": i} for i in items]).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("X-Total", str(len(server.episodes)))
        if page * per_page < len(server.episodes):
            base = f"http://127.0.0.1:{server.server_port}{urlsplit(self.path).path}"
            self.send_header("Link", f'<{base}?page={page + 1}&per_page={per_page}>; rel="next"')
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def test_episodes_published_while_paging_are_found():
    """Newest first: an episode published between two page requests pushes every later one down
    a page. Followed naively, the Link headers repeat one episode and never show the new one;
    the client's read checks the list again from its head and finds both new episodes."""
    def read(how) -> tuple[list[str], GrowingCatalog]:
        catalog = GrowingCatalog(23, publish_before={3, 5})
        threading.Thread(target=catalog.serve_forever, daemon=True).start()
        try:
            api = megaphone_api(f"http://127.0.0.1:{catalog.server_port}", Secret("t"),
                                ApiPolicy(allow_private_hosts=True, **FAST))
            seen = [e["id"] for e in how(MegaphoneClient(api, "n", "p", per_page=5))]
            api.close()
        finally:
            catalog.shutdown()
            catalog.server_close()
        assert catalog.published == 2 and len(catalog.episodes) == 25
        return seen, catalog

    def naively(client):
        page = 1
        while page is not None:
            result = client.episodes_page(page)
            yield from result.records
            page = result.next_page

    seen, catalog = read(naively)
    assert not {"new0", "new1"} & set(seen) and len(seen) == 25  # two repeats in place of the new ones
    seen, catalog = read(lambda client: (e for records, _ in read_pages(client.episodes_page, lambda e: e["id"])
                                         for e in records))
    assert set(seen) == set(catalog.episodes)
