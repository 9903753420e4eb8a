with source as (
    select * from {{ source('apple', 'apple_episodes') }}
),

renamed as (
    select
        {{ platform_episode_key("'apple'", 'tenant_id', 'show_id', 'episode_id') }} as platform_episode_key,
        'apple'::text as platform,
        tenant_id,
        show_id as source_show_id,
        episode_id as platform_episode_id,
        -- the guid Apple read from the feed (the enclosure URL when the item has none)
        nullif(btrim(guid), '') as guid,
        title,
        nullif(btrim(enclosure_url), '') as enclosure_url,
        released_at as published_at,
        duration_seconds,
        null::integer as season_number,
        episode_number,
        'published'::text as status,
        nullif(btrim(feed_url), '') as feed_url,
        _ingested_at as ingested_at,
        _batch_id as batch_id,
        lower(nullif(btrim(episode_type), '')) as episode_type
    from source
)

select * from renamed
