"""Platform sync under lists that move while paged, Buzzsprout's per-download records, and the
COPY + merge store: against the simulator on loopback and a real PostgreSQL."""

from __future__ import annotations

import json
import time
from collections import Counter
from datetime import date

import psycopg
import pytest

from assets.ingestion.platforms.base import Rejected, ShowSync, SyncStats, no_checkpoint
from assets.ingestion.platforms.buzzsprout import Buzzsprout, BuzzsproutClient, BuzzsproutConfig, BuzzsproutShow, buzzsprout_api
from assets.ingestion.platforms.paging import ListCursor, Page, read_pages
from assets.ingestion.platforms.sync import PlatformSources, ensure_platform_tables, sync_platform
from assets.ingestion.platforms.transistor import TransistorClient, transistor_api
from resources.platform_http import ApiError, ApiPolicy, Secret
from resources.warehouse import warehouse_at
from simulator.platforms import (
    SHIFT, api_token, download_details_truth, hosted_shows, platform_sources, platform_truth,
)
from simulator.server import SimulatorServer
from tests.conftest import query

FAST = {"timeout_seconds": 0.4, "wait_initial_seconds": 0.02, "rate_limit_seconds": 0.2}
TRANSISTOR_LIMIT = (10, 0.2)
SHOWS = 4  # shows per platform in these tests (the first ones of each)


# -- read_pages on a list held in memory ------------------------------------------------------


class GrowingList:
    """A newest-first list served by page number; `changes[n]` runs before the n-th request."""

    def __init__(self, size: int, per_page: int, totals: bool = True, changes: dict | None = None):
        self.items = [f"old{i}" for i in range(size)]
        self.per_page, self.totals, self.changes = per_page, totals, changes or {}
        self.requests = 0
        self.published = 0

    def publish(self, n: int = 1) -> None:
        for _ in range(n):
            self.items.insert(0, f"new{self.published}")
            self.published += 1

    def fetch(self, page: int) -> Page:
        self.requests += 1
        change = self.changes.get(self.requests)
        if change:
            change(self)
        chunk = self.items[(page - 1) * self.per_page: page * self.per_page]
        more = page * self.per_page < len(self.items)
        return Page([{"id": i} for i in chunk], page + 1 if more else None, len(self.items) if self.totals else None)


def key(record):
    return record["id"]


def read_all(source: GrowingList, start=None) -> list[str]:
    return [r["id"] for records, _ in read_pages(source.fetch, key, start) for r in records]


def naive(source: GrowingList) -> list[str]:
    seen, page = [], 1
    while page is not None:
        result = source.fetch(page)
        seen += [r["id"] for r in result.records]
        page = result.next_page
    return seen


@pytest.mark.parametrize("totals", [True, False])
def test_a_list_that_holds_still_is_read_once(totals):
    source = GrowingList(23, per_page=5, totals=totals)
    assert read_all(source) == source.items
    # With totals nothing more is asked; without, one re-read of page 1 confirms the head.
    assert source.requests == (5 if totals else 6)
    one_page = GrowingList(4, per_page=5, totals=False)
    assert read_all(one_page) == one_page.items and one_page.requests == 1


@pytest.mark.parametrize("totals", [True, False])
def test_records_published_at_the_head_while_paging_are_found(totals):
    # Naive paging: the record published before the 3rd request is missed and one is repeated.
    lost = GrowingList(23, per_page=5, totals=totals, changes={3: GrowingList.publish})
    seen = naive(lost)
    assert len(seen) == 24 and len(set(seen)) == 23 and "new0" not in seen

    source = GrowingList(23, per_page=5, totals=totals, changes={3: GrowingList.publish, 5: GrowingList.publish})
    seen = read_all(source)
    assert set(seen) == set(source.items) and len(source.items) == 25
    assert source.requests == 6  # five pages, then page 1 again: both new records are in front of the old head


def test_more_new_records_than_a_page_and_a_check_overtaken_by_more():
    # Seven records (more than a page) arrive during the pass, two more during the check.
    source = GrowingList(23, per_page=5, changes={2: lambda s: s.publish(7), 7: lambda s: s.publish(2)})
    seen = read_all(source)
    assert set(seen) == set(source.items) and len(source.items) == 32
    assert source.requests == 6 + 2 + 1  # the pass (6 pages: the list grew), a check of 2 pages, a check again


