{{ config(indexes=[{'columns': ['tenant_id', 'episode_id']}],
          materialized='table') }}
-- One row per placement and episode it covers, with the bytes a download must cover for the ad
-- to count as delivered (IAB): the ad sits at ID3 allowance + offset of the audio (bytes per
-- second from the episode's size and duration, as for the one-minute rule).
--   baked-in ad starting in the first 25 % of the file: 25 % of the file;
--   other baked-in ads: the ad's first byte;
--   dynamically inserted ad: every byte of the ad.
-- An ad past the end of the file is never delivered (its threshold exceeds the file); an episode
-- of unknown duration needs the whole file. Placements whose show or episode
-- is in no feed are kept with a null episode (reported by a test, never silently dropped).
with placements as (
    select
        placements.*,
        campaigns.sponsor_id,
        campaigns.flight_start,
        campaigns.flight_end,
        greatest(placements.ingested_at, campaigns.ingested_at) as loaded_at
    from {{ ref('stg_campaigns__placements') }} as placements
    inner join {{ ref('stg_campaigns__campaigns') }} as campaigns
        on campaigns.tenant_id = placements.tenant_id and campaigns.campaign_id = placements.campaign_id
),

episodes as (
    select tenant_id, feed_url, guid, episode_id, podcast_id, enclosure_length_bytes, duration_seconds
    from {{ ref('stg_rss__episodes') }}
),

covered as (
    select
        placements.*,
        episodes.episode_id,
        episodes.podcast_id,
        episodes.enclosure_length_bytes,
        episodes.duration_seconds,
        greatest(placements.start_date, placements.flight_start) as active_from,
        least(placements.end_date, placements.flight_end) as active_to
    from placements
    left join episodes
        on episodes.tenant_id = placements.tenant_id
        and episodes.feed_url = placements.feed_url
        and (placements.episode_guid is null or episodes.guid = placements.episode_guid)
),

positioned as (
    select
        *,
        case when enclosure_length_bytes > 0 and duration_seconds > 0 then
            {{ var('iab_id3_allowance_bytes') }} + ceil(enclosure_length_bytes * ad_offset_seconds::numeric / duration_seconds)::bigint
        end as ad_start_byte,
        case when enclosure_length_bytes > 0 and duration_seconds > 0 then
            {{ var('iab_id3_allowance_bytes') }}
                + ceil(enclosure_length_bytes * (ad_offset_seconds + ad_duration_seconds)::numeric / duration_seconds)::bigint
        end as ad_end_byte
    from covered
)

select
    tenant_id,
    placement_id,
    campaign_id,
    sponsor_id,
    feed_url,
    episode_guid,
    episode_id,
    podcast_id,
    position,
    insertion,
    active_from,
    active_to,
    ad_offset_seconds,
    ad_duration_seconds,
    enclosure_length_bytes,
    ad_start_byte,
    ad_end_byte,
    case
        when episode_id is null or not enclosure_length_bytes > 0 then null
        when ad_start_byte is null then enclosure_length_bytes
        when insertion = 'dynamic' then ad_end_byte
        when ad_start_byte < enclosure_length_bytes * 0.25 then ceil(enclosure_length_bytes * 0.25)::bigint
        else ad_start_byte
    end as delivery_threshold_bytes,
    loaded_at
from positioned
