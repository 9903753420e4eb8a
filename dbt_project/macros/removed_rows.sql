{#-
  Incremental models that replace a batch of keys (delete, then append) can leave a consumer
  unaware of rows that went away for good. `record_and_delete_batch` keeps the given columns
  of every row it deletes in `<model>__removed` (with removed_at) before deleting them, so a
  downstream incremental model can take those keys into its own batch.
-#}
{% macro removed_rows_relation(relation) -%}
{{ api.Relation.create(database=relation.database, schema=relation.schema, identifier=relation.identifier ~ '__removed') }}
{%- endmacro %}

{#- Post-hook: the side table exists from the first build on, so consumers can always read it. -#}
{% macro create_removed_rows_table(columns) -%}
create table if not exists {{ removed_rows_relation(this) }} as
    select {{ columns | join(', ') }}, now() as removed_at from {{ this }} where false
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
