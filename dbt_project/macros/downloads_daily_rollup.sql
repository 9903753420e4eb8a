{#- Downloads and distinct listeners per UTC day and the given dimensions of fct_downloads, a
    daily-partitioned model (tag `partitioned`, see partition_window.sql): a run replaces the
    days of its partition window. With `having`, only the groups that pass it are kept.
    A rollup by podcast carries the show's title (dim_podcasts) as it was when the day was last
    counted. The mart rollups (`fct_`) are hypertables where TimescaleDB is (fact_hypertable). -#}
{% macro downloads_daily_rollup(dimensions, having=none) -%}
{%- set titled = 'podcast_id' in dimensions %}
{{ config(indexes=[{'columns': ['download_date']}], tags=['partitioned'],
          materialized='incremental', incremental_strategy='append',
          pre_hook=["{{ delete_partition_window('download_date') }}"],
          post_hook=["{{ fact_hypertable('download_date', '90 days') }}"] if this.identifier.startswith('fct_') else []) }}
select
    downloads.download_date,
    {%- for dimension in dimensions %}
    downloads.{{ dimension }},
    {%- endfor %}
    {%- if titled %}
    podcasts.title as podcast_title,
    {%- endif %}
    count(*) as downloads,
    count(distinct downloads.listener_id) as unique_listeners,
    max(downloads.counted_at) as counted_at
from {{ ref('fct_downloads') }} as downloads
{%- if titled %}
left join {{ ref('dim_podcasts') }} as podcasts on podcasts.podcast_id = downloads.podcast_id
{%- endif %}
where {{ partition_window('downloads.download_date') }}
group by downloads.download_date{% for dimension in dimensions %}, downloads.{{ dimension }}{% endfor %}
{%- if titled %}, podcasts.title{% endif %}
{%- if having %}
having {{ having }}
{%- endif %}
{%- endmacro %}
