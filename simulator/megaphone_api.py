"""A Megaphone-shaped REST catalog of the simulated network's Megaphone-hosted shows.

`/megaphone/api/networks/<network id>/podcasts/<podcast id>/episodes?page=&per_page=` lists a
podcast's episodes, newest first, as a JSON array; a page that is not the last carries an
RFC 5988 `Link: <…>; rel="next"` header (and `X-Total`, `X-Page`, `X-Per-Page`). Requests are
authorized by `Authorization: Token token=<token>` (quoted or not), one token per tenant.

The ids are the ones `simulator.megaphone` writes into the delivery exports (same network,
podcast and episode ids), so a catalog and the exports describe the same episodes. Guids and
media URLs are the feed's, except for a small share: Megaphone's own `uid` as guid (an episode
imported without its guid, and every item whose feed shows no guid), or the media URL with an
`updated=` query string. The shared fault mode applies; each token may make
`MEGAPHONE_RATE_LIMIT` requests per window (Megaphone's 60 a minute, scaled down), beyond which
the API answers 429 with Retry-After.
"""

from __future__ import annotations

import math
import threading
import time
from typing import Any
from urllib.parse import urlencode

from simulator.megaphone import MegaphoneEpisode, MegaphoneShow, _digest, _uuid, megaphone_shows
from simulator.network import Network

PER_PAGE_MAX = 500
PER_PAGE_DEFAULT = 20
# Megaphone allows 60 requests a minute per token; the simulator's window is 100 times shorter.
MEGAPHONE_RATE_LIMIT = (60, 0.6)
GUID_DRIFT_PER_MILLE = 40    # episodes that show Megaphone's uid instead of the feed's guid
URL_DRIFT_PER_MILLE = 60     # episodes whose media URL carries an `updated=` query string


def megaphone_token(seed: int, tenant_id: str) -> str:
    from simulator.platforms import api_token

    return api_token(seed, "megaphone", tenant_id)


def megaphone_env_var(tenant_id: str) -> str:
    return f"MEGAPHONE_TOKEN_{tenant_id.upper()}"


def catalog_episode(seed: int, show: MegaphoneShow, ep: MegaphoneEpisode) -> dict[str, Any]:
    """An episode as the catalog shows it (Megaphone's field names)."""
    uid = _uuid(seed, "megaphone-uid", ep.episode_id).replace("-", "")[:24]
    guid = ep.guid
    if guid is None or _digest(seed, "megaphone-drift", "guid", ep.episode_id) % 1000 < GUID_DRIFT_PER_MILLE:
        guid = uid
    audio_url = ep.audio_url
    if audio_url and _digest(seed, "megaphone-drift", "url", ep.episode_id) % 1000 < URL_DRIFT_PER_MILLE:
        audio_url += ("&" if "?" in audio_url else "?") + f"updated={_digest(seed, 'updated', ep.episode_id) % 10**10}"
    return {
        "id": ep.episode_id, "uid": uid, "guid": guid, "title": ep.title, "subtitle": "", "summary": "",
        "pubdate": ep.published_at.isoformat().replace("+00:00", "Z"), "pubdateTimezone": "UTC",
        "duration": float(ep.duration), "size": ep.filesize, "audioFileUrl": audio_url, "downloadUrl": audio_url,
        "episodeType": "full", "status": "published", "draft": False, "podcastId": show.podcast_id,
        "networkId": show.network_id,
    }


def megaphone_catalog_truth(network: Network) -> dict[tuple[str, str, str], dict[str, Any]]:
    """(tenant, podcast id, episode id) -> the catalog's episode: what a clean sync stores."""
    return {(show.tenant_id, show.podcast_id, ep.episode_id): catalog_episode(network.seed, show, ep)
            for show in megaphone_shows(network) for ep in show.episodes}


def megaphone_identity_truth(network: Network, base_url: str) -> dict[tuple[str, str, str], Any]:
    """("megaphone", podcast id, episode id) -> the feed item the catalog episode is."""
    from simulator.network import FEED_DEFECTS, ITEM_DEFECTS
    from simulator.platforms import EpisodeIdentity

    out = {}
    for show in megaphone_shows(network):
        feed = show.show
        feed_ok = not (feed.feed_defect and FEED_DEFECTS.get(feed.feed_defect))
        # The episode ids as simulator.megaphone derives them from the item's number.
        items = {_uuid(network.seed, "megaphone-episode", feed.tenant_id, feed.slug, len(feed.episodes) - i.index): i
                 for i in feed.episodes}
        for ep in show.episodes:
            item = items[ep.episode_id]
            key = ("megaphone", show.podcast_id, ep.episode_id)
            if not feed_ok:
                out[key] = EpisodeIdentity("feed_quarantined", None)
            elif item.defect and ITEM_DEFECTS.get(item.defect):
                out[key] = EpisodeIdentity("item_quarantined", None)
            else:
                guid = item.guid if item.guid is not None else item.enclosure_url
                out[key] = EpisodeIdentity("feed_item", (feed.tenant_id, base_url + feed.path, guid))
    return out


