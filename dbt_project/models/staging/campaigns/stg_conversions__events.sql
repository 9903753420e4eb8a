-- Conversion events and the signals around them. A conversion is a shop order or a pixel
-- purchase or lead; page views and vanity-URL visits are signals. Net revenue is what the
-- order is worth now: its gross total (after edits) less what was refunded. Discount codes
-- are rows of stg_conversions__discount_codes.
select
    md5(tenant_id || '|' || source || '|' || event_id) as event_key,
    tenant_id,
    source,
    event_id,
    sponsor_id,
    event_type,
    event_type in ('order', 'purchase', 'lead') as is_conversion,
    occurred_at,
    updated_at,
    ip_prefix_hash as household_key,
    ip_datacenter,
    user_agent,
    customer_key,
    order_id,
    coalesce(gross_revenue, 0) as gross_revenue,
    coalesce(refunded_amount, 0) as refunded_amount,
    coalesce(gross_revenue, 0) - coalesce(refunded_amount, 0) as net_revenue,
    currency,
    nullif(lower(btrim(utm_campaign)), '') as utm_campaign,
    utm_source,
    utm_medium,
    case when vanity_url is not null then {{ normalize_vanity_url('vanity_url') }} end as vanity_url,
    landing_url,
    referrer,
    _ingested_at as ingested_at
from {{ source('campaigns', 'attribution_events') }}
