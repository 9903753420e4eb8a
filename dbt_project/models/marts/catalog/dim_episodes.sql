with episodes as (
    select * from {{ ref('stg_rss__episodes') }}
),

podcasts as (
    select podcast_id, is_explicit as podcast_is_explicit from {{ ref('dim_podcasts') }}
),

transcripts as (
    select
        episodes.episode_id,
        array_agg(t.value ->> 'url' order by t.ordinality) as transcript_urls,
        array_agg(t.value ->> 'type' order by t.ordinality) as transcript_types
    from episodes
    cross join lateral jsonb_array_elements(coalesce(episodes.transcripts, '[]'::jsonb)) with ordinality as t (value, ordinality)
    where t.value ->> 'url' is not null
    group by episodes.episode_id
),

platform_ids as (
    select
        episode_id,
        {%- for platform in platform_models() %}
        max(platform_episode_id) filter (where platform = '{{ platform }}') as {{ platform }}_episode_id,
        {%- endfor %}
        jsonb_object_agg(platform, platform_episode_id order by platform) as platform_episode_ids,
        array_agg(platform order by platform) as platforms
    from {{ ref('int_episodes_unified') }}
    where episode_id is not null
    group by episode_id
),

normalized as (
    select
        episodes.episode_id,
        encode(sha256(convert_to(episodes.guid, 'UTF8')), 'hex') as episode_key,
        episodes.podcast_id,
        episodes.tenant_id,
        episodes.feed_url,
        episodes.guid,
        episodes.guid_source,
        coalesce(nullif(btrim(episodes.title), ''), episodes.itunes_title) as title,
        episodes.itunes_title,
        episodes.description_text,
        episodes.episode_url,
        (episodes.published_at at time zone 'UTC') as published_at_utc,
        episodes.published_raw,
        episodes.duration_seconds,
        case
            when episodes.duration_seconds is not null
                then make_interval(secs => episodes.duration_seconds)
        end as duration,
        coalesce({{ explicit_flag('episodes.explicit_raw') }}, podcasts.podcast_is_explicit) as is_explicit,
        case
            when {{ explicit_flag('episodes.explicit_raw') }} is not null then 'episode'
            when podcasts.podcast_is_explicit is not null then 'podcast'
        end as explicit_source,
        case
            when episodes.episode_type_raw in ('full', 'trailer', 'bonus') then episodes.episode_type_raw
            else 'full'
        end as episode_type,
        episodes.season_number,
        episodes.episode_number,
        btrim(episodes.enclosure_url) as enclosure_url,
        {{ normalize_enclosure_url('episodes.enclosure_url') }} as enclosure_url_normalized,
        episodes.enclosure_length_bytes,
        episodes.enclosure_type,
        case
            when episodes.enclosure_length_bytes > 0 and episodes.duration_seconds > 0
                then round(episodes.enclosure_length_bytes * 8.0 / episodes.duration_seconds)::bigint
        end as estimated_bitrate_bps,
        coalesce(transcripts.transcript_urls, array[]::text[]) as transcript_urls,
        coalesce(transcripts.transcript_types, array[]::text[]) as transcript_types,
        transcripts.transcript_urls is not null as has_transcript,
        episodes.chapters_url,
        episodes.chapters_url is not null as has_chapters,
        episodes.image_url,
        {%- for platform in platform_models() %}
        platform_ids.{{ platform }}_episode_id,
        {%- endfor %}
        coalesce(platform_ids.platform_episode_ids, '{}'::jsonb) as platform_episode_ids,
        coalesce(platform_ids.platforms, array[]::text[]) as platforms,
        coalesce(episodes.parse_degraded, false) as parse_degraded,
        episodes.ingested_at
    from episodes
    inner join podcasts on podcasts.podcast_id = episodes.podcast_id
    left join transcripts on transcripts.episode_id = episodes.episode_id
    left join platform_ids on platform_ids.episode_id = episodes.episode_id
)

select * from normalized
