-- The discount codes used on each order, one row each, lower case. Keyed by the event's
-- primary key too, so a filter on it reads the order's row through the index.
select distinct
    md5(tenant_id || '|' || source || '|' || event_id) as event_key,
    tenant_id,
    source,
    event_id,
    lower(btrim(code)) as code
from {{ source('campaigns', 'attribution_events') }}
cross join unnest(discount_codes) as code
where btrim(code) <> ''
