{#-
  The partition window of a run: `[var('min_date'), var('max_date'))`, UTC days, passed by the
  partitioned dbt assets (assets/dbt.py) from the Dagster partition time window. A run without
  them (a bare `dbt build`, `--full-refresh`) covers every day.

  window_day(offset): the window's first day (`'min'`) or the day after its last (`'max'`), moved
  by `offset` days, as a date string; none without vars.
  partition_window(column, before=0, after=0): the predicate that keeps the rows of `column` (a
  date) inside the window, widened by `before` days at the start and `after` days at the end,
  with the bounds as literals (the planner sees plain ranges: index range scans, TimescaleDB
  chunk exclusion at plan time, no scalar subqueries).
  partition_time_window(column, before=0, after=0): the same for a timestamptz column (UTC days).
  delete_partition_window(column): pre-hook of a partitioned model: on an incremental run the
  window's rows go first and the model inserts the window again (strategy `append`), so a day
  whose rows all went away ends up empty.
  Data tests on a partitioned model read the window only: `where: "__partition_window__:<column>"`
  (see get_where_subquery below).
-#}
{% macro window_day(bound, offset=0) -%}
{%- set value = var('min_date' if bound == 'min' else 'max_date', none) -%}
{%- if value is none -%}{{ return(none) }}{%- endif -%}
{{ return((modules.datetime.date.fromisoformat(value | string) + modules.datetime.timedelta(days=offset)).isoformat()) }}
{%- endmacro %}

{% macro has_partition_window() -%}
{{ return(var('min_date', none) is not none or var('max_date', none) is not none) }}
{%- endmacro %}

{% macro partition_window(column, before=0, after=0) -%}
{{ window_predicate(column, before, after, 'date', '') }}
{%- endmacro %}

{% macro partition_time_window(column, before=0, after=0) -%}
{{ window_predicate(column, before, after, 'timestamptz', ' 00:00:00+00') }}
{%- endmacro %}

{% macro window_predicate(column, before, after, type, midnight) -%}
{%- if not has_partition_window() -%}
true
{%- else -%}
{%- set low, high = window_day('min', -(before | int)), window_day('max', after | int) -%}
{{ column }} >= '{{ low ~ midnight if low else "-infinity" }}'::{{ type }}
and {{ column }} < '{{ high ~ midnight if high else "infinity" }}'::{{ type }}
{%- endif -%}
{%- endmacro %}

{% macro delete_partition_window(column) -%}
{%- if is_incremental() -%}
delete from {{ this }} where {{ partition_window(column) }}
{%- endif -%}
{%- endmacro %}

{#- A data test's relation, limited to the run's partition window with
    `where: "__partition_window__:<date column>"`; any other `where` works as in dbt. -#}
{% macro get_where_subquery(relation) -%}
    {%- set where = config.get('where', '') -%}
    {%- if where and where.startswith('__partition_window__:') -%}
        {%- set where = partition_window(where.split(':', 1)[1]) -%}
    {%- endif -%}
    {%- if where -%}
        {%- set filtered -%}
            (select * from {{ relation }} where {{ where }}) dbt_subquery
        {%- endset -%}
        {%- do return(filtered) -%}
    {%- else -%}
        {%- do return(relation) -%}
    {%- endif -%}
{%- endmacro %}
