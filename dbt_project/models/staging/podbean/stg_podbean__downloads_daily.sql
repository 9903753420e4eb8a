with source as (
    select * from {{ source('podbean', 'podbean_episode_downloads_daily') }}
),

renamed as (
    select
        {{ platform_episode_key("'podbean'", 'tenant_id', 'podcast_id', 'episode_id') }} as platform_episode_key,
        'podbean'::text as platform,
        tenant_id,
        podcast_id as source_show_id,
        episode_id as platform_episode_id,
        download_date as metric_date,
        downloads,
        _ingested_at as ingested_at
    from source
)

select * from renamed
