{#- A table: it reads two staging views (a view on two views deadlocks parallel rebuilds). -#}
{{ config(materialized='table', indexes=[{'columns': ['tenant_id', 'episode_id']}]) }}
-- Every ad slot and show-notes mention of an episode, one row each, from two sources
-- (`slot_source`):
--   detector           the slots the ad-slot detector found (int_ad_slot_sponsors, with the
--                      sponsor of the tenant's list each names);
--   simplecast_marker  the ad markers Simplecast reports for the episode (dynamic insertion
--                      points), as breaks (kind break) starting at the marker's offset, with no
--                      end and no sponsor, mapped to the feed episode through
--                      int_episodes_unified. A marker within 15 s of a detected slot of the
--                      episode is left out (the same break, already there with its sponsor and
--                      length).
-- Position: the marker's type (preroll, midroll, postroll).
with detected as (
    select * from {{ ref('int_ad_slot_sponsors') }}
),

markers as (
    select
        md5('simplecast|' || markers.ad_marker_key) as ad_slot_id,
        episodes.episode_id,
        episodes.podcast_id,
        episodes.tenant_id,
        episodes.feed_url,
        episodes.guid,
        markers.offset_seconds,
        case markers.ad_position when 'preroll' then 'pre' when 'midroll' then 'mid' when 'postroll' then 'post' end
            as position,
        concat_ws(' ', 'Simplecast ad marker', markers.marker_name,
                  '(up to ' || markers.max_ads || case when markers.max_ads = 1 then ' ad)' else ' ads)' end)
            as evidence,
        markers.ingested_at
    from {{ ref('stg_simplecast__ad_markers') }} as markers
    inner join {{ ref('int_episodes_unified') }} as unified
        on unified.platform_episode_key = markers.platform_episode_key and unified.episode_id is not null
    inner join {{ ref('stg_rss__episodes') }} as episodes on episodes.episode_id = unified.episode_id
)

select
    ad_slot_id, episode_id, podcast_id, tenant_id, feed_url, guid, slot_index, 'detector' as slot_source,
    start_seconds, end_seconds, duration_seconds, kind, position, is_timed, sponsor_brand, sponsor_domain,
    vanity_url, promo_code, promo_code_key, sponsor_key, sponsor_id, sponsor_name, sponsor_match, confidence,
    evidence, evidence_sources, detector_version, ingested_at
from detected
union all
select
    markers.ad_slot_id, markers.episode_id, markers.podcast_id, markers.tenant_id, markers.feed_url, markers.guid,
    null::integer, 'simplecast_marker', markers.offset_seconds, null::numeric, null::numeric, 'break',
    markers.position, true, null::text, null::text, null::text, null::text, null::text, null::text, null::text,
    null::text, null::text, 1.000::numeric, markers.evidence, array['simplecast_ad_marker']::text[],
    'simplecast_ad_markers', markers.ingested_at
from markers
where not exists (
    select 1 from detected
    where detected.episode_id = markers.episode_id and detected.kind <> 'show_notes'
        and detected.start_seconds is not null
        and markers.offset_seconds between detected.start_seconds - 15
            and coalesce(detected.end_seconds, detected.start_seconds) + 15)
