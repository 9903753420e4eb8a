{#-
  Data tests on the big request-level models check the rows written by the models' last run:
  `where: "__last_run__:<stamp column>"` keeps the rows whose stamp equals the newest one. Every
  row a run writes carries the run's stamp, so after a full build the tests see every row, and
  after an incremental one the batch it wrote (instead of scanning tens of millions of rows that
  earlier runs already tested). Any other `where` works as in dbt.
-#}
{% macro get_where_subquery(relation) -%}
    {%- set where = config.get('where', '') -%}
    {%- if where and where.startswith('__last_run__:') -%}
        {%- set stamp = where.split(':', 1)[1] -%}
        {#- The newest stamp as a literal, read when the test runs: with a subquery the planner
            cannot tell a small batch from the whole table and scans it all. -#}
        {%- set latest = none -%}
        {%- if execute -%}
            {%- set latest = run_query("select max(" ~ stamp ~ ")::text from " ~ relation).columns[0].values()[0] -%}
        {%- endif -%}
        {%- set where = (stamp ~ " = '" ~ latest ~ "'::timestamptz") if latest else "true" -%}
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
