{{ config(meta={"dagster": {"ref": {"name": "stg_campaigns__campaigns"}}}) }}
-- No campaign's attribution window is longer than var attribution_max_window_days: a partition
-- of conversion days reads exposures and vanity visits only that many days back
-- (int_conversions, fct_attributed_conversions), so a longer window would lose touchpoints
-- without a word. A campaign listed here blocks the attribution models until the var is raised.
select tenant_id, campaign_id, attribution_window_days
from {{ ref('stg_campaigns__campaigns') }}
where attribution_window_days > {{ var('attribution_max_window_days') }}
