-- Benchmarks to compare a campaign with: quartiles of ROI, CPA, effective CPM and conversion
-- rate by sponsor category and placement position, pooling every tenant's campaigns (each under
-- its own attribution model). One row per category × position a campaign delivered in, saying
-- which pool it shows (`benchmark_level`): a pool is published only when it holds at least
-- `benchmark_min_campaigns` campaigns from at least `benchmark_min_tenants` tenants, so that no
-- tenant can read (or, taking its own campaigns out, work back to) another tenant's figure.
--   category_position  every position of the category is large enough on its own
--   category           the category's campaigns, every position
--   all                every campaign of the network, when the categories without a level of
--                      their own pool enough campaigns and tenants by themselves
--   suppressed         nothing is published for the cell
-- A category shows one level for all its positions, and 'all' is published only when what it
-- adds to the published categories is itself large enough: no published pool is another one
-- plus a campaign or two. Each campaign counts once in a pool (its placements in the pool added
-- up), whatever number of shows carried it; only quartiles are published, never min or max.
{%- set min_campaigns = var('benchmark_min_campaigns') | int %}
{%- set min_tenants = var('benchmark_min_tenants') | int %}

with placements as (
    select tenant_id, campaign_id, coalesce(category, 'uncategorized') as category, position,
           roi, impressions, households_reached, conversions, cost
    from {{ ref('mart_campaign_roi_by_placement') }}
    where is_selected_model
),

units as (
    -- One campaign in one pool: its placements in the category × position, in the category, or all.
    select tenant_id, campaign_id,
           case when grouping(category) = 1 then 'all' else category end as category,
           case when grouping(position) = 1 then 'all' else position end as position,
           min(roi) as roi,
           sum(cost) / nullif(sum(conversions), 0) as cpa,
           sum(cost) / nullif(sum(impressions), 0) * 1000 as effective_cpm,
           sum(conversions) / nullif(sum(households_reached), 0) as conversion_rate
    from placements
    group by grouping sets ((tenant_id, campaign_id, category, position), (tenant_id, campaign_id, category),
                            (tenant_id, campaign_id))
),

pools as (
    select category, position,
           count(*) as campaigns,
           count(distinct tenant_id) as tenants,
           count(*) >= {{ min_campaigns }} and count(distinct tenant_id) >= {{ min_tenants }} as large_enough,
           percentile_cont(0.25) within group (order by roi) as roi_p25,
           percentile_cont(0.5) within group (order by roi) as roi_median,
           percentile_cont(0.75) within group (order by roi) as roi_p75,
           percentile_cont(0.25) within group (order by cpa) as cpa_p25,
           percentile_cont(0.5) within group (order by cpa) as cpa_median,
           percentile_cont(0.75) within group (order by cpa) as cpa_p75,
           percentile_cont(0.25) within group (order by effective_cpm) as effective_cpm_p25,
           percentile_cont(0.5) within group (order by effective_cpm) as effective_cpm_median,
           percentile_cont(0.75) within group (order by effective_cpm) as effective_cpm_p75,
           percentile_cont(0.25) within group (order by conversion_rate) as conversion_rate_p25,
           percentile_cont(0.5) within group (order by conversion_rate) as conversion_rate_median,
           percentile_cont(0.75) within group (order by conversion_rate) as conversion_rate_p75
    from units
    group by category, position
),

category_levels as (
    select category,
           case when bool_and(large_enough) filter (where position <> 'all') then 'category_position'
                when bool_or(large_enough) filter (where position = 'all') then 'category'
           end as own_level
    from pools
    where category <> 'all'
    group by category
),

remainder as (
    -- The campaigns of the categories without a level of their own: 'all' adds them to the rest.
    select count(*) >= {{ min_campaigns }} and count(distinct units.tenant_id) >= {{ min_tenants }} as large_enough
    from units
    inner join category_levels on category_levels.category = units.category
    where units.position = 'all' and category_levels.own_level is null
),

cells as (
    select pools.category, pools.position,
           coalesce(category_levels.own_level, case when remainder.large_enough then 'all' end, 'suppressed')
               as benchmark_level
    from pools
    inner join category_levels on category_levels.category = pools.category
    cross join remainder
    where pools.position <> 'all'
),

shown as (
    select *,
           case benchmark_level when 'all' then 'all' when 'suppressed' then null else category end as pool_category,
           case benchmark_level when 'category_position' then position when 'suppressed' then null else 'all' end
               as pool_position
    from cells
)

select
    shown.category,
    shown.position,
    shown.benchmark_level,
    pools.campaigns,
    pools.tenants,
    pools.roi_p25,
    pools.roi_median,
    pools.roi_p75,
    pools.cpa_p25,
    pools.cpa_median,
    pools.cpa_p75,
    pools.effective_cpm_p25,
    pools.effective_cpm_median,
    pools.effective_cpm_p75,
    pools.conversion_rate_p25,
    pools.conversion_rate_median,
    pools.conversion_rate_p75
from shown
left join pools on pools.category = shown.pool_category and pools.position = shown.pool_position
