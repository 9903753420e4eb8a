with source as (
    select * from {{ source('apple', 'apple_episode_metrics_daily') }}
),

renamed as (
    select
        {{ platform_episode_key("'apple'", 'tenant_id', 'show_id', 'episode_id') }} as platform_episode_key,
        'apple'::text as platform,
        tenant_id,
        show_id as source_show_id,
        episode_id as platform_episode_id,
        metric_date,
        plays,
        listeners,
        engaged_listeners,
        time_listened_seconds as seconds_listened,
        _ingested_at as ingested_at
    from source
)

select * from renamed
