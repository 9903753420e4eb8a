select
    tenant_id,
    sponsor_id,
    name as sponsor_name,
    coalesce(nullif(lower(btrim(category)), ''), 'uncategorized') as category,
    website
from {{ source('campaigns', 'sponsors') }}
