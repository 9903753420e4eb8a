with source as (
    select * from {{ source('spotify', 'spotify_show_demographics_daily') }}
),

renamed as (
    select
        'spotify'::text as platform,
        tenant_id,
        show_id as source_show_id,
        metric_date,
        age_bucket,
        lower(gender) as gender,
        listeners,
        share as listener_share,
        _ingested_at as ingested_at
    from source
)

select * from renamed
