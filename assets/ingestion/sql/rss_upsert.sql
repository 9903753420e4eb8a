-- Merge the batch staged in tmp_rss_* into the raw tables. Rows whose content did not change
-- are left untouched, so polling the same feed again changes nothing.
insert into raw.rss_podcasts as t (
    tenant_id, feed_url, final_url, title, link, description_html, language, author, owner_name,
    owner_email, image_url, itunes_type, explicit_raw, categories, podcast_guid, medium,
    new_feed_url, itunes_complete, itunes_block, generator, updated_raw, episode_count,
    parse_degraded, parse_warnings, content_hash, payload, _source, _batch_id
)
select
    tenant_id, feed_url, final_url, title, link, description_html, language, author, owner_name,
    owner_email, image_url, itunes_type, explicit_raw, categories, podcast_guid, medium,
    new_feed_url, itunes_complete, itunes_block, generator, updated_raw, episode_count,
    parse_degraded, parse_warnings, content_hash, payload, 'rss', _batch_id
from tmp_rss_podcasts
on conflict (tenant_id, feed_url) do update set
    final_url = excluded.final_url, title = excluded.title, link = excluded.link,
    description_html = excluded.description_html, language = excluded.language,
    author = excluded.author, owner_name = excluded.owner_name, owner_email = excluded.owner_email,
    image_url = excluded.image_url, itunes_type = excluded.itunes_type,
    explicit_raw = excluded.explicit_raw, categories = excluded.categories,
    podcast_guid = excluded.podcast_guid, medium = excluded.medium,
    new_feed_url = excluded.new_feed_url, itunes_complete = excluded.itunes_complete,
    itunes_block = excluded.itunes_block, generator = excluded.generator,
    updated_raw = excluded.updated_raw, episode_count = excluded.episode_count,
    parse_degraded = excluded.parse_degraded, parse_warnings = excluded.parse_warnings,
    content_hash = excluded.content_hash, payload = excluded.payload,
    _ingested_at = now(), _batch_id = excluded._batch_id
where t.content_hash is distinct from excluded.content_hash;

insert into raw.rss_episodes as t (
    tenant_id, feed_url, guid, guid_source, feed_position, title, itunes_title, link,
    description_html, description_text, published_raw, published_at, duration_raw,
    duration_seconds, explicit_raw, itunes_episode_type, season_raw, season_number, episode_raw,
    episode_number, enclosure_url, enclosure_length, enclosure_type, image_url, transcripts,
    chapters_url, chapters_type, parse_degraded, content_hash, payload, _source, _batch_id
)
select
    tenant_id, feed_url, guid, guid_source, feed_position, title, itunes_title, link,
    description_html, description_text, published_raw, published_at, duration_raw,
    duration_seconds, explicit_raw, itunes_episode_type, season_raw, season_number, episode_raw,
    episode_number, enclosure_url, enclosure_length, enclosure_type, image_url, transcripts,
    chapters_url, chapters_type, parse_degraded, content_hash, payload, 'rss', _batch_id
from tmp_rss_episodes
on conflict (tenant_id, feed_url, guid) do update set
    guid_source = excluded.guid_source, feed_position = excluded.feed_position,
    title = excluded.title, itunes_title = excluded.itunes_title, link = excluded.link,
    description_html = excluded.description_html, description_text = excluded.description_text,
    published_raw = excluded.published_raw, published_at = excluded.published_at,
    duration_raw = excluded.duration_raw, duration_seconds = excluded.duration_seconds,
    explicit_raw = excluded.explicit_raw, itunes_episode_type = excluded.itunes_episode_type,
    season_raw = excluded.season_raw, season_number = excluded.season_number,
    episode_raw = excluded.episode_raw, episode_number = excluded.episode_number,
    enclosure_url = excluded.enclosure_url, enclosure_length = excluded.enclosure_length,
    enclosure_type = excluded.enclosure_type, image_url = excluded.image_url,
    transcripts = excluded.transcripts, chapters_url = excluded.chapters_url,
    chapters_type = excluded.chapters_type, parse_degraded = excluded.parse_degraded,
    content_hash = excluded.content_hash,
    payload = excluded.payload, _ingested_at = now(), _batch_id = excluded._batch_id
where t.content_hash is distinct from excluded.content_hash;
