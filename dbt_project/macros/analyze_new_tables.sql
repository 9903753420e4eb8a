{#-
  analyze_new_table(): post-hook of every model. A table dbt has just built whole (a table
  model, an incremental model's first or full build) has no planner statistics until
  autovacuum's next round; the run after a rebuild would plan its batch lookups blind (at 10 M
  downloads the first hourly run after a rebuild scanned tables it reads through indexes).
  Such a table gets them at once: a sample of rows, not a pass over the table. A table that has
  statistics (an incremental run appended to it) is left to autovacuum. For a view it renders
  nothing, which dbt skips.
-#}
{% macro analyze_new_table() -%}
{%- if config.get('materialized') in ('table', 'incremental') -%}
do $analyze$
begin
    if not exists (select 1 from pg_stats
                   where schemaname = '{{ this.schema }}' and tablename = '{{ this.identifier }}') then
        analyze {{ this }};
    end if;
end
$analyze$
{%- endif %}
{%- endmacro %}
