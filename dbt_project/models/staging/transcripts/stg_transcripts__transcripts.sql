-- One row per transcript of an episode as last fetched and parsed (raw.transcripts), keyed like
-- the episode (episode_id as stg_rss__episodes makes it). `is_timed`: its cues carry start and
-- end times (WebVTT, SRT, timed JSON), the transcripts ad load is measured from.
select
    {{ rss_episode_id() }} as episode_id,
    {{ rss_podcast_id() }} as podcast_id,
    tenant_id,
    feed_url,
    guid,
    url,
    format,
    language,
    cue_count,
    has_timings,
    has_timings and cue_count > 0 as is_timed,
    fetched_at,
    _ingested_at as ingested_at
from {{ source('transcripts', 'transcripts') }}
