{#-
  The run log of an incremental model: what a run read up to, so the next run knows where to
  start even when it wrote nothing (its rows' own stamps do not say what it read). Post-hook
  `record_run(watermarks)` appends one row: run_at = now() and each watermark (column name ->
  SQL expression); `last_run(column)` reads the newest value ('-infinity' before any run).
  A full rebuild starts the log again (`reset_run_log()` pre-hook).
-#}
{% macro run_log_relation(relation) -%}
{{ side_relation(relation, '__runs') }}
{%- endmacro %}

{#- (A hook that renders nothing is skipped by dbt: no statement on incremental runs.) -#}
{% macro reset_run_log() -%}
{% if not is_incremental() -%}
drop table if exists {{ run_log_relation(this) }}
{%- endif %}
{%- endmacro %}

{#- The run log of `this`, with a column per watermark name, if it has none yet. -#}
{% macro create_run_log(names) -%}
create table if not exists {{ run_log_relation(this) }} as
    select now() as run_at{% for name in names %}, null::timestamptz as {{ name }}{% endfor %}
    where false
{%- endmacro %}

{% macro record_run(watermarks) -%}
{{ create_run_log(watermarks.keys()) }};
insert into {{ run_log_relation(this) }}
select now(){% for name, expression in watermarks.items() %}, {{ expression }}{% endfor %};
delete from {{ run_log_relation(this) }}
where run_at < (select max(run_at) from {{ run_log_relation(this) }})
    - make_interval(days => {{ var('removed_rows_retention_days') }})
{%- endmacro %}

{% macro last_run(column) -%}
(select coalesce(max({{ column }}), '-infinity') from {{ run_log_relation(this) }})
{%- endmacro %}
