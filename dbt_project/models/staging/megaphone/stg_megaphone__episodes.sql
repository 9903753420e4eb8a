-- The exports carry ids only, and no Megaphone episode catalog (guid, title, media URL) is
-- ingested yet: the episodes are the ones the exports name, without anything to match them to a
-- feed item by, so int_episodes_unified reports them unmatched ('no_episode_details').
with source as (
    select tenant_id, podcast_id, episode_id, max(_ingested_at) as _ingested_at
    from {{ source('megaphone', 'megaphone_episode_metrics_daily') }}
    group by tenant_id, podcast_id, episode_id
),

renamed as (
    select
        {{ platform_episode_key("'megaphone'", 'tenant_id', 'podcast_id', 'episode_id') }} as platform_episode_key,
        'megaphone'::text as platform,
        tenant_id,
        podcast_id as source_show_id,
        episode_id as platform_episode_id,
        null::text as guid,
        null::text as title,
        null::text as enclosure_url,
        null::timestamptz as published_at,
        null::integer as duration_seconds,
        null::integer as season_number,
        null::integer as episode_number,
        null::text as status,
        null::text as feed_url,
        _ingested_at as ingested_at,
        null::text as batch_id
    from source
)

select * from renamed
