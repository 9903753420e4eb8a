-- Campaigns; their promo codes and vanity URLs are rows of stg_campaigns__match_keys.
select
    tenant_id,
    campaign_id,
    sponsor_id,
    name as campaign_name,
    budget,
    currency,
    flight_start,
    flight_end,
    pricing_model,
    flat_fee,
    cpm_rate,
    goal_type,
    goal_value,
    nullif(lower(btrim(utm_campaign)), '') as utm_campaign,
    attribution_window_days,
    attribution_model,
    decay_half_life_days,
    exclude_prior_customers,
    status,
    _ingested_at as ingested_at
from {{ source('campaigns', 'campaigns') }}
