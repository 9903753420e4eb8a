with source as (
    select * from {{ source('megaphone', 'megaphone_episode_metrics_daily') }}
),

renamed as (
    select
        {{ platform_episode_key("'megaphone'", 'tenant_id', 'podcast_id', 'episode_id') }} as platform_episode_key,
        'megaphone'::text as platform,
        tenant_id,
        podcast_id as source_show_id,
        episode_id as platform_episode_id,
        metric_date,
        downloads,
        unique_listeners as listeners,
        network_id,
        blacklisted_requests,
        bytes_sent,
        seconds_downloaded,
        _ingested_at as ingested_at
    from source
)

select * from renamed
