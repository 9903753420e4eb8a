{#-
  create_batch_table(name, query): the keys an incremental run works on, in an analyzed
  temporary table of the model's session. Joined to the big relations through their indexes,
  the batch gets true row estimates; as a CTE the planner guesses, and at millions of rows it
  guessed wrong (nested loops over whole tables). Call it from the model body inside
  `is_incremental()`: the model is compiled on the connection that then runs it.
-#}
{% macro create_batch_table(name, query) -%}
{%- if execute %}
{%- call statement('batch_' ~ name) %}
drop table if exists pg_temp.{{ name }};
create temporary table {{ name }} as {{ query }};
analyze pg_temp.{{ name }};
{%- endcall %}
{%- endif %}
pg_temp.{{ name }}
{%- endmacro %}

{#-
  join_batch(batch, relation, keys, alias): the rows of `relation` whose `keys` match a row of
  the batch table, read key by key through the relation's index. `offset 0` keeps the planner
  from flattening the lateral subquery into a join: it underestimates how many distinct keys a
  big table holds, and then prefers to scan every row of it.
-#}
{% macro join_batch(batch, relation, keys, alias) -%}
{{ batch }} as {{ alias }}__keys
cross join lateral (
    select * from {{ relation }} as {{ alias }}__rows
    where {% for key in keys %}{{ alias }}__rows.{{ key }} = {{ alias }}__keys.{{ key }}{% if not loop.last %} and {% endif %}{% endfor %}
    offset 0
) as {{ alias }}
{%- endmacro %}

{#-
  delete_batch(batch, key): pre-hook of the incremental models. Removes the rows of `this`
  whose key is in the batch: found key by key through the index on the key (as in join_batch),
  then deleted by their row ids. The models then append the batch's new rows: `append` rather
  than `delete+insert`, whose own delete is a join the planner may run as a scan of the whole
  table, and which would keep the rows of keys that have no new rows (a group that lost every
  request).
-#}
{% macro delete_batch(batch, key) -%}
delete from {{ this }}
where ctid = any(array(
    select doomed.ctid
    from {{ batch }} as doomed__keys
    cross join lateral (
        select ctid from {{ this }} as doomed__rows
        where doomed__rows.{{ key }} = doomed__keys.{{ key }}
        offset 0
    ) as doomed
))
{%- endmacro %}

{#-
  pending_log_files(): the log files of the loader's ledger whose current load `this` has not
  taken in yet (`this` holds file_key and the events' ingested_at): new files, files loaded again
  with other content, files committed after a later run began, and files emptied (no rows now,
  rows still in `this`). Independent of clocks: a file counts until its exact load is in.
-#}
{% macro pending_log_files() -%}
select files.file_key
from {{ source('listener_log_ledger', 'listener_log_files') }} as files
where case
    when files.rows_loaded > 0 then not exists (
        select 1 from {{ this }} as done
        where done.file_key = files.file_key and done.ingested_at = files.loaded_at
    )
    else exists (select 1 from {{ this }} as done where done.file_key = files.file_key)
end
{%- endmacro %}

{#-
  hash_joins_only(): pre-hook of models joining large relations through CTEs, whose row
  estimates the planner cannot know: it would otherwise pick nested loops that rescan a big
  table per row when an estimate comes out at 1. Scoped to the model's transaction (`set
  local`); lateral lookups written as such (join_batch) stay nested loops, the only plan they have.
-#}
{% macro hash_joins_only() -%}
set local enable_nestloop = off
{%- endmacro %}

{#-
  sort_memory(): pre-hook of models that sort or hash millions of rows (grouping sets, distinct
  counts, index builds): gives the model's transaction var('model_work_mem') of work memory (and of
  maintenance memory, for its indexes), so those sorts stay in memory instead of spilling to disk in 4 MB runs.
-#}
{% macro sort_memory() -%}
set local work_mem = '{{ var("model_work_mem") }}';
set local maintenance_work_mem = '{{ var("model_work_mem") }}'
{%- endmacro %}
