with source as (
    select * from {{ source('apple', 'apple_show_followers_daily') }}
),

renamed as (
    select
        'apple'::text as platform,
        tenant_id,
        show_id as source_show_id,
        metric_date,
        followers,
        followers_gained,
        followers_lost,
        _ingested_at as ingested_at
    from source
)

select * from renamed
