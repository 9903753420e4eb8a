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
