{#-
  Windows reaching back before the run's partition window, for a partitioned model that reads
  days before its own (docs/PARTITIONED_DBT.md, section 5): the rows of
  `[var('min_date') - days, var('max_date'))`. Without the vars, every day (as partition_window).
  The bounds are literals, as in partition_window.

  partition_window_since(column, days): `column` is a date.
  partition_window_utc(column, days=0): `column` is a timestamptz; the bounds are UTC midnights,
    written with their offset (a date compared with a timestamptz would be placed in the
    session's time zone, and the partitions are UTC days).
-#}
{% macro partition_lookback_bounds(days) -%}
{%- set min_date = var('min_date', none) -%}
{%- set max_date = var('max_date', none) -%}
{%- if min_date is none and max_date is none -%}
{{ return(none) }}
{%- endif -%}
{%- set lower = '-infinity' -%}
{%- if min_date is not none -%}
{%- set lower = (modules.datetime.date.fromisoformat(min_date | string)
                 - modules.datetime.timedelta(days=days | int)).isoformat() -%}
{%- endif -%}
{{ return([lower, (max_date or 'infinity') | string]) }}
{%- endmacro %}

{% macro partition_window_since(column, days) -%}
{%- set bounds = partition_lookback_bounds(days) -%}
{%- if bounds is none -%}
true
{%- else -%}
{{ column }} >= '{{ bounds[0] }}'::date and {{ column }} < '{{ bounds[1] }}'::date
{%- endif -%}
{%- endmacro %}

{% macro partition_window_utc(column, days=0) -%}
{%- set bounds = partition_lookback_bounds(days) -%}
{%- if bounds is none -%}
true
{%- else -%}
{%- set utc = [] -%}
{%- for bound in bounds -%}
{%- do utc.append(bound if 'infinity' in bound else bound ~ ' 00:00:00+00') -%}
{%- endfor -%}
{{ column }} >= '{{ utc[0] }}'::timestamptz and {{ column }} < '{{ utc[1] }}'::timestamptz
{%- endif -%}
{%- endmacro %}
