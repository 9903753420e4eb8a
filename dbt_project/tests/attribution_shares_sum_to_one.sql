-- Every conversion is credited exactly once under every attribution model: its shares
-- (campaigns, or the 'unattributed' row) sum to 1. The conversions of the run's partition window
-- (every day without one).
select conversion_id, attribution_model, sum(credited_share) as total_share
from {{ ref('fct_attributed_conversions') }}
where {{ partition_window('conversion_date') }}
group by conversion_id, attribution_model
having abs(sum(credited_share) - 1) > 1e-8
