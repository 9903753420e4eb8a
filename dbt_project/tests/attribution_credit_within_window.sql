{{ config(meta={"dagster": {"ref": {"name": "fct_attributed_conversions"}}}) }}
-- No conversion is credited outside its campaign's window: household credit only after an
-- exposure and before exposure + window; deterministic credit only between the flight start
-- and the flight end + window. The conversions of the run's partition window (every day
-- without one).
select credits.conversion_id, credits.campaign_id, credits.match_type, credits.converted_at
from {{ ref('fct_attributed_conversions') }} as credits
inner join {{ ref('stg_campaigns__campaigns') }} as campaigns
    on campaigns.tenant_id = credits.tenant_id and campaigns.campaign_id = credits.campaign_id
where {{ partition_window('credits.conversion_date') }} and (
    (credits.match_type = 'household' and (
        credits.last_exposed_at > credits.converted_at
        or credits.converted_at >= credits.first_exposed_at + make_interval(days => campaigns.attribution_window_days)))
    or (credits.match_type in ('promo_code', 'vanity_url', 'utm') and (
        credits.converted_at < campaigns.flight_start::timestamp at time zone 'UTC'
        or credits.converted_at >= (campaigns.flight_end + 1 + campaigns.attribution_window_days)::timestamp at time zone 'UTC')))
