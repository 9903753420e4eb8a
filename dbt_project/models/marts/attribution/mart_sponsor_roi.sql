-- One row per sponsor and attribution model: the sponsor's campaigns added up (each campaign
-- counted under that model), with the ratios recomputed from the sums.
select
    tenant_id,
    sponsor_id,
    min(sponsor_name) as sponsor_name,
    min(category) as category,
    attribution_model,
    count(*) as campaigns,
    sum(impressions) as impressions,
    sum(conversions) as conversions,
    sum(revenue) as revenue,
    sum(cost) as cost,
    sum(revenue) - sum(cost) as net_profit,
    round((sum(revenue) - sum(cost)) / nullif(sum(cost), 0), 6) as roi,
    round(sum(revenue) / nullif(sum(cost), 0), 6) as roas,
    round(sum(cost) / nullif(sum(conversions), 0), 2) as cpa,
    round(sum(cost) / nullif(sum(impressions), 0) * 1000, 2) as effective_cpm
from {{ ref('mart_campaign_roi') }}
group by tenant_id, sponsor_id, attribution_model
