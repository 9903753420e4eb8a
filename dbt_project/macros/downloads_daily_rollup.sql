{#- Downloads and distinct listeners per UTC day and the given dimensions of fct_downloads.
    With `partitioned`, the model is a daily-partitioned one (tag `partitioned`, see
    partition_window.sql): a run replaces the days of its partition window.
    Otherwise it is incremental by day: a run replaces the days with downloads counted or removed
    since its last run (see changed_rows_batch). With `having`, only the groups that pass it are
    kept; their newest stamp then says nothing of what the run read, so such a rollup keeps a run
    log instead (see logged_rows_batch). (The two rollups left so are read by unpartitioned models
    of the same build; they become partitioned with the models upstream, docs/PARTITIONED_DBT.md.)
    A rollup by podcast carries the show's title (dim_podcasts) as it was when the day was last
    counted. -#}
{% macro downloads_daily_rollup(dimensions, having=none, partitioned=false) -%}
{%- set logged = having is not none and not partitioned %}
{%- set titled = 'podcast_id' in dimensions %}
{%- if partitioned %}
{{ config(indexes=[{'columns': ['download_date']}], tags=['partitioned'],
          materialized='incremental', incremental_strategy='append',
          pre_hook=["{{ delete_partition_window('download_date') }}"]) }}
{%- else %}
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
{%- if is_incremental() and not partitioned %}
from {{ join_batch(days, ref('fct_downloads'), ['download_date'], 'downloads') }}
{%- else %}
from {{ ref('fct_downloads') }} as downloads
{%- endif %}
{%- if titled %}
left join {{ ref('dim_podcasts') }} as podcasts on podcasts.podcast_id = downloads.podcast_id
{%- endif %}
{%- if partitioned %}
where {{ partition_window('downloads.download_date') }}
{%- endif %}
group by downloads.download_date{% for dimension in dimensions %}, downloads.{{ dimension }}{% endfor %}
{%- if titled %}, podcasts.title{% endif %}
{%- if having %}
having {{ having }}
{%- endif %}
{%- endmacro %}