def test_a_list_that_lost_its_head_or_changed_elsewhere_is_read_again():
    def drop_head(s):
        s.items.pop(0)

    def insert_in_middle(s):
        s.items.insert(12, "mid")

    for change in (drop_head, insert_in_middle):
        source = GrowingList(23, per_page=5, changes={3: change})
        seen = read_all(source)
        assert set(source.items) <= set(seen)
        assert source.requests > 5 + 5  # the pass, the check, and a full second pass

    always = GrowingList(1000, per_page=50, changes={n: drop_head for n in range(1, 2000)})
    with pytest.raises(ApiError) as unstable:
        read_all(always)
    assert unstable.value.code == "list_unstable"


def test_a_read_resumes_from_its_saved_position_check_included():
    def run(stop_after: int) -> tuple[list[str], GrowingList]:
        source = GrowingList(23, per_page=5, changes={2: lambda s: s.publish(7)})
        seen, saved = [], None
        for n, (records, after) in enumerate(read_pages(source.fetch, key)):
            seen += [r["id"] for r in records]
            saved = json.loads(json.dumps(after.as_json())) if after else None
            if n + 1 == stop_after:
                break
        if saved is not None:  # a new process: only the saved JSON survives
            seen += read_all(source, ListCursor.from_json(saved))
        return seen, source

    for stop_after in range(1, 9):
        seen, source = run(stop_after)
        assert set(seen) == set(source.items), stop_after


# -- the simulator: shifting pages, per-download records ---------------------------------------


def sources_for(sim: SimulatorServer, details_per_page: int = 1000, transistor_per_page: int = 25,
                details_unit_rows: int = 1000, **options):
    section, environ = platform_sources(sim.network, sim.base_url, **{**FAST, **options})
    for platform in ("buzzsprout", "transistor"):
        section[platform]["shows"] = section[platform]["shows"][:SHOWS]
    section["buzzsprout"].update(download_details=True, details_per_page=details_per_page,
                                 details_unit_rows=details_unit_rows)
    section["transistor"]["per_page"] = transistor_per_page
    return PlatformSources.model_validate(section), environ


def source_ids(sources, platform: str) -> set[str]:
    return {s.source_id for s in getattr(sources, platform).shows}


def stored_details(url: str) -> dict[tuple, dict]:
    rows = query(url, "select tenant_id, podcast_id, episode_id, download_date, download_id, app, device, "
                      "device_type, country_code, region, city, continent, media_type "
                      "from raw.buzzsprout_episode_download_details")
    fields = ("app", "device", "device_type", "country_code", "region", "city", "continent", "media_type")
    return {r[:5]: dict(zip(fields, r[5:])) for r in rows}


def details_truth(sim, sources, window, apis=None) -> tuple[dict, dict]:
    truth = download_details_truth(sim.network, *window, apis=apis)
    ids = source_ids(sources, "buzzsprout")
    return ({k: v for k, v in truth["stored"].items() if k[1] in ids},
            {k: n for k, n in truth["quarantined"].items() if k[1] in ids})


def quarantined(url: str, platform: str, stream: str) -> dict[tuple, int]:
    return {(t, s, d): n for t, s, d, n in query(
        url, "select tenant_id, source_id, record_date, count(*) from quarantine.platform_records "
             "where platform = %s and stream = %s group by 1, 2, 3", (platform, stream))}


@pytest.fixture(scope="module")
def clean_sim(network):
    with SimulatorServer(network, transistor_limit=TRANSISTOR_LIMIT) as server:
        yield server


