"""RSS 2.0 rendering of a simulated show, with iTunes and Podcasting 2.0 tags."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime
from xml.sax.saxutils import escape, quoteattr

from simulator.network import Episode, Show

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


QUALITY_DEFECTS = {
    "nulls": "items lose their duration and enclosure type",
    "duplicates": "every item is published a second time under another guid",
    "out_of_range": "durations of 115 days",
    "late_data": "items dated two months back appear only now",
    "schema_drift": "the enclosure is renamed to an unknown <media> element",
}
LATE_ITEMS = 6


def _item(show: Show, ep: Episode, index: int) -> str:
    defect = show.quality_defect
    if defect == "nulls":
        ep = replace(ep, duration_seconds=None, enclosure_type="")
    elif defect == "out_of_range" and ep.duration_seconds is not None:
        ep = replace(ep, duration_seconds=9_999_999, duration_format="seconds")
    text = _item_text(show, ep, index)
    if defect == "nulls":
        text = text.replace(' type=""', "")
    elif defect == "schema_drift":
        text = text.replace("<enclosure url=", "<media url=")
    elif defect == "duplicates" and ep.guid:
        text += "\n" + _item_text(show, replace(ep, guid=ep.guid + "-copy"), index)
    return text


def late_items(show: Show) -> list[Episode]:
    """Items dated two months before the newest one, published only now (`late_data`)."""
    newest = max((e for e in show.episodes if e.published and e.guid and e.defect is None), key=lambda e: e.published)
    return [replace(newest, guid=f"{newest.guid}-late-{i}", title=f"{newest.title} (from the archive {i})",
                    published=newest.published - timedelta(days=60 + i),
                    enclosure_url=newest.enclosure_url.replace(".mp3", f"-late{i}.mp3") if newest.enclosure_url else None)
            for i in range(LATE_ITEMS)]


def _item_text(show: Show, ep: Episode, index: int) -> str:
    lines = ["<item>"]
    if ep.title is not None:
        lines.append(f"<title>{escape(ep.title)}</title>")
    if ep.guid is not None:
        lines.append(f'<guid isPermaLink="false">{escape(ep.guid)}</guid>')
    if ep.published is not None:
        lines.append(f"<pubDate>{format_date(ep.published, ep.date_format)}</pubDate>")
    else:
        lines.append("<pubDate>sometime last week</pubDate>")
    html = description_html(ep.description_parts)
    if index % 2:
        lines.append(f"<description><![CDATA[{html}]]></description>")
    else:
        lines.append(f"<description>{escape(html)}</description>")
    if ep.enclosure_url is not None:
        lines.append(
            f"<enclosure url={quoteattr(ep.enclosure_url)} length=\"{ep.enclosure_length}\" type=\"{ep.enclosure_type}\"/>"
        )
    if ep.duration_seconds is not None:
        lines.append(f"<itunes:duration>{format_duration(ep.duration_seconds, ep.duration_format)}</itunes:duration>")
    if ep.explicit_raw is not None:
        lines.append(f"<itunes:explicit>{ep.explicit_raw}</itunes:explicit>")
    lines.append(f"<itunes:episodeType>{ep.episode_type}</itunes:episodeType>")
    if ep.episode_raw is not None:
        tag = "podcast:episode" if show.podcast20 and index % 3 == 0 else "itunes:episode"
        lines.append(f"<{tag}>{escape(ep.episode_raw)}</{tag}>")
    if ep.season is not None:
        if show.podcast20 and index % 3 == 0:
            lines.append(f'<podcast:season name="Season {ep.season}">{ep.season}</podcast:season>')
        else:
            lines.append(f"<itunes:season>{ep.season}</itunes:season>")
    for t in ep.transcripts:
        attrs = " ".join(f"{k}={quoteattr(v)}" for k, v in t.items())
        lines.append(f"<podcast:transcript {attrs}/>")
    if ep.chapters_url:
        lines.append(f'<podcast:chapters url={quoteattr(ep.chapters_url)} type="application/json+chapters"/>')
    lines.append("</item>")
    return "\n".join(lines)


def render_feed(show: Show, base_url: str, encoding: str = "utf-8", padding_bytes: int = 0) -> str:
    """The feed's XML text; the caller encodes it (the encoding is declared as given)."""
    newest = max((e.published for e in show.episodes if e.published), default=datetime(2026, 1, 1, tzinfo=timezone.utc))
    build = newest + timedelta(hours=show.version)
    episodes = show.episodes + (late_items(show) if show.quality_defect == "late_data" else [])
    items = "\n".join(_item(show, ep, i) for i, ep in enumerate(episodes))
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
