{{ config(indexes=[{'columns': ['event_date']}, {'columns': ['window_date']}, {'columns': ['group_key']}],
          tags=['partitioned'], materialized='incremental', incremental_strategy='append',
          meta={'retention_day_column': 'event_date'},
          pre_hook=["{{ hash_joins_only() }}", "{{ sort_memory() }}", "{{ delete_partition_window('event_date') }}"]) }}
-- Requests that passed the request-level rules, grouped into IAB measurement windows per
-- listener (IP prefix + user agent) and episode. The window type comes from `iab_window`:
--   calendar_day   a window per UTC day;
--   rolling_24h    first touch: 24 hours from the first request, the next request after that
--                  opens a new window;
--   extending_24h  last touch: every request extends the window by 24 hours, for at most
--                  `iab_max_window_days` days (a listener who keeps coming back within a day
--                  opens a new window then: so a window is always counted within that many
--                  days of its start, and a day's downloads never wait on the days after it).
-- Requests of an IP with an implausible number of downloads that day get no window.
-- Daily-partitioned by the request's UTC day. Windows cross midnight, so a run starts from the
-- windows the day before its first day left open (the *seed*, read from this model's own rows
-- of that day): a first-touch window opened on that day within 24 hours of the run's first
-- midnight, or the last request of a last-touch window less than 24 hours before it. The seed
-- joins the group's requests as a request of its own (dropped from the result), so every
-- request of the run is placed as a build over all days would place it, however long the
-- listener's visits chain. (Nothing older can reach into the window: a first-touch window
-- lasts 24 hours, and a last-touch window's latest request is on the day before.)
-- Days older than `request_retention_days` are deleted (resources/request_retention.py): a run
-- whose seed day is gone is refused (assets/dbt.py), never built without it.
{% set screened_relation = ref('int_listener_requests_screened') %}
{% set seeded = is_incremental() and has_partition_window() and var('iab_window') != 'calendar_day' %}
-- The screened relation is read directly, not through a CTE: a CTE read twice is materialized
-- whole, and the window predicate could not use its index.
with candidates as (
    select
        screened.request_id, screened.tenant_id, screened.ip_hash, screened.user_agent, screened.episode_id,
        screened.event_time, screened.event_date, screened.group_key
    from {{ screened_relation }} as screened
    where screened.screen_reason is null and {{ partition_window('screened.event_date') }}
),

ip_volume as (
    select tenant_id, ip_hash, event_date, count(distinct (user_agent, episode_id)) as downloads_candidates
    from candidates
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
    select request_id, tenant_id, group_key, event_time, null::timestamptz as seed_start
    from flagged
    where not is_high_volume
    {% if seeded %}
    union all
    select null as request_id, tenant_id, group_key, seed_time as event_time, seed_start
    from (
        {% if var('iab_window') == 'rolling_24h' %}
        select tenant_id, group_key, max(window_start) as seed_time, max(window_start) as seed_start
        from {{ this }}
        where event_date = '{{ window_day('min', -1) }}'::date and window_start is not null
            and {{ tenant_predicate('tenant_id') }}
        group by tenant_id, group_key
        having max(window_start) > '{{ window_day('min') }} 00:00:00+00'::timestamptz - interval '24 hours'
        {% else %}
        select distinct on (group_key) tenant_id, group_key, event_time as seed_time, window_start as seed_start
        from {{ this }}
        where event_date = '{{ window_day('min', -1) }}'::date and window_start is not null
            and {{ tenant_predicate('tenant_id') }}
            and event_time > '{{ window_day('min') }} 00:00:00+00'::timestamptz - interval '24 hours'
        order by group_key, event_time desc
        {% endif %}
    ) as seeds
    where group_key in (select group_key from flagged where not is_high_volume)
    {% endif %}
),

{% if var('iab_window') == 'calendar_day' %}

windows as (
    select
        request_id,
        tenant_id,
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
        coalesce(min(seed_start) over (partition by group_key, island_no),
                 min(event_time) over (partition by group_key, island_no)) as island_start,
        max(event_time) over (partition by group_key, island_no) as island_end
    from islands
),

{% if var('iab_window') == 'extending_24h' %}

windows as (
    select
        request_id, tenant_id, group_key, event_time,
        island_start + floor(extract(epoch from event_time - island_start)
                             / ({{ var('iab_max_window_days') }} * 86400)) * interval '{{ var('iab_max_window_days') }} days'
            as window_start
    from island_spans
)

{% else %}

-- First touch. An island shorter than 24 hours is one window; only longer islands (rare: a
-- listener coming back every few hours for more than a day) need the request-by-request walk,
-- done in one pass per island by intermediate.iab_first_touch_starts.
long_islands as (
    select
        group_key,
        min(tenant_id) as tenant_id,
        array_agg(request_id order by event_time, request_id) as request_ids,
        array_agg(event_time order by event_time, request_id) as event_times
    from island_spans
    where island_end - island_start >= interval '24 hours'
    group by group_key, island_no
),

walked as (
    -- The function runs once per island; the join pairs each request with its position.
    select per_island.request_id, long_islands.tenant_id, long_islands.group_key, per_island.event_time,
        per_island.window_start
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
    select request_id, tenant_id, group_key, event_time, island_start as window_start
    from island_spans
    where island_end - island_start < interval '24 hours'
    union all
    select request_id, tenant_id, group_key, event_time, window_start
    from walked
)

{% endif %}
{% endif %}

-- No join back to `flagged`: the planner cannot estimate these CTEs and would loop.
select
    windows.request_id,
    windows.tenant_id,
    windows.group_key,
    (windows.event_time at time zone 'UTC')::date as event_date,
    false as is_high_volume,
    md5(windows.group_key || '|' || windows.window_start::text) as window_id,
    windows.window_start,
    (windows.window_start at time zone 'UTC')::date as window_date,
    windows.event_time
from windows
where windows.request_id is not null
union all
select
    flagged.request_id,
    flagged.tenant_id,
    flagged.group_key,
    flagged.event_date,
    true as is_high_volume,
    null as window_id,
    null as window_start,
    null as window_date,
    flagged.event_time
from flagged
where flagged.is_high_volume
