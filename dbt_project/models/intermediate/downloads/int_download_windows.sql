{{ config(indexes=[{'columns': ['group_key']}, {'columns': ['refreshed_at']}],
          materialized='incremental', incremental_strategy='append',
    pre_hook="{% if is_incremental() %}{{ delete_batch('pg_temp.download_windows__groups', 'group_key') }}{% endif %}"
) }}
-- Requests that passed the request-level rules, grouped into IAB measurement windows per
-- listener (IP prefix + user agent) and episode. The window type comes from `iab_window`:
--   calendar_day   a window per UTC day;
--   rolling_24h    first touch: 24 hours from the first request, the next request after that
--                  opens a new window;
--   extending_24h  last touch: every request extends the window by 24 hours.
-- Requests of an IP with an implausible number of downloads that day get no window.
-- Incremental: the groups that received requests screened since the last run (or lost requests
-- to a file screened again), and every group of an IP and day that did, are recomputed whole
-- (windows depend on a group's whole history); the pre-hook removes their old rows first, so a
-- group that lost every request disappears.
{% set screened_relation = ref('int_listener_requests_screened') %}
{% if is_incremental() %}
{% set new_rows = create_batch_table('download_windows__new', "
    with watermark as (
        select coalesce(max(refreshed_at), '-infinity') as refreshed_at from " ~ this ~ "
    )
    select group_key, tenant_id, ip_hash, event_date from " ~ screened_relation ~ "
    where screened_at > (select refreshed_at from watermark)
    union all
    select group_key, tenant_id, ip_hash, event_date from " ~ removed_rows_relation(screened_relation) ~ "
    where removed_at > (select refreshed_at from watermark)") %}
{% set new_days = create_batch_table('download_windows__new_days', "
    select distinct tenant_id, ip_hash, event_date from " ~ new_rows) %}
{% set touched_groups = create_batch_table('download_windows__groups', "
    select group_key from " ~ new_rows ~ "
    union
    select screened.group_key
    from " ~ join_batch(new_days, screened_relation, ['tenant_id', 'ip_hash', 'event_date'], 'screened')) %}
{% set touched_days = create_batch_table('download_windows__days', "
    select distinct screened.tenant_id, screened.ip_hash, screened.event_date
    from " ~ join_batch(touched_groups, screened_relation, ['group_key'], 'screened') ~ "
    where screened.screen_reason is null") %}
{% endif %}
-- The screened relation is read directly, not through a CTE: a CTE read twice is materialized
-- whole, and the incremental joins could not use its indexes.
with candidates as (
    select
        screened.request_id, screened.tenant_id, screened.ip_hash, screened.user_agent, screened.episode_id,
        screened.event_time, screened.event_date, screened.group_key, screened.screened_at
    {% if is_incremental() %}
    from {{ join_batch(touched_groups, screened_relation, ['group_key'], 'screened') }}
    {% else %}
    from {{ screened_relation }} as screened
    {% endif %}
    where screened.screen_reason is null
),

batch as (
    select coalesce(max(screened_at), now()) as refreshed_at from candidates
),

ip_volume as (
    select
        screened.tenant_id,
        screened.ip_hash,
        screened.event_date,
        count(distinct (screened.user_agent, screened.episode_id)) as downloads_candidates
    {% if is_incremental() %}
    from {{ join_batch(touched_days, screened_relation, ['tenant_id', 'ip_hash', 'event_date'], 'screened') }}
    {% else %}
    from {{ screened_relation }} as screened
    {% endif %}
    where screened.screen_reason is null
    group by 1, 2, 3
),

flagged as (
    select
        candidates.*,
        ip_volume.downloads_candidates > {{ var('iab_max_downloads_per_ip_per_day') }} as is_high_volume
    from candidates
    inner join ip_volume using (tenant_id, ip_hash, event_date)
),

included as (
    select request_id, group_key, event_time from flagged where not is_high_volume
),

{% if var('iab_window') == 'calendar_day' %}

windows as (
    select
        request_id,
        group_key,
        event_time,
        min(event_time) over (partition by group_key, (event_time at time zone 'UTC')::date) as window_start
    from included
)

{% else %}

gaps as (
    select
        *,
        case
            when lag(event_time) over ordered is null
                or event_time - lag(event_time) over ordered >= interval '24 hours' then 1
            else 0
        end as opens_island
    from included
    window ordered as (partition by group_key order by event_time, request_id)
),

islands as (
    select
        *,
        sum(opens_island) over (partition by group_key order by event_time, request_id) as island_no
    from gaps
),

island_spans as (
    select
        *,
        min(event_time) over (partition by group_key, island_no) as island_start,
        max(event_time) over (partition by group_key, island_no) as island_end
    from islands
),

{% if var('iab_window') == 'extending_24h' %}

windows as (
    select request_id, group_key, event_time, island_start as window_start from island_spans
)

{% else %}

-- First touch. An island shorter than 24 hours is one window; only longer islands (rare: a
-- listener coming back every few hours for more than a day) need the request-by-request walk,
-- done in one pass per island by intermediate.iab_first_touch_starts.
long_islands as (
    select
        group_key,
        array_agg(request_id order by event_time, request_id) as request_ids,
        array_agg(event_time order by event_time, request_id) as event_times
    from island_spans
    where island_end - island_start >= interval '24 hours'
    group by group_key, island_no
),

walked as (
    -- The function runs once per island; the join pairs each request with its position.
    select per_island.request_id, long_islands.group_key, per_island.event_time, per_island.window_start
    from long_islands
    cross join lateral (
        select ids.request_id, ids.event_time, starts.window_start
        from unnest(long_islands.request_ids, long_islands.event_times)
            with ordinality as ids (request_id, event_time, position)
        inner join intermediate.iab_first_touch_starts(long_islands.event_times)
            with ordinality as starts (window_start, position) using (position)
    ) as per_island
),

windows as (
    select request_id, group_key, event_time, island_start as window_start
    from island_spans
    where island_end - island_start < interval '24 hours'
    union all
    select request_id, group_key, event_time, window_start
    from walked
)

{% endif %}
{% endif %}

-- No join back to `flagged`: the planner cannot estimate these CTEs and would loop.
select
    windows.request_id,
    windows.group_key,
    false as is_high_volume,
    md5(windows.group_key || '|' || windows.window_start::text) as window_id,
    windows.window_start,
    windows.event_time,
    batch.refreshed_at
from windows
cross join batch
union all
select
    flagged.request_id,
    flagged.group_key,
    true as is_high_volume,
    null as window_id,
    null as window_start,
    flagged.event_time,
    batch.refreshed_at
from flagged
cross join batch
where flagged.is_high_volume
