{#- Downloads and distinct listeners per UTC day and the given dimensions of fct_downloads. -#}
{% macro downloads_daily_rollup(dimensions) -%}
select
    download_date,
    {%- for dimension in dimensions %}
    {{ dimension }},
    {%- endfor %}
    count(*) as downloads,
    count(distinct listener_id) as unique_listeners
from {{ ref('fct_downloads') }}
group by download_date{% for dimension in dimensions %}, {{ dimension }}{% endfor %}
{%- endmacro %}
