{{ config(indexes=[{'columns': ['request_id']}, {'columns': ['refreshed_at']}, {'columns': ['filtered_at']}, {'columns': ['group_key']}],
          materialized='incremental', incremental_strategy='append',
    pre_hook="{% if is_incremental() %}{{ delete_batch('pg_temp.iab_filtered__groups', 'group_key') }}{% endif %}"
) }}
-- Every request, with the IAB v2.3 reason it is excluded (null: it belongs to a counted
-- download). Request-level rules come first, then implausible IP volume, then the window
-- rule: the bytes a listener received inside a window, range requests reassembled (overlaps
-- counted once), must cover the episode's threshold (ID3 header + one minute, or the file).
-- Incremental: every request of a group with requests screened, or replaced, or windows
-- recomputed since the last run, replaced whole (the pre-hook removes the group's old rows).
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
    where refreshed_at > (select refreshed_at from watermark)") %}

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

intervals as (
    select windows.window_id, screened.byte_from, screened.byte_to
    from windows
    inner join screened on screened.request_id = windows.request_id
    where windows.window_id is not null
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

window_facts as (
    select
        windows.window_id,
        min(windows.window_start) as window_start,
        max(coverage.bytes_covered) as bytes_covered,
        max(screened.iab_threshold_bytes) as threshold_bytes
    from windows
    inner join coverage on coverage.window_id = windows.window_id
    inner join screened on screened.request_id = windows.request_id
    group by 1
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
        screened.media_key,
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
        windows.window_id,
        window_facts.window_start,
        window_facts.bytes_covered,
        window_facts.threshold_bytes,
        greatest(screened.screened_at, windows.refreshed_at) as refreshed_at,
        now() as filtered_at,
        case
            when screened.screen_reason is not null then screened.screen_reason
            when windows.is_high_volume then 'high_volume_ip'
            when windows.window_id is null then 'not_windowed'
            when window_facts.threshold_bytes is null then 'unknown_file_size'
            when window_facts.bytes_covered < window_facts.threshold_bytes then 'below_threshold'
        end as exclusion_reason
    from screened
    left join windows on windows.request_id = screened.request_id
    left join window_facts on window_facts.window_id = windows.window_id
)

select * from final
