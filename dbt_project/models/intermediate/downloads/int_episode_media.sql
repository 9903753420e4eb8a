{#- A table with an index: the request models join every request to it. -#}
{{ config(indexes=[{'columns': ['tenant_id', 'media_key']}],
          materialized='table') }}
-- One row per tenant and media file (host + path of the enclosure, measurement prefixes and
-- query removed), with the episode it belongs to and what the feed says of its size and
-- duration. The size a download is measured against is decided in int_media_sizes (the feed's
-- `length` when it is plausible, else what the logs say); requests logged without a host are
-- matched through int_media_paths.
with episodes as (
    select
        episode_id,
        podcast_id,
        tenant_id,
        -- bigint: real feeds carry lengths of 2^31 and more.
        enclosure_length_bytes::bigint as enclosure_length_bytes,
        duration_seconds,
        {{ enclosure_media_key('enclosure_url') }} as media_key,
        {{ enclosure_media_host('enclosure_url') }} as media_host,
        {{ enclosure_media_path('enclosure_url') }} as media_path
    from {{ ref('stg_rss__episodes') }}
),

ranked as (
    select
        *,
        row_number() over (partition by tenant_id, media_key order by episode_id) as media_rank
    from episodes
),

final as (
    select
        tenant_id,
        media_key,
        media_host,
        media_path,
        episode_id,
        podcast_id,
        enclosure_length_bytes,
        duration_seconds
    from ranked
    where media_rank = 1
)

select * from final
