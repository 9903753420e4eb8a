{#-
  hash_joins_only(): pre-hook of models joining large relations through CTEs, whose row
  estimates the planner cannot know: it would otherwise pick nested loops that rescan a big
  table per row when an estimate comes out at 1. Scoped to the model's transaction (`set
  local`).
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
