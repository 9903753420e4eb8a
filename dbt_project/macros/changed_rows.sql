{#-
  Incremental strategy `changed_rows`: a model recomputes a batch of keys (the batch table
  `pg_temp.<model>__batch` of create_batch_table, column `unique_key`) and writes back only what
  differs. Rows are compared group by group (config `changed_rows_group`, the grain a consumer
  cares about, e.g. one conversion's credits), on every column but the ones in
  `changed_rows_stamps` (set to now() by the model, they differ on every run):
    - a group whose stored rows and new rows are the same is left alone, stamps included, so a
      consumer that follows the stamp (changed_rows_batch) sees no change;
    - any other group has its stored rows recorded in `<model>__removed` (config
      `removed_columns`, see removed_rows.sql) and deleted, and its new rows appended.
  Recomputing a household whose credits did not move then costs the comparison only, not a
  recount downstream of every day that household ever converted on.
-#}
{% macro get_incremental_changed_rows_sql(arg_dict) -%}
{%- set target = arg_dict['target_relation'] -%}
{%- set fresh = arg_dict['temp_relation'] -%}
{%- set key = arg_dict['unique_key'] -%}
{%- set group = config.require('changed_rows_group') -%}
{%- set stamps = config.get('changed_rows_stamps', []) -%}
{%- set removed_columns = config.require('removed_columns') -%}
{%- set columns = arg_dict['dest_columns'] | map(attribute='name') | list -%}
{%- set compared = columns | reject('in', stamps) | list -%}
{%- set batch = 'pg_temp.' ~ this.name ~ '__batch' -%}
{%- set stored = this.name ~ '__stored' -%}
{%- set changed = this.name ~ '__changed' -%}
drop table if exists pg_temp.{{ stored }};
create temporary table {{ stored }} as
select stored.*
from {{ batch }} as stored__keys
cross join lateral (
    select ctid as stored_row, * from {{ target }} as stored__rows
    where stored__rows.{{ key }} = stored__keys.{{ key }}
    offset 0
) as stored;

drop table if exists pg_temp.{{ changed }};
create temporary table {{ changed }} as
select distinct {{ group }} from (
    (select {{ compared | join(', ') }} from pg_temp.{{ stored }}
     except all
     select {{ compared | join(', ') }} from {{ fresh }})
    union all
    (select {{ compared | join(', ') }} from {{ fresh }}
     except all
     select {{ compared | join(', ') }} from pg_temp.{{ stored }})
) as differences;
analyze pg_temp.{{ changed }};

{{ create_removed_rows_table(removed_columns) }};
insert into {{ removed_rows_relation(this) }}
select distinct {% for column in removed_columns %}stored.{{ column }}, {% endfor %}now()
from pg_temp.{{ stored }} as stored
inner join pg_temp.{{ changed }} as changed using ({{ group }});

delete from {{ target }}
where ctid = any(array(
    select stored.stored_row
    from pg_temp.{{ stored }} as stored
    inner join pg_temp.{{ changed }} as changed using ({{ group }})
));

insert into {{ target }} ({{ columns | join(', ') }})
select {% for column in columns %}fresh.{{ column }}{% if not loop.last %}, {% endif %}{% endfor %}
from {{ fresh }} as fresh
inner join pg_temp.{{ changed }} as changed using ({{ group }})
{%- endmacro %}

{#-
  The run log of a changed_rows model: what a run read up to, so the next run knows where to
  start even when it wrote nothing (the rows' own stamps only move when rows change). Post-hook
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

{#- When campaigns or their placements last changed (attribution reads both). -#}
{% macro campaigns_loaded_at() -%}
greatest((select max(loaded_at) from {{ ref('int_placement_episodes') }}),
         (select max(ingested_at) from {{ ref('stg_campaigns__campaigns') }}))
{%- endmacro %}
