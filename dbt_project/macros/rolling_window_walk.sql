{#-
  Request-by-request walk for IAB first-touch windows over rows (request_id, group_key,
  island_no, event_time, step): a window starts at its first request and takes every request
  until 24 hours later; the next request starts the next window. Used as a CTE body.
-#}
{% macro rolling_window_walk(relation) -%}
    with recursive walk as (
        select request_id, group_key, island_no, event_time, step, event_time as window_start
        from {{ relation }}
        where step = 1
        union all
        select
            next_row.request_id, next_row.group_key, next_row.island_no, next_row.event_time, next_row.step,
            case
                when next_row.event_time >= walk.window_start + interval '24 hours' then next_row.event_time
                else walk.window_start
            end
        from walk
        inner join {{ relation }} as next_row
            on next_row.group_key = walk.group_key
            and next_row.island_no = walk.island_no
            and next_row.step = walk.step + 1
    )
    select request_id, group_key, event_time, window_start from walk
{%- endmacro %}
