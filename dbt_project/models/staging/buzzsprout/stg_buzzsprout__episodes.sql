with source as (
    select * from {{ source('buzzsprout', 'buzzsprout_episodes') }}
),

renamed as (
    select
        {{ platform_episode_key("'buzzsprout'", 'tenant_id', 'podcast_id', 'episode_id') }} as platform_episode_key,
        'buzzsprout'::text as platform,
        tenant_id,
        podcast_id as source_show_id,
        episode_id as platform_episode_id,
        nullif(btrim(guid), '') as guid,
        title,
        nullif(btrim(audio_url), '') as enclosure_url,
        published_at,
        duration_seconds,
        season_number,
        episode_number,
        case
            when payload ->> 'private' = 'true' then 'private'
            when payload ->> 'inactive_at' is not null then 'inactive'
            else 'published'
        end as status,
        null::text as feed_url,
        _ingested_at as ingested_at,
        _batch_id as batch_id
    from source
)

select * from renamed
