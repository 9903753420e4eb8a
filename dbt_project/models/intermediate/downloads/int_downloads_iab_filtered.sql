{{ config(indexes=[{'columns': ['window_date']}, {'columns': ['request_id']}, {'columns': ['episode_id', 'window_date']}],
          tags=['partitioned'], materialized='incremental', incremental_strategy='append',
          meta={'retention_day_column': 'window_date'},
          pre_hook=["{{ hash_joins_only() }}", "{{ sort_memory() }}", "{{ delete_partition_window('window_date') }}"]) }}
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
-- Daily-partitioned by `window_date`, the UTC day the request's window opened (its own day
-- when it has no window): a window and its download are decided on that day. Its requests
-- reach into the days after it (24 hours for the rolling windows, up to iab_max_window_days
-- for last-touch ones), so a run reads the requests and windows of those days too. Days older
-- than `request_retention_days` are deleted (resources/request_retention.py).
{% set reach_days = 0 if var('iab_window') == 'calendar_day' else (1 if var('iab_window') == 'rolling_24h' else var('iab_max_window_days')) %}
with joined as (
    select
        screened.*,
        windows.request_id as windowed_request_id,
        windows.window_id,
        windows.window_start,
        windows.is_high_volume,
        coalesce(windows.window_date, screened.event_date) as window_date
    from {{ ref('int_listener_requests_screened') }} as screened
    left join {{ ref('int_download_windows') }} as windows
        on windows.request_id = screened.request_id and {{ partition_window('windows.event_date', after=reach_days) }}
    where {{ partition_window('screened.event_date', after=reach_days) }}
        and {{ partition_window('coalesce(windows.window_date, screened.event_date)', tenant='screened.tenant_id') }}
),

screened as (
    select * from joined
),

windows as (
    select windowed_request_id as request_id, window_id, window_start, is_high_volume
    from joined
    where windowed_request_id is not null
),

sizes as (
    select episode_id, iab_threshold_bytes, min_plausible_bytes from {{ ref('int_media_sizes') }}
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
        screened.window_date,
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
