-- One row per show and month of publication with at least one measured episode
-- (fct_ad_load_by_episode.is_measured: a timed transcript and a known duration): the show's ad
-- load over its measured episodes of the month. Every figure but episodes_published is over the
-- measured episodes only: episodes without a timed transcript are in neither the ad seconds nor
-- the hours of audio, so ad_minutes_per_hour = (ad seconds / 60) / (measured audio seconds / 3600).
with episodes as (
    select * from {{ ref('fct_ad_load_by_episode') }}
),

published as (
    select podcast_id, date_trunc('month', published_at_utc)::date as published_month, count(*) as episodes_published
    from {{ ref('dim_episodes') }}
    where published_at_utc is not null
    group by 1, 2
),

measured as (
    select
        tenant_id,
        podcast_id,
        min(podcast_title) as podcast_title,
        published_month,
        count(*) as measured_episodes,
        sum(duration_seconds)::bigint as measured_audio_seconds,
        sum(ad_seconds) as ad_seconds,
        sum(ad_slots)::bigint as ad_slots,
        sum(pre_roll_slots)::bigint as pre_roll_slots,
        sum(mid_roll_slots)::bigint as mid_roll_slots,
        sum(post_roll_slots)::bigint as post_roll_slots,
        sum(host_read_slots)::bigint as host_read_slots,
        sum(produced_slots)::bigint as produced_slots,
        sum(break_slots)::bigint as break_slots,
        sum(show_notes_mentions)::bigint as show_notes_mentions
    from episodes
    where is_measured and published_month is not null
    group by tenant_id, podcast_id, published_month
)

select
    measured.tenant_id,
    measured.podcast_id,
    measured.podcast_title,
    measured.published_month,
    coalesce(published.episodes_published, 0) as episodes_published,
    measured.measured_episodes,
    measured.measured_audio_seconds,
    measured.ad_seconds,
    round(measured.ad_seconds / 60.0 / (measured.measured_audio_seconds / 3600.0), 3) as ad_minutes_per_hour,
    measured.ad_slots,
    round(measured.ad_slots::numeric / measured.measured_episodes, 3) as ad_slots_per_episode,
    measured.pre_roll_slots,
    measured.mid_roll_slots,
    measured.post_roll_slots,
    measured.host_read_slots,
    measured.produced_slots,
    measured.break_slots,
    measured.show_notes_mentions
from measured
left join published
    on published.podcast_id = measured.podcast_id and published.published_month = measured.published_month
