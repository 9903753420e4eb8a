{{ config(indexes=[{'columns': ['request_id']}, {'columns': ['refreshed_at']}, {'columns': ['filtered_at']}, {'columns': ['group_key']}],
          materialized='incremental', incremental_strategy='append',
    pre_hook="{% if is_incremental() %}{{ delete_batch('pg_temp.iab_filtered__groups', 'group_key') }}{% endif %}"
) }}
-- Every request, with the IAB v2.3 reason it is excluded (null: it belongs to a counted
-- download). Request-level rules come first, then implausible IP volume, then the window
-- rule: the bytes a listener received inside a window must cover the episode's threshold (ID3
-- header + one minute, or the file; int_media_sizes). The bytes of a window are the union of
-- its placed byte intervals (ranges reassembled, overlaps counted once; a 200 covers the file
-- from byte 0) plus the body bytes of its 206 responses logged without a range
-- (`unplaced_bytes`, from formats that have no Range field: S3, plain combined, GCS...), which
-- are summed: how such responses overlap cannot be seen, so a client that fetched the same
-- bytes twice is credited twice. An 11-request iPhone session of 206s on S3 is one download by
-- the sum where its largest single response is far below the file. When the episode's size is
-- unknown, a window counts only if it holds a `200` without a range of at least the smallest
-- plausible size (the whole-file rule); otherwise its requests are `unknown_file_size`.
-- Incremental: every request of a group with requests screened, or replaced, or windows
-- recomputed since the last run, or of an episode whose size changed (int_media_sizes.sized_at),
-- replaced whole (the pre-hook removes the group's old rows).
{% if is_incremental() %}
{% set batch_groups = create_batch_table('iab_filtered__groups', "
    with watermark as (
        select coalesce(max(refreshed_at), '-infinity') as refreshed_at from " ~ this ~ "
    )
    select group_key from " ~ ref('int_listener_requests_screened') ~ "
    where screened_at > (select refreshed_at from watermark)
    union
    select group_key from " ~ removed_rows_relation(ref('int_listener_requests_screened')) ~ "
    where removed_at > (select refreshed_at from watermark)
    union
    select group_key from " ~ ref('int_download_windows') ~ "
    where refreshed_at > (select refreshed_at from watermark)
    union
    select screened.group_key
    from " ~ ref('int_media_sizes') ~ " as sizes
    cross join lateral (
        select group_key from " ~ ref('int_listener_requests_screened') ~ " as screened__rows
        where screened__rows.episode_id = sizes.episode_id
        offset 0
    ) as screened
    where sizes.sized_at > (select refreshed_at from watermark)") %}

with screened as (
    select screened.* from {{ join_batch(batch_groups, ref('int_listener_requests_screened'), ['group_key'], 'screened') }}
),

windows as (
    select windows.* from {{ join_batch(batch_groups, ref('int_download_windows'), ['group_key'], 'windows') }}
),
{% else %}
with screened as (
    select * from {{ ref('int_listener_requests_screened') }}
),

windows as (
    select * from {{ ref('int_download_windows') }}
),
{% endif %}

sizes as (
    select episode_id, iab_threshold_bytes, min_plausible_bytes, sized_at from {{ ref('int_media_sizes') }}
),

intervals as (
    select windows.window_id, screened.byte_from, screened.byte_to
    from windows
    inner join screened on screened.request_id = windows.request_id
    where windows.window_id is not null and screened.byte_from is not null
),

ordered_intervals as (
    select
        *,
        max(byte_to) over (
            partition by window_id order by byte_from, byte_to rows between unbounded preceding and 1 preceding
        ) as reach_before
    from intervals
),

merged as (
    select
        *,
        sum(case when reach_before is null or byte_from > reach_before + 1 then 1 else 0 end)
            over (partition by window_id order by byte_from, byte_to) as run_no
    from ordered_intervals
),

runs as (
    select window_id, run_no, min(byte_from) as run_from, max(byte_to) as run_to
    from merged
    group by 1, 2
),

coverage as (
    select window_id, sum(run_to - run_from + 1) as bytes_covered
    from runs
    group by 1
),

window_requests as (
    select
        windows.window_id,
        min(windows.window_start) as window_start,
        min(screened.episode_id) as episode_id,
        sum(screened.unplaced_bytes) as unplaced_bytes,
        max(screened.bytes_sent) filter (where screened.status = 200 and screened.range_start is null) as complete_bytes
    from windows
    inner join screened on screened.request_id = windows.request_id
    where windows.window_id is not null
    group by 1
),

window_facts as (
    select
        window_requests.window_id,
        window_requests.window_start,
        coalesce(coverage.bytes_covered, 0) + window_requests.unplaced_bytes as bytes_covered,
        sizes.iab_threshold_bytes as threshold_bytes,
        sizes.sized_at,
        -- The whole-file rule, for a file of unknown size: a 200 without a range, of at least the
        -- smallest plausible size (an aborted 200 logs the few bytes it sent).
        coalesce(window_requests.complete_bytes >= coalesce(sizes.min_plausible_bytes,
            {{ smallest_plausible_bytes('null') }}), false) as has_complete_response
    from window_requests
    left join coverage on coverage.window_id = window_requests.window_id
    left join sizes on sizes.episode_id = window_requests.episode_id
),

final as (
    select
        screened.request_id,
        screened.group_key,
        screened.tenant_id,
        screened.event_time,
        screened.log_date,
        screened.episode_id,
        screened.podcast_id,
        coalesce(screened.matched_media_key, screened.media_key) as media_key,
        screened.listener_ip_key,
        screened.user_agent,
        screened.agent_type,
        screened.agent_name,
        screened.device_category,
        screened.platform,
        screened.country_code,
        screened.method,
        screened.status,
        screened.bytes_sent,
        screened.byte_from,
        screened.byte_to,
        screened.unplaced_bytes,
        windows.window_id,
        window_facts.window_start,
        window_facts.bytes_covered,
        window_facts.threshold_bytes,
        greatest(screened.screened_at, windows.refreshed_at, window_facts.sized_at) as refreshed_at,
        now() as filtered_at,
        case
            when screened.screen_reason is not null then screened.screen_reason
            when windows.is_high_volume then 'high_volume_ip'
            when windows.window_id is null then 'not_windowed'
            when window_facts.threshold_bytes is null and not window_facts.has_complete_response then 'unknown_file_size'
            when window_facts.bytes_covered < window_facts.threshold_bytes then 'below_threshold'
        end as exclusion_reason
    from screened
    left join windows on windows.request_id = screened.request_id
    left join window_facts on window_facts.window_id = windows.window_id
)

select * from final
