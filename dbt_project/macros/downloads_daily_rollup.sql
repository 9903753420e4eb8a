{#- Downloads and distinct listeners per UTC day and the given dimensions of fct_downloads.
    Incremental by day: a run replaces the days with downloads counted or removed since its
    last run (see changed_rows_batch). With `having`, only the groups that pass it are kept;
    their newest stamp then says nothing of what the run read, so such a rollup keeps a run log
    instead (see logged_rows_batch). A rollup by podcast carries the show's title (dim_podcasts)
    as it was when the day was last counted. -#}
{% macro downloads_daily_rollup(dimensions, having=none) -%}
{%- set logged = having is not none %}
{%- set titled = 'podcast_id' in dimensions %}
{%- set pre_hook = ["{% if is_incremental() %}{{ delete_batch('pg_temp.' ~ this.name ~ '__batch', 'download_date') }}{% endif %}"] %}
{%- if logged %}{% do pre_hook.insert(0, "{{ reset_run_log() }}") %}{% endif %}
{{ config(indexes=[{'columns': ['download_date']}],
          materialized='incremental', incremental_strategy='append', pre_hook=pre_hook,
          post_hook=["{{ record_read(['read_up_to']) }}"] if logged else []) }}
{%- if logged %}
{%- do read_watermarks({'read_up_to': last_change(ref('fct_downloads'), 'counted_at')}) %}
{%- endif %}
{%- if is_incremental() %}
{%- set days = logged_rows_batch(ref('fct_downloads'), 'download_date', 'counted_at', 'read_up_to') if logged
               else changed_rows_batch(ref('fct_downloads'), 'download_date', 'counted_at', 'counted_at') %}
{%- endif %}
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
{%- if is_incremental() %}
from {{ join_batch(days, ref('fct_downloads'), ['download_date'], 'downloads') }}
{%- else %}
from {{ ref('fct_downloads') }} as downloads
{%- endif %}
{%- if titled %}
left join {{ ref('dim_podcasts') }} as podcasts on podcasts.podcast_id = downloads.podcast_id
{%- endif %}
group by downloads.download_date{% for dimension in dimensions %}, downloads.{{ dimension }}{% endfor %}
{%- if titled %}, podcasts.title{% endif %}
{%- if logged %}
having {{ having }}
{%- endif %}
{%- endmacro %}
