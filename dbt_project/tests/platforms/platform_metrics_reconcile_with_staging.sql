{{ config(meta={"dagster": {"ref": {"name": "fct_platform_metrics_daily"}}}) }}
-- Reconciliation: per platform, fct_platform_metrics_daily has the rows and the metric totals of
-- the platforms' staging models (nothing lost or doubled by the episode resolution).
-- Returns the platforms and metrics that differ.
with staged as (
    {%- for platform, models in platform_models().items() %}
    select
        '{{ platform }}'::text as platform,
        count(*) as metric_rows,
        {%- for metric in platform_metric_names() %}
        {{ ('sum(' ~ metric ~ ')') if metric in models['metrics'] else 'null::numeric' }} as {{ metric }}{{ ',' if not loop.last }}
        {%- endfor %}
    from {{ ref(models['metrics_daily']) }}
    {%- if not loop.last %}
    union all
    {%- endif %}
    {%- endfor %}
),

facts as (
    select
        platform,
        count(*) as metric_rows,
        {%- for metric in platform_metric_names() %}
        sum({{ metric }}) as {{ metric }}{{ ',' if not loop.last }}
        {%- endfor %}
    from {{ ref('fct_platform_metrics_daily') }}
    group by platform
)

select
    coalesce(staged.platform, facts.platform) as platform,
    staged.metric_rows as staged_rows,
    facts.metric_rows as fact_rows
from staged
full outer join facts on facts.platform = staged.platform
where staged.metric_rows is distinct from coalesce(facts.metric_rows, 0)
    {%- for metric in platform_metric_names() %}
    or staged.{{ metric }} is distinct from facts.{{ metric }}
    {%- endfor %}
