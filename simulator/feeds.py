"""RSS 2.0 rendering of a simulated show, with iTunes and Podcasting 2.0 tags."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone
from typing import Any
from email.utils import format_datetime
from xml.sax.saxutils import escape, quoteattr

from simulator.network import ITEM_DEFECTS, Episode, Network, Show
from simulator.transcripts import episode_documents, show_notes_html

NAMED_ZONES = {"EST": -5, "PST": -8, "CST": -6}


def format_date(when: datetime, style: str) -> str:
    if style == "rfc_utc":
        return format_datetime(when.astimezone(timezone.utc))  # "... +0000"
    if style == "rfc_gmt":
        return format_datetime(when.astimezone(timezone.utc), usegmt=True)
    if style == "rfc_offset":
        return format_datetime(when.astimezone(timezone(timedelta(hours=-5))))
    if style == "rfc_named":
        local = when.astimezone(timezone(timedelta(hours=-8)))
        return local.strftime("%a, %d %b %Y %H:%M:%S") + " PST"
    return when.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def format_duration(seconds: int, style: str) -> str:
    if seconds < 0 or style == "seconds":
        return str(seconds)
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    if style == "mmss":
        return f"{h * 60 + m}:{s:02d}"
    if style == "hms_padded":
        return f"{h:02d}:{m:02d}:{s:02d}"
    return f"{h}:{m:02d}:{s:02d}"


def description_html(parts: tuple[str, str, str]) -> str:
    first, second, link = parts
    return f'<p>{escape(first)}</p><p>{escape(second)} &amp; <a href="https://example.com/notes">{escape(link)}</a>.</p>'


def description_text(parts: tuple[str, str, str]) -> str:
    first, second, link = parts
    return f"{first} {second} & {link}."


@dataclass(frozen=True)
class FeedShapes:
    """Shapes real feeds and feed hosts have that the demo's feeds do not, each off by default
    (the demo and the tests built on it keep their feeds byte for byte). `shapes_truth` says what
    a correct poller stores for them.

    - `zero_length_rate`: share of items whose enclosure says `length="0"` (Planet Money: 247 of
      355), which means "unknown".
    - `bogus_length_rate`: share of items with `length="1"`, a placeholder some generators write.
    - `uppercase_explicit`: `itunes:explicit` written `Yes` / `No` / `True` / `Clean`.
    - `undefined_entity_feeds`: this many usable feeds write `&nbsp;` (defined in HTML, not in
      XML) in every item title: the document is not well-formed; recovered, the title reads
      "<title> Live" and the items are `parse_degraded`.
    - `shared_feeds`: this many usable feeds are listed by a second tenant as well (the next
      tenant of the network), as when two networks carry one show.
    A 304 without validators is a server switch: `SimulatorServer.validators_on_304 = False`.
    """

    zero_length_rate: float = 0.0
    bogus_length_rate: float = 0.0
    uppercase_explicit: bool = False
    undefined_entity_feeds: int = 0
    shared_feeds: int = 0

    def _share(self, show: Show, ep: Episode) -> float:
        digest = hashlib.sha256(f"{show.path}#{ep.index}".encode()).digest()
        return int.from_bytes(digest[:4], "big") / 2**32

    def enclosure_length(self, show: Show, ep: Episode) -> int:
        """The length the feed states for the item."""
        share = self._share(show, ep)
        if share < self.zero_length_rate:
            return 0
        if share < self.zero_length_rate + self.bogus_length_rate:
            return 1
        return ep.enclosure_length

    def explicit(self, value: str) -> str:
        return value.capitalize() if self.uppercase_explicit else value

    def usable_shows(self, network: Network) -> list[Show]:
        return sorted((s for s in network.shows if s.feed_defect is None and s.quality_defect is None),
                      key=lambda s: s.path)

    def entity_shows(self, network: Network) -> set[str]:
        return {s.path for s in self.usable_shows(network)[: self.undefined_entity_feeds]}

    def shared(self, network: Network) -> list[tuple[str, Show]]:
        """(the second tenant, the show it also lists)."""
        tenants = network.tenants
        return [(tenants[(tenants.index(s.tenant_id) + 1) % len(tenants)] if len(tenants) > 1 else f"{s.tenant_id}-b", s)
                for s in self.usable_shows(network)[: self.shared_feeds]]


NO_SHAPES = FeedShapes()


def shapes_truth(network: Network, base_url: str, shapes: FeedShapes) -> dict[str, Any]:
    """What a correct poller stores for the shapes, beside `simulator.truth.ground_truth`:

    - `episodes`: {(feed URL, guid) of each valid item: the fields whose value the shapes change}: the stated
      `enclosure_length` (None for 0: unknown), `explicit_raw` as written, the `title` of a
      recovered item, and `parse_degraded`;
    - `degraded_feeds`: the feed URLs recovered from XML that is not well-formed;
    - `shared_sources`: the extra (tenant, feed URL) pairs of the feed list; each gets the same
      episodes as the feed's own tenant.
    """
    entity = shapes.entity_shows(network)
    episodes: dict[tuple[str, str], dict[str, Any]] = {}
    for show in network.shows:
        if show.feed_defect is not None:
            continue
        feed_url = base_url + show.path
        for ep in show.episodes:
            if ep.defect and ITEM_DEFECTS.get(ep.defect):
                continue  # quarantined: nothing stored (a duplicate guid would hide the original)
            guid = ep.guid if ep.guid is not None else ep.enclosure_url
            length = shapes.enclosure_length(show, ep)
            episodes[(feed_url, guid)] = {
                "enclosure_length": length or None,
                "explicit_raw": shapes.explicit(ep.explicit_raw) if ep.explicit_raw is not None else None,
                "title": f"{ep.title} Live" if show.path in entity and ep.title is not None else ep.title,
                "parse_degraded": show.path in entity,
            }
    return {
        "episodes": episodes,
        "degraded_feeds": sorted(base_url + path for path in entity),
        "shared_sources": [(tenant, base_url + show.path) for tenant, show in shapes.shared(network)],
    }


QUALITY_DEFECTS = {
    "nulls": "items lose their duration and enclosure type",
    "duplicates": "every item is published a second time under another guid",
    "out_of_range": "durations of 115 days",
    "late_data": "items dated two months back appear only now",
    "schema_drift": "the enclosure is renamed to an unknown <media> element",
}
LATE_ITEMS = 6


def _item(show: Show, ep: Episode, index: int, shapes: FeedShapes = NO_SHAPES, entity: bool = False,
          base_url: str = "") -> str:
    defect = show.quality_defect
    if defect == "nulls":
        ep = replace(ep, duration_seconds=None, enclosure_type="")
    elif defect == "out_of_range" and ep.duration_seconds is not None:
        ep = replace(ep, duration_seconds=9_999_999, duration_format="seconds")
    text = _item_text(show, ep, index, shapes, entity, base_url)
    if defect == "nulls":
        text = text.replace(' type=""', "")
    elif defect == "schema_drift":
        text = text.replace("<enclosure url=", "<media url=")
    elif defect == "duplicates" and ep.guid:
        text += "\n" + _item_text(show, replace(ep, guid=ep.guid + "-copy"), index, shapes, entity, base_url)
    return text


def late_items(show: Show) -> list[Episode]:
    """Items dated two months before the newest one, published only now (`late_data`)."""
    newest = max((e for e in show.episodes if e.published and e.guid and e.defect is None), key=lambda e: e.published)
    return [replace(newest, guid=f"{newest.guid}-late-{i}", title=f"{newest.title} (from the archive {i})",
                    published=newest.published - timedelta(days=60 + i),
                    enclosure_url=newest.enclosure_url.replace(".mp3", f"-late{i}.mp3") if newest.enclosure_url else None)
            for i in range(LATE_ITEMS)]


def _item_text(show: Show, ep: Episode, index: int, shapes: FeedShapes = NO_SHAPES,
               entity: bool = False, base_url: str = "") -> str:
    lines = ["<item>"]
    if ep.title is not None:
        # `&nbsp;` is not one of XML's five entities: the document stops being well-formed.
        lines.append(f"<title>{escape(ep.title)}{'&nbsp;Live' if entity else ''}</title>")
    if ep.guid is not None:
        lines.append(f'<guid isPermaLink="false">{escape(ep.guid)}</guid>')
    if ep.published is not None:
        lines.append(f"<pubDate>{format_date(ep.published, ep.date_format)}</pubDate>")
    else:
        lines.append("<pubDate>sometime last week</pubDate>")
    html = description_html(ep.description_parts) + show_notes_html(show, ep)
    if index % 2:
        lines.append(f"<description><![CDATA[{html}]]></description>")
    else:
        lines.append(f"<description>{escape(html)}</description>")
    if ep.enclosure_url is not None:
        lines.append(
            f"<enclosure url={quoteattr(ep.enclosure_url)} length=\"{shapes.enclosure_length(show, ep)}\" "
            f"type=\"{ep.enclosure_type}\"/>"
        )
    if ep.duration_seconds is not None:
        lines.append(f"<itunes:duration>{format_duration(ep.duration_seconds, ep.duration_format)}</itunes:duration>")
    if ep.explicit_raw is not None:
        lines.append(f"<itunes:explicit>{shapes.explicit(ep.explicit_raw)}</itunes:explicit>")
    lines.append(f"<itunes:episodeType>{ep.episode_type}</itunes:episodeType>")
    if ep.episode_raw is not None:
        tag = "podcast:episode" if show.podcast20 and index % 3 == 0 else "itunes:episode"
        lines.append(f"<{tag}>{escape(ep.episode_raw)}</{tag}>")
    if ep.season is not None:
        if show.podcast20 and index % 3 == 0:
            lines.append(f'<podcast:season name="Season {ep.season}">{ep.season}</podcast:season>')
        else:
            lines.append(f"<itunes:season>{ep.season}</itunes:season>")
    # Transcripts and chapters, served by the simulator (`simulator.transcripts`).
    for doc in episode_documents(show, ep, base_url):
        if doc.kind == "chapters":
            lines.append(f'<podcast:chapters url={quoteattr(doc.url)} type="{doc.declared_type}"/>')
            continue
        language = ' language="en"' if doc.format != "html" else ""
        rel = ' rel="captions"' if doc.format in ("vtt", "srt") and (show.transcript_ordinal or 0) % 2 else ""
        lines.append(f'<podcast:transcript url={quoteattr(doc.url)} type="{doc.declared_type}"{language}{rel}/>')
    lines.append("</item>")
    return "\n".join(lines)


def render_feed(show: Show, base_url: str, encoding: str = "utf-8", padding_bytes: int = 0,
                shapes: FeedShapes = NO_SHAPES, entity: bool = False) -> str:
    """The feed's XML text; the caller encodes it (the encoding is declared as given). `entity`:
    write an undefined entity in every item title (`FeedShapes.undefined_entity_feeds`)."""
    newest = max((e.published for e in show.episodes if e.published), default=datetime(2026, 1, 1, tzinfo=timezone.utc))
    build = newest + timedelta(hours=show.version)
    episodes = show.episodes + (late_items(show) if show.quality_defect == "late_data" else [])
    items = "\n".join(_item(show, ep, i, shapes, entity, base_url) for i, ep in enumerate(episodes))
    padding = f"<!-- {'x' * padding_bytes} -->" if padding_bytes else ""
    podcast_tags = ""
    if show.podcast20:
        podcast_tags = f"<podcast:guid>{show.podcast_guid(base_url)}</podcast:guid>\n<podcast:medium>podcast</podcast:medium>"
    return f"""<?xml version="1.0" encoding="{encoding}"?>
<rss version="2.0" xmlns:itunes="http://www.itunes.com/dtds/podcast-1.0.dtd" xmlns:podcast="https://podcastindex.org/namespace/1.0" xmlns:content="http://purl.org/rss/1.0/modules/content/">
<channel>
<title>{escape(show.title)}</title>
<link>https://{show.tenant_id}.example.com/{show.slug}</link>
<language>{show.language}</language>
<description>{escape(f"<p>A show about {show.title}.</p>")}</description>
<lastBuildDate>{format_datetime(build, usegmt=True)}</lastBuildDate>
<itunes:author>{escape(show.author)}</itunes:author>
<itunes:owner><itunes:name>{escape(show.author)}</itunes:name><itunes:email>owner@{show.tenant_id}.example.com</itunes:email></itunes:owner>
<itunes:image href="https://cdn.{show.tenant_id}.example.com/{show.slug}/cover.jpg"/>
<itunes:category text={quoteattr(show.category)}/>
<itunes:explicit>{"true" if show.explicit else "false"}</itunes:explicit>
<itunes:type>{show.itunes_type}</itunes:type>
{podcast_tags}
{padding}
{items}
</channel>
</rss>
"""