def megaphone_sources(network: Network, base_url: str, **options: Any) -> tuple[dict[str, Any], dict[str, str]]:
    """The `megaphone:` section of sources.yaml for the network, and its credentials."""
    limit, window = MEGAPHONE_RATE_LIMIT
    # The client paces itself below the API's limit whatever pacing `options` give the others.
    section = {"base_url": f"{base_url}/megaphone/api", "shows": [], **options,
               "rate_limit_requests": limit * 5 // 6, "rate_limit_seconds": window}
    environ: dict[str, str] = {}
    for show in megaphone_shows(network):
        env = megaphone_env_var(show.tenant_id)
        environ[env] = megaphone_token(network.seed, show.tenant_id)
        section["shows"].append({"tenant_id": show.tenant_id, "network_id": show.network_id,
                                 "podcast_id": show.podcast_id, "token_env": env})
    return {"megaphone": section}, environ


class MegaphoneApi:
    """The request handling behind `/megaphone/api/`, sharing the fault mode of `apis`."""

    def __init__(self, apis: Any, rate_limit: tuple[int, float] = MEGAPHONE_RATE_LIMIT):
        self.apis = apis
        self.seed = apis.network.seed
        self.rate_limit = rate_limit
        self.shows = {(s.network_id, s.podcast_id): s for s in megaphone_shows(apis.network)}
        self.tokens = {megaphone_token(self.seed, t): t for t in apis.network.tenants}
        self.rate_refusals = 0
        self._lock = threading.Lock()
        self._requests: dict[str, list[float]] = {}

    @property
    def routes(self) -> dict[str, Any]:
        return {"/megaphone/api/": self._request}

    def _limited(self, token: str):
        from simulator.platforms import _json

        limit, window = self.rate_limit
        now = time.monotonic()
        with self._lock:
            recent = [t for t in self._requests.get(token, []) if now - t < window]
            if len(recent) >= limit:
                self._requests[token] = recent
                self.rate_refusals += 1
                return _json(429, {"error": "Rate limit exceeded"},
                             {"Retry-After": str(max(1, math.ceil(window - (now - recent[0]))))})
            self._requests[token] = [*recent, now]
        return None

    def _request(self, rest: str, params: dict[str, str], headers: Any, method: str):
        from simulator.platforms import _json

        auth = headers.get("Authorization") or ""
        token = auth.removeprefix("Token token=").strip('"') if auth.startswith("Token token=") else ""
        tenant = self.tokens.get(token)
        if tenant is None:
            return _json(401, {"error": "HTTP Token: Access denied."})
        return self._limited(token) or self.apis._fault() or self._episodes(rest, params, tenant)

    def _episodes(self, rest: str, params: dict[str, str], tenant: str):
        from simulator.platforms import _json

        parts = rest.split("/")
        if len(parts) != 5 or parts[0] != "networks" or parts[2] != "podcasts" or parts[4] != "episodes":
            return _json(404, {"error": "Not Found"})
        show = self.shows.get((parts[1], parts[3]))
        if show is None or show.tenant_id != tenant:
            return _json(404, {"error": "Not Found"})
        try:
            page = max(1, int(params.get("page", "1")))
            per_page = min(PER_PAGE_MAX, max(1, int(params.get("per_page", str(PER_PAGE_DEFAULT)))))
        except ValueError:
            return _json(400, {"error": "page and per_page are numbers"})
        episodes = sorted(show.episodes, key=lambda e: (e.published_at, e.episode_id), reverse=True)
        chunk = episodes[(page - 1) * per_page: page * per_page]
        path = f"{self.apis.base_url}/megaphone/api/{rest}"
        links = []
        if page * per_page < len(episodes):
            links.append(f'<{path}?{urlencode({"page": page + 1, "per_page": per_page})}>; rel="next"')
        last = max(1, math.ceil(len(episodes) / per_page))
        links.append(f'<{path}?{urlencode({"page": last, "per_page": per_page})}>; rel="last"')
        return _json(200, [catalog_episode(self.seed, show, e) for e in chunk], {
            "Link": ", ".join(links), "X-Total": str(len(episodes)), "X-Page": str(page), "X-Per-Page": str(per_page)})


def megaphone_routes(apis: Any) -> dict[str, Any]:
    """The Megaphone catalog's route entries for a `PlatformApis` (built once per instance)."""
    with apis._lock:
        handler = apis.__dict__.get("_megaphone")
        if handler is None:
            handler = apis._megaphone = MegaphoneApi(apis)
    return handler.routes
