-- The keys a campaign names itself that tie a conversion to it deterministically, one row each:
-- promo codes (lower case) and vanity URLs (lower-case host + path without scheme, "www." or
-- trailing slash; see normalize_vanity_url). Conversions are matched on int_campaign_match_keys:
-- these, and the keys detected in the campaign's reads when it names none.
select distinct tenant_id, campaign_id, 'promo_code' as key_type, lower(btrim(code)) as key_value
from {{ source('campaigns', 'campaigns') }}
cross join unnest(promo_codes) as code
where btrim(code) <> ''
union
select distinct tenant_id, campaign_id, 'vanity_url', {{ normalize_vanity_url('url') }}
from {{ source('campaigns', 'campaigns') }}
cross join unnest(vanity_urls) as url
where btrim(url) <> ''
