"""Megaphone-style daily delivery exports of the simulated network, written to object storage.

The shows hosted on Megaphone (`host_of(index) == "megaphone"`) have no metrics API: their
downloads arrive as export files, one gzipped JSON-lines file per network and UTC day,
`<root>/<tenant>/<network id>/delivery-v2-day-YYYY-MM-DD.json.gz`, one record per request:
`{id, network_id, podcast_id, episode_id, created_at, ip, user_agent, normalized_user_agent,
source, filesize, bytes_sent, seconds_downloaded, duration, blacklisted_ip, blacklisted_ua,
country, region, city, dma_name}`. Once a day's files are complete a marker
`_finalized_delivery-v2_YYYY-MM-DD_<YYYYMMDDTHHMMSSZ>` is written beside them; a day without its
marker may still be rewritten and must not be read.

Megaphone counts a download per record that is not blacklisted (by IP or user agent); unique
listeners are distinct IP + user agent. A small share of lines is planted bad (cut short, no
episode id, negative bytes, a time on another day): a correct loader quarantines them.
`revision` re-exports days with late requests added (new files, new checksums).

Any fsspec URL works as the root (a local folder by default); the ground truth says what a
loader must store per episode and day and what it must quarantine.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import random
import uuid
from collections import Counter
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone
from typing import Any

import fsspec

from simulator.network import Network, Show
from simulator.platforms import host_of

METRIC_TYPE = "delivery-v2"
ACTIVE_DAYS = 60
BAD_LINE_MODULUS = 97
AGENTS = (("AppleCoreMedia/1.0.0.21E236 (iPhone; U; CPU OS 17_4 like Mac OS X; en_us)", "Apple Podcasts"),
          ("Spotify/8.9.36 iOS/17.4 (iPhone15,2)", "Spotify"), ("Overcast/3.0 (+http://overcast.fm/; iOS podcast app)", "Overcast"),
          ("PocketCasts/1.0 (Pocket Casts - iOS - v7.58)", "Pocket Casts"), ("Mozilla/5.0 (Windows NT 10.0; Win64; x64)", "Web Browser"))
PLACES = (("US", "CA", "San Francisco", "San Francisco-Oakland-San Jose"), ("US", "NY", "New York", "New York"),
          ("GB", "ENG", "London", None), ("DE", "BE", "Berlin", None))
UNUSABLE_ITEMS = ("missing_enclosure", "invalid_enclosure_url", "missing_title", "duplicate_guid")


def _digest(*parts: object) -> int:
    return int.from_bytes(hashlib.sha256(":".join(map(str, parts)).encode()).digest()[:8], "big")


def _uuid(*parts: object) -> str:
    return str(uuid.UUID(bytes=hashlib.sha256(":".join(map(str, parts)).encode()).digest()[:16], version=4))


@dataclass(frozen=True)
class MegaphoneEpisode:
    episode_id: str
    guid: str | None
    title: str
    published_at: datetime
    duration: int
    filesize: int
    audio_url: str | None = None  # the feed item's enclosure URL


@dataclass(frozen=True)
class MegaphoneShow:
    show_index: int
    show: Show
    network_id: str
    podcast_id: str
    episodes: tuple[MegaphoneEpisode, ...]

    @property
    def tenant_id(self) -> str:
        return self.show.tenant_id


def megaphone_shows(network: Network) -> list[MegaphoneShow]:
    out = []
    for index, show in enumerate(network.shows):
        if host_of(index) != "megaphone":
            continue
        episodes = []
        for ep in show.episodes:
            if ep.defect in UNUSABLE_ITEMS:
                continue
            number = len(show.episodes) - ep.index
            published = ep.published or datetime(2026, 11, 1, 12, tzinfo=timezone.utc) - timedelta(days=7 * ep.index)
            episodes.append(MegaphoneEpisode(
                _uuid(network.seed, "megaphone-episode", show.tenant_id, show.slug, number), ep.guid, ep.title,
                published.astimezone(timezone.utc), ep.duration_seconds if ep.duration_seconds and ep.duration_seconds > 0 else 1800,
                ep.enclosure_length, ep.enclosure_url))
        out.append(MegaphoneShow(index, show, _uuid(network.seed, "megaphone-network", show.tenant_id),
                                 _uuid(network.seed, "megaphone-podcast", show.tenant_id, show.slug), tuple(episodes)))
    return out


def _downloads(seed: int, ep: MegaphoneEpisode, day: date, revision: int) -> int:
    age = (day - ep.published_at.date()).days
    if not 0 <= age < ACTIVE_DAYS:
        return 0
    peak = 10 + _digest(seed, "megaphone", ep.episode_id) % 150
    noise = _digest(seed, "megaphone", ep.episode_id, day) % 1000 / 1000
    return int(peak * (0.6 + 0.8 * noise) / (1 + age / 3) ** 1.2) + sum(
        _digest(seed, "megaphone-late", r, ep.episode_id, day) % 3 for r in range(1, revision + 1))


def day_records(seed: int, show: MegaphoneShow, day: date, revision: int = 0) -> list[dict[str, Any]]:
    """The requests of one show on one day, as the export lists them (valid records only)."""
    records = []
    start = datetime.combine(day, time(), tzinfo=timezone.utc)
    for ep in show.episodes:
        n = _downloads(seed, ep, day, revision)
        if not n:
            continue
        rng = random.Random(_digest(seed, "megaphone-records", ep.episode_id, day, revision))
        listeners = max(1, n * 3 // 4)
        for i in range(n + n // 20):  # about one in twenty requests is blacklisted
            listener = rng.randrange(listeners)
            agent, app = AGENTS[_digest(seed, "agent", ep.episode_id, listener) % len(AGENTS)]
            country, region, city, dma = PLACES[_digest(seed, "place", ep.episode_id, listener) % len(PLACES)]
            blacklisted = i >= n
            seconds = rng.randint(60, ep.duration) if ep.duration > 60 else ep.duration
            records.append({
                "id": _uuid(seed, "record", ep.episode_id, day, revision, i), "network_id": show.network_id,
                "podcast_id": show.podcast_id, "episode_id": ep.episode_id,
                "created_at": (start + timedelta(seconds=rng.randrange(86_400))).isoformat().replace("+00:00", "Z"),
                "ip": f"198.{_digest(seed, 'ip', ep.episode_id, listener) % 200 + 18}.{listener // 250}.{listener % 250 + 1}",
                "user_agent": agent, "normalized_user_agent": app, "source": "rss",
                "filesize": ep.filesize, "bytes_sent": min(ep.filesize, ep.filesize * seconds // ep.duration + 4_000),
                "seconds_downloaded": seconds, "duration": ep.duration,
                "blacklisted_ip": blacklisted and i % 2 == 0, "blacklisted_ua": blacklisted and i % 2 == 1,
                "country": country, "region": region, "city": city, "dma_name": dma,
            })
    records.sort(key=lambda r: r["created_at"])
    return records


def _spoil(seed: int, record: dict[str, Any]) -> tuple[str, str] | None:
    """(the line as written, quarantine reason) for a line planted bad, else None."""
    choice = _digest(seed, "bad-line", record["id"])
    if choice % BAD_LINE_MODULUS:
        return None
    kind = choice // BAD_LINE_MODULUS % 4
    if kind == 0:
        return json.dumps(record)[:70], "not_json"
    if kind == 1:
        return json.dumps({**record, "episode_id": None}), "missing_episode_id"
    if kind == 2:
        return json.dumps({**record, "bytes_sent": -512}), "invalid_number"
    moved = datetime.fromisoformat(record["created_at"].replace("Z", "+00:00")) + timedelta(days=1)
    return json.dumps({**record, "created_at": moved.isoformat().replace("+00:00", "Z")}), "date_outside_day"


def export_path(root: str, tenant_id: str, network_id: str, day: date) -> str:
    return f"{root.rstrip('/')}/{tenant_id}/{network_id}/{METRIC_TYPE}-day-{day.isoformat()}.json.gz"


def marker_path(root: str, tenant_id: str, network_id: str, day: date) -> str:
    stamp = (datetime.combine(day + timedelta(days=1), time(11), tzinfo=timezone.utc)).strftime("%Y%m%dT%H%M%SZ")
    return f"{root.rstrip('/')}/{tenant_id}/{network_id}/_finalized_{METRIC_TYPE}_{day.isoformat()}_{stamp}"


def write_megaphone_exports(network: Network, root: str, days: list[date], revision: int = 0,
                            finalize: bool = True, storage_options: dict[str, Any] | None = None) -> dict[str, Any]:
    """Write the export files of `days` under the fsspec URL `root` (each file written whole,
    then its day's marker when `finalize`), and return the ground truth of what they hold."""
    fs, _ = fsspec.core.url_to_fs(root, **(storage_options or {}))
    seed = network.seed
    metrics: dict[tuple, dict[str, int]] = {}
    quarantined: Counter = Counter()
    mapping: dict[tuple, Any] = {}
    files = 0
    by_network: dict[tuple[str, str], list[MegaphoneShow]] = {}
    for show in megaphone_shows(network):
        by_network.setdefault((show.tenant_id, show.network_id), []).append(show)
        for ep in show.episodes:
            mapping[(show.tenant_id, show.network_id, show.podcast_id, ep.episode_id)] = {
                "feed_path": show.show.path, "guid": ep.guid, "title": ep.title}
    for (tenant_id, network_id), shows in sorted(by_network.items()):
        for day in days:
            lines = []
            for show in shows:
                for record in day_records(seed, show, day, revision):
                    spoiled = _spoil(seed, record)
                    if spoiled:
                        lines.append(spoiled[0])
                        quarantined[(tenant_id, network_id, day, spoiled[1])] += 1
                        continue
                    lines.append(json.dumps(record, separators=(",", ":")))
                    key = (tenant_id, network_id, record["podcast_id"], record["episode_id"], day)
                    agg = metrics.setdefault(key, {"downloads": 0, "blacklisted_requests": 0, "listeners": set(),
                                                   "bytes_sent": 0, "seconds_downloaded": 0})
                    if record["blacklisted_ip"] or record["blacklisted_ua"]:
                        agg["blacklisted_requests"] += 1
                        continue
                    agg["downloads"] += 1
                    agg["listeners"].add((record["ip"], record["user_agent"]))
                    agg["bytes_sent"] += record["bytes_sent"]
                    agg["seconds_downloaded"] += record["seconds_downloaded"]
            path = export_path(root, tenant_id, network_id, day)
            fs.makedirs(path.rsplit("/", 1)[0], exist_ok=True)
            data = gzip.compress(("\n".join(lines) + "\n").encode(), mtime=0)
            if not (fs.exists(path) and fs.cat_file(path) == data):  # the same bytes again: nothing new delivered
                # Written under a temporary name and moved: a reader never sees half a file.
                fs.pipe_file(path + ".tmp", data)
                fs.mv(path + ".tmp", path)
            files += 1
            marker = marker_path(root, tenant_id, network_id, day)
            if finalize and not fs.exists(marker):
                fs.pipe_file(marker, b"")
    for agg in metrics.values():
        agg["unique_listeners"] = len(agg.pop("listeners"))
    return {"metrics": metrics, "quarantined": quarantined, "episodes": mapping, "files": files}
