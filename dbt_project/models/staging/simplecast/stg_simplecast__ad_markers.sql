with source as (
    select * from {{ source('simplecast', 'simplecast_episode_ad_markers') }}
),

renamed as (
    select
        md5({{ platform_episode_key("'simplecast'", 'tenant_id', 'podcast_id', 'episode_id') }} || '|' || marker_id)
            as ad_marker_key,
        {{ platform_episode_key("'simplecast'", 'tenant_id', 'podcast_id', 'episode_id') }} as platform_episode_key,
        'simplecast'::text as platform,
        tenant_id,
        podcast_id as source_show_id,
        episode_id as platform_episode_id,
        marker_id,
        lower(nullif(btrim(ad_type), '')) as ad_position,
        offset_seconds,
        ad_limit as max_ads,
        nullif(btrim(name), '') as marker_name,
        _ingested_at as ingested_at,
        _batch_id as batch_id
    from source
)

select * from renamed
