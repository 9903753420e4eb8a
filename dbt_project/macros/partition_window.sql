{#-
  The partition window of a run: `[var('min_date'), var('max_date'))`, UTC days, passed by the
  partitioned dbt assets (assets/dbt.py) from the Dagster partition time window. A run without
  them (a bare `dbt build`, `--full-refresh`) covers every day.

  partition_window(column): the predicate that keeps the rows of `column` (a date) inside the
  window, with the bounds as literals (the planner sees plain ranges: index range scans,
  TimescaleDB chunk exclusion at plan time, no scalar subqueries).
  delete_partition_window(column): pre-hook of a partitioned model: on an incremental run the
  window's rows go first and the model inserts the window again (strategy `append`), so a day
  whose rows all went away ends up empty.
-#}
{% macro partition_window(column) -%}
{%- set min_date = var('min_date', none) -%}
{%- set max_date = var('max_date', none) -%}
{%- if min_date is none and max_date is none -%}
true
{%- else -%}
{{ column }} >= '{{ min_date or "-infinity" }}'::date and {{ column }} < '{{ max_date or "infinity" }}'::date
{%- endif -%}
{%- endmacro %}

{% macro delete_partition_window(column) -%}
{%- if is_incremental() -%}
delete from {{ this }} where {{ partition_window(column) }}
{%- endif -%}
{%- endmacro %}