def test_lists_that_shift_while_paged_end_without_duplicates_or_gaps(fresh_db, network):
    window = (date(2026, 11, 1), date(2026, 11, 2))
    with SimulatorServer(network, transistor_limit=TRANSISTOR_LIMIT, api_faults=0.3, api_fault_seed=5,
                         api_fault_kinds=(SHIFT,)) as sim:
        sources, environ = sources_for(sim, details_per_page=40, transistor_per_page=10)

        # The fault is real: naive paging of a Transistor list repeats a record and misses the new one.
        show = next(h for h in hosted_shows(network) if h.platform == "transistor")
        with transistor_api(f"{sim.base_url}/transistor/v1", Secret(api_token(network.seed, "transistor", show.tenant_id)),
                            ApiPolicy(allow_private_hosts=True, rate_limit_requests=10, rate_limit_seconds=0.2)) as api:
            ids = [r["id"] for _, page, _ in TransistorClient(api, show.source_id, per_page=10).episodes() for r in page]
        listed = {e.episode_id for e in sim.apis.episodes_of(show)}
        assert len(ids) > len(set(ids)) and listed - set(ids)

        # Each stream separately, so what the simulator published during it is the truth it must end with.
        episodes = sync_platform(warehouse_at(fresh_db), sources, "transistor", "shift-1", *window, environ=environ,
                                 streams={"episodes"}, raise_errors=True)
        truth = platform_truth(network, *window, apis=sim.apis)
        ids = source_ids(sources, "transistor")
        stored = set(query(fresh_db, "select tenant_id, show_id, episode_id, guid from raw.transistor_episodes"))
        assert stored == {e for e in truth["episodes"]["transistor"] if e[1] in ids}
        published = {(h.tenant_id, h.source_id, e.episode_id) for h in hosted_shows(network)
                     if h.source_id in ids for e in sim.apis.published.get(("transistor", h.source_id), [])}
        assert len(published) >= 5 and published <= {e[:3] for e in stored}

        downloads = sync_platform(warehouse_at(fresh_db), sources, "transistor", "shift-2", *window, environ=environ,
                                  streams={"downloads"}, raise_errors=True)
        truth = platform_truth(network, *window, apis=sim.apis)
        stored_downloads = {(t, s, e, d): n for t, s, e, d, n in query(
            fresh_db, "select tenant_id, show_id, episode_id, download_date, downloads "
                      "from raw.transistor_episode_downloads_daily")}
        expected = {k: n for k, n in truth["downloads"]["transistor"].items() if k[1] in ids}
        assert stored_downloads == expected
        new_episodes = {e.episode_id for h in hosted_shows(network) if h.source_id in ids
                        for e in sim.apis.published.get(("transistor", h.source_id), [])}
        assert {k[2] for k in stored_downloads} & new_episodes  # downloads of episodes published meanwhile

        served_before = sim.apis.faults_served.get(SHIFT, 0)
        details = sync_platform(warehouse_at(fresh_db), sources, "buzzsprout", "shift-3", *window, environ=environ,
                                streams={"download_details"}, raise_errors=True)
        late = sum(len(v) for v in sim.apis.late_downloads.values())
        assert late == sim.apis.faults_served[SHIFT] - served_before > 10
        expected_details, expected_quarantine = details_truth(sim, sources, window, apis=sim.apis)
        assert stored_details(fresh_db) == expected_details
        assert quarantined(fresh_db, "buzzsprout", "download_details") == expected_quarantine
        # Late downloads landed in front of pages already read, and were found again.
        late_ids = {r["id"] for v in sim.apis.late_downloads.values() for r in v}
        assert late_ids <= {k[4] for k in stored_details(fresh_db)}
    for stats in (episodes, downloads, details):
        assert not stats.failed_sources


