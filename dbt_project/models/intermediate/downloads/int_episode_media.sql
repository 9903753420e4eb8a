{#- A table with an index: the request models join every request to it. -#}
{{ config(indexes=[{'columns': ['tenant_id', 'media_key']}],
          materialized='table') }}
-- One row per tenant and media file (host + path of the enclosure, measurement prefixes and
-- query removed), with the bytes a download must cover under IAB v2.3: the ID3 header plus one
-- minute of audio (from size and duration), or the whole file when shorter or unknown.
with episodes as (
    select
        episode_id,
        podcast_id,
        tenant_id,
        enclosure_length_bytes,
        duration_seconds,
        {{ enclosure_media_key('enclosure_url') }} as media_key
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
        episode_id,
        podcast_id,
        enclosure_length_bytes,
        duration_seconds,
        case
            when enclosure_length_bytes is null then null
            when duration_seconds is null or duration_seconds < 60 then enclosure_length_bytes
            else least(
                enclosure_length_bytes,
                {{ var('iab_id3_allowance_bytes') }} + ceil(enclosure_length_bytes * 60.0 / duration_seconds)::bigint
            )
        end as iab_threshold_bytes
    from ranked
    where media_rank = 1
)

select * from final
