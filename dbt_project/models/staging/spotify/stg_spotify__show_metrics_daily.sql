with source as (
    select * from {{ source('spotify', 'spotify_show_metrics_daily') }}
),

renamed as (
    select
        'spotify'::text as platform,
        tenant_id,
        show_id as source_show_id,
        metric_date,
        starts,
        streams,
        listeners,
        followers,
        _ingested_at as ingested_at
    from source
)

select * from renamed
