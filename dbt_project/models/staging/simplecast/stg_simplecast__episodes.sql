with source as (
    select * from {{ source('simplecast', 'simplecast_episodes') }}
),

renamed as (
    select
        {{ platform_episode_key("'simplecast'", 'tenant_id', 'podcast_id', 'episode_id') }} as platform_episode_key,
        'simplecast'::text as platform,
        tenant_id,
        podcast_id as source_show_id,
        episode_id as platform_episode_id,
        nullif(btrim(guid), '') as guid,
        title,
        nullif(btrim(enclosure_url), '') as enclosure_url,
        published_at,
        duration_seconds,
        season_number,
        episode_number,
        lower(coalesce(nullif(btrim(status), ''), 'published')) as status,
        null::text as feed_url,
        _ingested_at as ingested_at,
        _batch_id as batch_id
    from source
)

select * from renamed
