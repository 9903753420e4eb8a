-- The Megaphone API's catalog (guid, title, date, media URL: what int_episodes_unified matches
-- feed items by), plus any episode the delivery exports name that the catalog does not list (yet):
-- those have no details and stay unmatched ('no_episode_details'), their metrics kept.
with catalog as (
    select * from {{ source('megaphone', 'megaphone_episodes') }}
),

exported as (
    select tenant_id, podcast_id, episode_id, max(_ingested_at) as _ingested_at
    from {{ source('megaphone', 'megaphone_episode_metrics_daily') }}
    group by tenant_id, podcast_id, episode_id
),

catalogued as (
    select
        tenant_id,
        podcast_id,
        episode_id,
        nullif(btrim(guid), '') as guid,
        title,
        nullif(btrim(audio_url), '') as enclosure_url,
        published_at,
        duration_seconds,
        lower(coalesce(nullif(btrim(status), ''), 'published')) as status,
        _ingested_at,
        _batch_id
    from catalog
),

exported_only as (
    select
        exported.tenant_id,
        exported.podcast_id,
        exported.episode_id,
        null::text as guid,
        null::text as title,
        null::text as enclosure_url,
        null::timestamptz as published_at,
        null::integer as duration_seconds,
        null::text as status,
        exported._ingested_at,
        null::text as _batch_id
    from exported
    left join catalog
        on catalog.tenant_id = exported.tenant_id
        and catalog.podcast_id = exported.podcast_id
        and catalog.episode_id = exported.episode_id
    where catalog.episode_id is null
),

episodes as (
    select * from catalogued
    union all
    select * from exported_only
),

renamed as (
    select
        {{ platform_episode_key("'megaphone'", 'tenant_id', 'podcast_id', 'episode_id') }} as platform_episode_key,
        'megaphone'::text as platform,
        tenant_id,
        podcast_id as source_show_id,
        episode_id as platform_episode_id,
        guid,
        title,
        enclosure_url,
        published_at,
        duration_seconds,
        null::integer as season_number,
        null::integer as episode_number,
        status,
        null::text as feed_url,
        _ingested_at as ingested_at,
        _batch_id as batch_id
    from episodes
)

select * from renamed
