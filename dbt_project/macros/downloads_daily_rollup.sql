{#- Downloads and distinct listeners per UTC day and the given dimensions of fct_downloads.
    Incremental by day: a run replaces the days with downloads counted or removed since its
    last run (see changed_rows_batch). -#}
{% macro downloads_daily_rollup(dimensions) -%}
{{ config(indexes=[{'columns': ['download_date']}],
          materialized='incremental', incremental_strategy='append',
          pre_hook="{% if is_incremental() %}{{ delete_batch('pg_temp.' ~ this.name ~ '__batch', 'download_date') }}{% endif %}") }}
{%- if is_incremental() %}
{%- set days = changed_rows_batch(ref('fct_downloads'), 'download_date', 'counted_at', 'counted_at') %}
{%- endif %}
select
    downloads.download_date,
    {%- for dimension in dimensions %}
    downloads.{{ dimension }},
    {%- endfor %}
    count(*) as downloads,
    count(distinct downloads.listener_id) as unique_listeners,
    max(downloads.counted_at) as counted_at
{%- if is_incremental() %}
from {{ join_batch(days, ref('fct_downloads'), ['download_date'], 'downloads') }}
{%- else %}
from {{ ref('fct_downloads') }} as downloads
{%- endif %}
group by downloads.download_date{% for dimension in dimensions %}, downloads.{{ dimension }}{% endfor %}
{%- endmacro %}
