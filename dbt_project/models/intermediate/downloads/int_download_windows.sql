{{ config(materialized='table') }}
-- Requests that passed the request-level rules, grouped into IAB measurement windows per
-- listener (IP prefix + user agent) and episode. The window type comes from `iab_window`:
--   calendar_day   a window per UTC day;
--   rolling_24h    first touch: 24 hours from the first request, the next request after that
--                  opens a new window;
--   extending_24h  last touch: every request extends the window by 24 hours.
-- IPs with an implausible number of downloads in a day are excluded first.
with screened as (
    select * from {{ ref('int_listener_requests_screened') }}
    where screen_reason is null
),

ip_volume as (
    select
        tenant_id,
        ip_hash,
        (event_time at time zone 'UTC')::date as event_date,
        count(distinct (user_agent, episode_id)) as downloads_candidates
    from screened
    group by 1, 2, 3
),

included as (
    select
        screened.request_id,
        md5(screened.tenant_id || '|' || screened.listener_ip_key || '|' || screened.user_agent || '|' || screened.episode_id)
            as group_key,
        screened.event_time
    from screened
    inner join ip_volume
        on ip_volume.tenant_id = screened.tenant_id
        and ip_volume.ip_hash = screened.ip_hash
        and ip_volume.event_date = (screened.event_time at time zone 'UTC')::date
    where ip_volume.downloads_candidates <= {{ var('iab_max_downloads_per_ip_per_day') }}
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
-- listener coming back every few hours for more than a day) need the request-by-request walk.
long_islands as (
    select
        request_id, group_key, island_no, event_time,
        row_number() over (partition by group_key, island_no order by event_time, request_id) as step
    from island_spans
    where island_end - island_start >= interval '24 hours'
),

walked as (
    {{ rolling_window_walk('long_islands') }}
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

select
    request_id,
    group_key,
    md5(group_key || '|' || window_start::text) as window_id,
    window_start,
    event_time
from windows
