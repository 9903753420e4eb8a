-- One row per episode with a transcript or a detected ad slot or show-notes mention: how much of
-- it is ads. Slots are those of int_ad_slots (the detector's, and Simplecast's ad markers as
-- breaks). Ad seconds are the summed lengths of its slots in the audio (a slot without an end,
-- such as a break marked by its start only, counts as a slot and adds no seconds).
-- ad_minutes_per_hour = ad seconds / 60 per hour of the episode's duration (from the feed), and
-- only for a measured episode (is_measured): one with a timed transcript (cues with start and end
-- times: a transcript without timings cannot place or time a read) and a known duration; for the
-- others it is null, whatever their slots.
with slots as (
    select * from {{ ref('int_ad_slots') }}
),

transcripts as (
    select episode_id, bool_or(is_timed) as has_timed_transcript
    from {{ ref('stg_transcripts__transcripts') }}
    group by episode_id
),

per_episode as (
    select
        episode_id,
        count(*) filter (where kind <> 'show_notes') as ad_slots,
        coalesce(sum(duration_seconds) filter (where kind <> 'show_notes'), 0) as ad_seconds,
        count(*) filter (where kind <> 'show_notes' and position = 'pre') as pre_roll_slots,
        count(*) filter (where kind <> 'show_notes' and position = 'mid') as mid_roll_slots,
        count(*) filter (where kind <> 'show_notes' and position = 'post') as post_roll_slots,
        count(*) filter (where kind = 'host_read') as host_read_slots,
        count(*) filter (where kind = 'produced') as produced_slots,
        count(*) filter (where kind = 'break') as break_slots,
        count(*) filter (where kind = 'show_notes') as show_notes_mentions,
        count(distinct sponsor_key) as sponsors
    from slots
    group by episode_id
),

episodes as (
    select
        episodes.*,
        coalesce(transcripts.has_timed_transcript, false) as has_timed_transcript
    from {{ ref('dim_episodes') }} as episodes
    left join transcripts on transcripts.episode_id = episodes.episode_id
    where transcripts.episode_id is not null
        or exists (select 1 from per_episode where per_episode.episode_id = episodes.episode_id)
),

podcasts as (
    select podcast_id, title from {{ ref('dim_podcasts') }}
)

select
    episodes.tenant_id,
    episodes.podcast_id,
    podcasts.title as podcast_title,
    episodes.episode_id,
    episodes.title as episode_title,
    episodes.published_at_utc::date as published_date,
    date_trunc('month', episodes.published_at_utc)::date as published_month,
    episodes.duration_seconds,
    episodes.has_timed_transcript,
    episodes.has_timed_transcript and episodes.duration_seconds > 0 as is_measured,
    coalesce(per_episode.ad_slots, 0) as ad_slots,
    coalesce(per_episode.ad_seconds, 0)::numeric as ad_seconds,
    case when episodes.has_timed_transcript and episodes.duration_seconds > 0 then
        round(coalesce(per_episode.ad_seconds, 0) / 60.0 / (episodes.duration_seconds / 3600.0), 3)
    end as ad_minutes_per_hour,
    coalesce(per_episode.pre_roll_slots, 0) as pre_roll_slots,
    coalesce(per_episode.mid_roll_slots, 0) as mid_roll_slots,
    coalesce(per_episode.post_roll_slots, 0) as post_roll_slots,
    coalesce(per_episode.host_read_slots, 0) as host_read_slots,
    coalesce(per_episode.produced_slots, 0) as produced_slots,
    coalesce(per_episode.break_slots, 0) as break_slots,
    coalesce(per_episode.show_notes_mentions, 0) as show_notes_mentions,
    coalesce(per_episode.sponsors, 0) as sponsors
from episodes
left join per_episode on per_episode.episode_id = episodes.episode_id
left join podcasts on podcasts.podcast_id = episodes.podcast_id
