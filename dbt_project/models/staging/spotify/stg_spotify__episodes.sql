with source as (
    select * from {{ source('spotify', 'spotify_episodes') }}
),

renamed as (
    select
        {{ platform_episode_key("'spotify'", 'tenant_id', 'show_id', 'episode_id') }} as platform_episode_key,
        'spotify'::text as platform,
        tenant_id,
        show_id as source_show_id,
        episode_id as platform_episode_id,
        -- Spotify shows neither the RSS guid nor the media file: name + release date identify it
        null::text as guid,
        name as title,
        null::text as enclosure_url,
        -- a release date only: midnight UTC of that day
        (release_date::timestamp at time zone 'UTC') as published_at,
        duration_seconds,
        null::integer as season_number,
        null::integer as episode_number,
        'published'::text as status,
        nullif(btrim(feed_url), '') as feed_url,
        _ingested_at as ingested_at,
        _batch_id as batch_id,
        release_date,
        url as spotify_url,
        explicit as is_explicit,
        language
    from source
)

select * from renamed
