{#-
  fact_hypertable(time_column, chunk_interval): post-hook of the daily-partitioned facts. Where
  TimescaleDB is created in the database and preloaded by the server (migration 0010 creates it only
  then: the raw time-series tables are hypertables), the fact becomes a hypertable on its day
  column with chunks of `chunk_interval` (sized to its volume), its rows moved into them: after each
  build that (re)created the table (the first, a full refresh: dbt builds a new table and swaps it
  in). Incremental runs then delete and insert their days in it (the window's literal bounds
  exclude the other chunks when planning). Elsewhere it does nothing: plain tables.
-#}
{% macro fact_hypertable(time_column, chunk_interval) -%}
do $hypertable$
begin
    if exists (select from pg_extension where extname = 'timescaledb')
            and current_setting('timescaledb.max_background_workers', true) is not null then
        if not exists (select from timescaledb_information.hypertables
                       where hypertable_schema = '{{ this.schema }}' and hypertable_name = '{{ this.identifier }}') then
            perform create_hypertable('{{ this }}'::regclass, by_range('{{ time_column }}', interval '{{ chunk_interval }}'),
                                      migrate_data => true);
            analyze {{ this }};
        end if;
    end if;
end
$hypertable$
{%- endmacro %}