def test_per_download_records_are_stored_as_served_and_add_up_to_the_daily_totals(fresh_db, clean_sim):
    window = (date(2026, 10, 31), date(2026, 11, 1))
    sources, environ = sources_for(clean_sim, details_per_page=250)
    first = sync_platform(warehouse_at(fresh_db), sources, "buzzsprout", "details-1", *window, environ=environ, raise_errors=True)
    expected, expected_quarantine = details_truth(clean_sim, sources, window)
    stored = stored_details(fresh_db)
    assert len(stored) > 2000 and stored == expected
    assert expected_quarantine and quarantined(fresh_db, "buzzsprout", "download_details") == expected_quarantine
    reasons = query(fresh_db, "select distinct reason_code from quarantine.platform_records where stream = 'download_details'")
    assert reasons == [("invalid_media_type",)]
    # Per episode and day, stored plus quarantined records make the day's total (planted-bad totals excepted).
    per_day = dict(query(fresh_db, """
        select (d.episode_id, d.download_date)::text, d.downloads
        from raw.buzzsprout_episode_downloads_daily d""" ))
    counted = Counter()
    for (_, _, episode_id, day, _) in stored:
        counted[f"({episode_id},{day})"] += 1
    for record_key, day in query(fresh_db, "select record_key, record_date from quarantine.platform_records "
                                           "where stream = 'download_details'"):
        counted[f"({record_key.split('@')[0]},{day})"] += 1
    assert counted == Counter(per_day)
    assert first.rows_written["buzzsprout_download_details"] == len(stored)
    assert 0 < first.network_seconds < first.show_seconds and 0 < first.store_seconds < first.show_seconds

    # A second sync of the same window rewrites nothing.
    before = query(fresh_db, "select xmin::text, download_id from raw.buzzsprout_episode_download_details order by 2")
    again = sync_platform(warehouse_at(fresh_db), sources, "buzzsprout", "details-2", *window, environ=environ, raise_errors=True)
    assert again.rows_written["buzzsprout_download_details"] == 0
    assert again.rows_seen["buzzsprout_download_details"] == first.rows_seen["buzzsprout_download_details"]
    assert query(fresh_db, "select xmin::text, download_id from raw.buzzsprout_episode_download_details order by 2") == before


def test_an_interrupted_details_sync_resumes_without_duplicates_or_gaps(fresh_db, clean_sim):
    window = (date(2026, 11, 2), date(2026, 11, 2))
    sources, environ = sources_for(clean_sim, details_per_page=30, details_unit_rows=60, concurrency=1)

    class Crash(Exception):
        pass

    units = {"n": 0}
    cut = []

    def checkpoint(stream, cursor):
        units["n"] += 1
        # Stop up to once per show: in turn inside a per-download list past its first page, and
        # right after a unit of whole lists.
        mid_list = (cursor.get("list") or {}).get("pages", 0) >= 2
        after_lists = cursor.get("episode_id") is not None and cursor.get("list") is None
        if len(cut) < SHOWS and (mid_list if len(cut) % 2 == 0 else after_lists):
            cut.append(cursor)
            raise Crash(str(cursor))

    rounds = 0
    while True:
        stats = sync_platform(warehouse_at(fresh_db), sources, "buzzsprout", "cut-1", *window, environ=environ,
                              streams={"download_details"}, checkpoint=checkpoint)
        rounds += 1
        if not stats.failed_sources:
            break
        assert rounds < 10
    assert len(cut) >= 3 and rounds > 1 and {c["list"] is None for c in cut} == {False, True}
    expected, expected_quarantine = details_truth(clean_sim, sources, window)
    assert stored_details(fresh_db) == expected
    assert quarantined(fresh_db, "buzzsprout", "download_details") == expected_quarantine

    # Every page was stored once over all attempts: as many units as one uninterrupted sync.
    with psycopg.connect(fresh_db, autocommit=True) as conn:
        conn.execute("truncate raw.buzzsprout_episode_download_details, quarantine.platform_records, "
                     "ops.platform_sync_cursors")
    uninterrupted = sync_platform(warehouse_at(fresh_db), sources, "buzzsprout", "whole-1", *window, environ=environ,
                                  streams={"download_details"})
    assert uninterrupted.units == units["n"]
    assert stored_details(fresh_db) == expected


# -- the store: COPY into a temporary table, one merge -----------------------------------------


