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
--
-- Where the ad sits (`offset_source`):
--   entered   the placement's own ad_offset_seconds (typed in the insertion order or the API);
--   detected  the placement gives none: a baked-in ad is where the ad-slot detector found the
--             campaign's sponsor in that episode (int_ad_slot_sponsors: the sponsor website's
--             domain, or a vanity URL or promo code of the sponsor's campaigns), the slot at the
--             placement's position, else the earliest one; its start (rounded to the second) is
--             the offset and its length the duration (the placement's duration when the slot
--             has no end);
--   unknown   no offset given and none detected (no matching slot, or a dynamically inserted ad,
--             which is added at serve time and is in no published transcript): the offset stays
--             null, ad_start_byte is null and the delivery threshold is the whole file, as for
--             an unknown position (the CASE below).
-- `loaded_at` is the newest of the placement's, its campaign's, the slot's and the episode's last
-- detection (ops.ad_detection_inputs, also when it left no slot): the partition sensor builds the
-- episode's days and the campaign's conversion days again after it moves.
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
        episodes.guid,
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

detected as (
    -- The slot each baked-in placement without an offset takes in each episode it covers.
    select distinct on (covered.tenant_id, covered.placement_id, covered.episode_id)
        covered.tenant_id,
        covered.placement_id,
        covered.episode_id,
        slots.ad_slot_id,
        round(slots.start_seconds)::integer as offset_seconds,
        case when slots.end_seconds is not null then
            greatest(round(slots.end_seconds)::integer - round(slots.start_seconds)::integer, 1)
        end as duration_seconds,
        slots.ingested_at
    from covered
    inner join {{ ref('int_ad_slot_sponsors') }} as slots
        on slots.tenant_id = covered.tenant_id
        and slots.episode_id = covered.episode_id
        and slots.sponsor_id = covered.sponsor_id
    where covered.ad_offset_seconds is null
        and covered.insertion = 'baked_in'
        and slots.kind <> 'show_notes'
        and slots.start_seconds is not null
    order by covered.tenant_id, covered.placement_id, covered.episode_id,
        slots.position is not distinct from covered.position desc, slots.start_seconds, slots.slot_index
),

placed as (
    select
        covered.tenant_id,
        covered.placement_id,
        covered.campaign_id,
        covered.sponsor_id,
        covered.feed_url,
        covered.episode_guid,
        covered.episode_id,
        covered.podcast_id,
        covered.position,
        covered.insertion,
        covered.active_from,
        covered.active_to,
        coalesce(covered.ad_offset_seconds, detected.offset_seconds) as ad_offset_seconds,
        case
            when covered.ad_offset_seconds is null and detected.ad_slot_id is not null
                then coalesce(detected.duration_seconds, covered.ad_duration_seconds)
            else covered.ad_duration_seconds
        end as ad_duration_seconds,
        case
            when covered.ad_offset_seconds is not null then 'entered'
            when detected.ad_slot_id is not null then 'detected'
            else 'unknown'
        end as offset_source,
        detected.ad_slot_id as detected_ad_slot_id,
        covered.enclosure_length_bytes,
        covered.duration_seconds,
        greatest(covered.loaded_at, detected.ingested_at, detections.detected_at) as loaded_at
    from covered
    left join detected
        on detected.tenant_id = covered.tenant_id
        and detected.placement_id = covered.placement_id
        and detected.episode_id = covered.episode_id
    left join {{ source('ad_detection_ops', 'ad_detection_inputs') }} as detections
        on detections.tenant_id = covered.tenant_id
        and detections.feed_url = covered.feed_url
        and detections.guid = covered.guid
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
    from placed
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
    offset_source,
    detected_ad_slot_id,
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
