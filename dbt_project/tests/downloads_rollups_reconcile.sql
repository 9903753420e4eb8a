{{ config(meta={"dagster": {"ref": {"name": "fct_downloads_daily_by_tenant"}}}) }}
-- Each day rollup of downloads adds up to fct_downloads, day by day and tenant by tenant, inside the
-- run's partition window (every day without one). A row is a (rollup, tenant, day) that disagrees.
{%- set rollups = ['tenant', 'show', 'episode', 'app', 'country', 'device', 'platform'] %}
with facts as (
    select tenant_id, download_date, count(*) as downloads
    from {{ ref('fct_downloads') }}
    where {{ partition_window('download_date') }}
    group by tenant_id, download_date
),

rolled_up as (
    {%- for name in rollups %}
    select '{{ name }}' as rollup, tenant_id, download_date, sum(downloads) as downloads
    from {{ ref('fct_downloads_daily_by_' ~ name) }}
    where {{ partition_window('download_date') }}
    group by tenant_id, download_date
    {% if not loop.last %}union all{% endif %}
    {%- endfor %}
),

expected as (
    select r.rollup, f.tenant_id, f.download_date, f.downloads
    from facts as f cross join (values {% for name in rollups %}('{{ name }}'){% if not loop.last %}, {% endif %}{% endfor %}) as r (rollup)
)

select coalesce(e.rollup, r.rollup) as rollup, coalesce(e.tenant_id, r.tenant_id) as tenant_id,
       coalesce(e.download_date, r.download_date) as download_date,
       e.downloads as fact_downloads, r.downloads as rollup_downloads
from expected as e
full join rolled_up as r on r.rollup = e.rollup and r.tenant_id = e.tenant_id and r.download_date = e.download_date
where coalesce(e.downloads, 0) <> coalesce(r.downloads, 0)