def test_copy_merge_keeps_unchanged_rows_counts_written_rows_and_is_one_transaction(fresh_db):
    ensure_platform_tables(warehouse_at(fresh_db))
    config = BuzzsproutConfig(base_url="http://127.0.0.1:9", shows=[])
    show = BuzzsproutShow(tenant_id="acme", podcast_id="p1", token_env="UNUSED")
    job = ShowSync(Buzzsprout(), warehouse_at(fresh_db), config, show, None, frozenset({"episodes", "downloads"}), None, None,
                   "batch-1", "sync-1", SyncStats(), no_checkpoint)

    def episode(eid, title, payload):
        return {"episode_id": eid, "guid": f"g{eid}", "title": title, "audio_url": None, "published_at": None,
                "duration_seconds": 60, "episode_number": None, "season_number": None, "payload": payload}

    def versions():
        return dict(query(fresh_db, "select episode_id, xmin::text from raw.buzzsprout_episodes"))

    try:
        job.store("episodes", [episode("1", "One", {"a": 1, "b": [1, 2]}), episode("2", "Two", {"a": 2})], [],
                  {"n": 1})
        assert job.stats.rows_written["buzzsprout_episodes"] == 2
        first = versions()

        # The same rows again (the payload's keys in another order: the same jsonb): nothing written.
        job.store("episodes", [episode("2", "Two", {"a": 2}), episode("1", "One", {"b": [1, 2], "a": 1})], [], {"n": 2})
        assert job.stats.rows_written["buzzsprout_episodes"] == 2 and versions() == first

        # One changed, one new, one key twice in the unit (its last values win), one unchanged.
        job.store("episodes", [episode("1", "One", {"a": 1, "b": [1, 2]}), episode("2", "Two!", {"a": 2}),
                               episode("3", "x", {}), episode("3", "Three", {"c": 3})],
                  [Rejected("#9", "missing_episode_id", "no id", {"x": 1})], {"n": 3})
        assert job.stats.rows_written["buzzsprout_episodes"] == 2 + 2
        now = versions()
        assert now["1"] == first["1"] and now["2"] != first["2"] and set(now) == {"1", "2", "3"}
        assert query(fresh_db, "select title, payload from raw.buzzsprout_episodes where episode_id = '3'") == [
            ("Three", {"c": 3})]

        # A unit that cannot be stored leaves nothing behind: no row, no quarantine, no cursor move.
        with pytest.raises(psycopg.errors.NotNullViolation):
            job.store("downloads", [{"episode_id": "1", "download_date": date(2026, 11, 1), "downloads": 5},
                                    {"episode_id": "2", "download_date": date(2026, 11, 1), "downloads": None}],
                      [Rejected("x", "invalid_download_count", "", {}, date(2026, 11, 1))], {"next_date": "2026-11-02"})
        assert query(fresh_db, "select count(*) from raw.buzzsprout_episode_downloads_daily") == [(0,)]
        assert query(fresh_db, "select count(*) from quarantine.platform_records where stream = 'downloads'") == [(0,)]
        assert job.cursor("downloads") is None and job.cursor("episodes") == {"n": 3}

        # The connection is usable after the failed unit, and a repeated unit is counted once.
        for _ in range(2):
            job.store("downloads", [{"episode_id": "1", "download_date": date(2026, 11, 1), "downloads": 5}], [],
                      {"next_date": "2026-11-02"})
        assert job.stats.rows_written["buzzsprout_downloads"] == 1 and job.stats.units == 5
    finally:
        job.close()


def test_the_client_counts_time_inside_http_exchanges_apart_from_back_off(network):
    show = next(h for h in hosted_shows(network) if h.platform == "buzzsprout")
    token = Secret(api_token(network.seed, "buzzsprout", show.tenant_id))
    policy = ApiPolicy(allow_private_hosts=True, timeout_seconds=2, wait_initial_seconds=0.2, wait_max_seconds=0.2)
    with SimulatorServer(network, latency_seconds=0.05) as slow:
        with buzzsprout_api(f"{slow.base_url}/buzzsprout/api", token, policy) as api:
            started = time.perf_counter()
            for _ in range(4):
                BuzzsproutClient(api, show.source_id).episodes()
            elapsed = time.perf_counter() - started
    assert api.stats.requests == 4 and api.stats.backoff_seconds == 0
    assert 4 * 0.05 <= api.stats.network_seconds <= elapsed
    # Every request fails (503) and is tried twice: the wait between the tries is back-off, not network.
    with SimulatorServer(network, api_faults=1.0, api_fault_kinds=("503",)) as failing:
        with buzzsprout_api(f"{failing.base_url}/buzzsprout/api", token, ApiPolicy(
                allow_private_hosts=True, max_attempts=2, wait_initial_seconds=1.0, wait_max_seconds=1.0)) as api:
            with pytest.raises(ApiError):
                BuzzsproutClient(api, show.source_id).episodes()
    # (a back-off long enough that two loopback requests stay below it on a loaded machine)
    assert api.stats.requests == 2 and api.stats.backoff_seconds >= 1.0 > api.stats.network_seconds
