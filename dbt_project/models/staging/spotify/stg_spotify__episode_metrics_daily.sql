with source as (
    select * from {{ source('spotify', 'spotify_episode_metrics_daily') }}
),

renamed as (
    select
        {{ platform_episode_key("'spotify'", 'tenant_id', 'show_id', 'episode_id') }} as platform_episode_key,
        'spotify'::text as platform,
        tenant_id,
        show_id as source_show_id,
        episode_id as platform_episode_id,
        metric_date,
        starts,
        streams,
        listeners,
        median_completion_percentage,
        median_completion_seconds,
        _ingested_at as ingested_at
    from source
)

select * from renamed
