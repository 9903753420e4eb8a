"""Ground truth: what a correct pipeline must conclude about every feed and episode."""

from __future__ import annotations

from datetime import timezone
from typing import Any

from simulator.feeds import description_text
from simulator.network import FEED_DEFECTS, ITEM_DEFECTS, Network
from simulator.transcripts import episode_documents, has_timed_transcript, show_notes_text

EXPLICIT = {"yes": True, "true": True, "explicit": True, "no": False, "false": False, "clean": False}


def ground_truth(network: Network, base_url: str) -> dict[str, Any]:
    feeds, podcasts, episodes = [], [], []
    for show in network.shows:
        feed_url = base_url + show.path
        reason = FEED_DEFECTS.get(show.feed_defect) if show.feed_defect else None
        feeds.append({
            "tenant_id": show.tenant_id, "feed_url": feed_url, "defect": show.feed_defect,
            "expected": "quarantined" if reason else "ok", "reason_code": reason,
        })
        if reason:
            continue
        valid = 0
        for ep in show.episodes:
            item_reason = ITEM_DEFECTS.get(ep.defect) if ep.defect else None
            guid = ep.guid if ep.guid is not None else ep.enclosure_url
            row: dict[str, Any] = {
                "tenant_id": show.tenant_id, "feed_url": feed_url, "guid": guid,
                "title": ep.title, "valid": item_reason is None, "reason_code": item_reason,
            }
            if item_reason is None:
                valid += 1
                explicit = EXPLICIT.get(ep.explicit_raw) if ep.explicit_raw else None
                docs = episode_documents(show, ep, base_url)
                row.update({
                    "published_at": ep.published.astimezone(timezone.utc).isoformat() if ep.published else None,
                    "duration_seconds": ep.duration_seconds,
                    "explicit": show.explicit if explicit is None else explicit,
                    "season_number": ep.season,
                    "episode_number": ep.number,
                    "episode_type": ep.episode_type,
                    "enclosure_url": ep.enclosure_url,
                    "enclosure_url_normalized": ep.enclosure_normalized,
                    "enclosure_length": ep.enclosure_length,
                    "enclosure_type": ep.enclosure_type,
                    "transcript_urls": [d.url for d in docs if d.kind == "transcript"],
                    "chapters_url": next((d.url for d in docs if d.kind == "chapters"), None),
                    "timed_transcript": has_timed_transcript(show, ep),
                    "description_text": description_text(ep.description_parts) + show_notes_text(show, ep),
                })
            episodes.append(row)
        podcasts.append({
            "tenant_id": show.tenant_id, "feed_url": feed_url, "title": show.title,
            "podcast_guid": show.podcast_guid(base_url) if show.podcast20 else None,
            "explicit": show.explicit, "category": show.category, "valid_episode_count": valid,
        })
    return {
        "seed": network.seed, "base_url": base_url, "tenants": network.tenants,
        "feeds": feeds, "podcasts": podcasts, "episodes": episodes,
    }
