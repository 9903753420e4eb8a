with source as (
    select * from {{ source('rss', 'rss_episodes') }}
),

renamed as (
    select
        {{ rss_episode_id() }} as episode_id,
        {{ rss_podcast_id() }} as podcast_id,
        tenant_id,
        feed_url,
        guid,
        guid_source,
        feed_position,
        title,
        itunes_title,
        link as episode_url,
        description_html,
        description_text,
        published_raw,
        published_at,
        duration_raw,
        duration_seconds,
        lower(btrim(explicit_raw)) as explicit_raw,
        lower(btrim(itunes_episode_type)) as episode_type_raw,
        season_number,
        episode_number,
        enclosure_url,
        enclosure_length::bigint as enclosure_length_bytes,
        lower(btrim(enclosure_type)) as enclosure_type,
        image_url,
        transcripts,
        chapters_url,
        chapters_type,
        parse_degraded,
        _ingested_at as ingested_at,
        _batch_id as batch_id
    from source
)

select * from renamed
