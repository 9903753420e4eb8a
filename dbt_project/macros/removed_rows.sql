{#-
  Incremental models that replace a batch of keys (delete, then append) can leave a consumer
  unaware of rows that went away for good. `record_and_delete_batch` keeps the given columns
  of every row it deletes in `<model>__removed` (with removed_at) before deleting them, so a
  downstream incremental model can take those keys into its own batch.
-#}
{#- A model's side table `<model><suffix>` (its removed-rows log, its run log, its applied
    exclusions), in the schema `internal` beside the layers: bookkeeping no reader role may use
    (schema and move of older side tables: migration 0006). -#}
{% macro side_relation(relation, suffix) -%}
{{ api.Relation.create(database=relation.database, schema='internal', identifier=relation.identifier ~ suffix) }}
{%- endmacro %}

{% macro removed_rows_relation(relation) -%}
{{ side_relation(relation, '__removed') }}
{%- endmacro %}

{#- Post-hook: the side table exists from the first build on, so consumers can always read it;
    entries older than var removed_rows_retention_days, which every consumer (run with the
    model, hourly) has long taken in, are dropped so the log does not grow without end. -#}
{% macro create_removed_rows_table(columns) -%}
create table if not exists {{ removed_rows_relation(this) }} as
    select {{ columns | join(', ') }}, now() as removed_at from {{ this }} where false;
delete from {{ removed_rows_relation(this) }}
where removed_at < now() - make_interval(days => {{ var('removed_rows_retention_days') }})
{%- endmacro %}

{% macro record_and_delete_batch(batch, key, columns) -%}
{{ create_removed_rows_table(columns) }};
insert into {{ removed_rows_relation(this) }}
select distinct {% for column in columns %}removed.{{ column }}, {% endfor %}now()
from {{ join_batch(batch, this, [key], 'removed') }};
{{ delete_batch(batch, key) }}
{%- endmacro %}

{#- Pre-hook of such a model: record and delete on incremental runs; on a full rebuild the
    record of earlier removals means nothing any more. The batch table defaults to the one
    `create_batch_table(this.name ~ '__batch', ...)` makes. -#}
{% macro replace_batch_hook(key, columns, batch=none) -%}
{% if is_incremental() -%}
{{ record_and_delete_batch(batch or 'pg_temp.' ~ this.name ~ '__batch', key, columns) }}
{%- else -%}
drop table if exists {{ removed_rows_relation(this) }}
{%- endif %}
{%- endmacro %}

{#-
  changed_rows_batch(relation, key, stamp, watermark): the batch (see create_batch_table) of a
  model rolled up from `relation`: the `key` values of the rows `relation` stamped (`stamp`)
  or removed (its removed-rows table) since the newest `watermark` of `this`. The model stores
  `last_change(relation, stamp)` as its `watermark` column.
  rows_changed_since(relation, key, stamp, since, column, also) is the same since the SQL
  expression `since`, the batch column named `column` (default: `key`), with the keys of the
  query `also` added.
-#}
{% macro changed_rows_batch(relation, key, stamp, watermark) -%}
{{ return(rows_changed_since(relation, key, stamp, "(select coalesce(max(" ~ watermark ~ "), '-infinity') from " ~ this ~ ")")) }}
{%- endmacro %}

{% macro rows_changed_since(relation, key, stamp, since, column=none, also=none) -%}
{{ return(create_batch_table(this.name ~ '__batch', "
    with watermark as (
        select " ~ since ~ " as changed_at
    )
    select distinct " ~ key ~ " as " ~ (column or key) ~ " from " ~ relation ~ "
    where " ~ stamp ~ " > (select changed_at from watermark)
    union
    select " ~ key ~ " from " ~ removed_rows_relation(relation) ~ "
    where removed_at > (select changed_at from watermark)" ~ ("
    union
    " ~ also if also else ""))) }}
{%- endmacro %}

{% macro last_change(relation, stamp) -%}
greatest((select max({{ stamp }}) from {{ relation }}), (select max(removed_at) from {{ removed_rows_relation(relation) }}))
{%- endmacro %}

{#-
  A model whose rows are only part of what it reads (a rollup keeping some groups, the
  exposures of the downloads that carried an ad) cannot take its watermark from its own rows:
  their newest stamp may be far behind what it read, and every run would read that gap again.
  It keeps a run log (record_run) instead:
    read_watermarks(watermarks), called in the model body before its batch is taken, notes each
      watermark (name -> SQL expression) in `pg_temp.<model>__read`: a row stamped after that
      note is read again by the next run, never skipped. On an incremental run it also creates
      the run log if there is none yet (a table built before it kept one): the run then reads
      everything once;
    logged_rows_batch(relation, key, stamp, watermark, column, also) is rows_changed_since the
      run log's last `watermark`;
    record_read(names) (post-hook) appends the noted watermarks to the run log.
-#}
{% macro read_watermarks(watermarks) -%}
{%- if execute %}
{%- call statement('read_watermarks_' ~ this.name) %}
{%- if is_incremental() %}
{{ create_run_log(watermarks.keys()) }};
{%- endif %}
drop table if exists pg_temp.{{ this.name }}__read;
create temporary table {{ this.name }}__read as
select {% for name, expression in watermarks.items() %}{{ expression }} as {{ name }}{% if not loop.last %}, {% endif %}{% endfor %};
{%- endcall %}
{%- endif %}
{%- endmacro %}

{% macro logged_rows_batch(relation, key, stamp, watermark, column=none, also=none) -%}
{{ return(rows_changed_since(relation, key, stamp, last_run(watermark), column, also)) }}
{%- endmacro %}

{% macro record_read(names) -%}
{%- set expressions = {} %}
{%- for name in names %}{% do expressions.update({name: '(select ' ~ name ~ ' from pg_temp.' ~ this.name ~ '__read)'}) %}{% endfor %}
{{- record_run(expressions) }}
{%- endmacro %}
