with source as (
    select * from {{ source('podbean', 'podbean_episodes') }}
),

renamed as (
    select
        {{ platform_episode_key("'podbean'", 'tenant_id', 'podcast_id', 'episode_id') }} as platform_episode_key,
        'podbean'::text as platform,
        tenant_id,
        podcast_id as source_show_id,
        episode_id as platform_episode_id,
        -- Podbean's episode object has no guid: the media URL and title + date identify it
        null::text as guid,
        title,
        nullif(btrim(media_url), '') as enclosure_url,
        published_at,
        duration_seconds,
        season_number,
        episode_number,
        case lower(btrim(status))
            when 'publish' then 'published'
            when 'future' then 'scheduled'
            when 'draft' then 'draft'
            else coalesce(lower(nullif(btrim(status), '')), 'published')
        end as status,
        null::text as feed_url,
        _ingested_at as ingested_at,
        _batch_id as batch_id
    from source
)

select * from renamed
