-- A published ROI benchmark pools at least benchmark_min_campaigns campaigns from at least
-- benchmark_min_tenants tenants; a suppressed one publishes no figure.
select *
from {{ ref('mart_roi_benchmarks') }}
where (benchmark_level <> 'suppressed'
       and (coalesce(campaigns, 0) < {{ var('benchmark_min_campaigns') }}
            or coalesce(tenants, 0) < {{ var('benchmark_min_tenants') }}))
   or (benchmark_level = 'suppressed'
       and num_nonnulls(campaigns, tenants, roi_p25, roi_median, roi_p75, cpa_p25, cpa_median, cpa_p75,
                        effective_cpm_p25, effective_cpm_median, effective_cpm_p75, conversion_rate_p25, conversion_rate_median,
                        conversion_rate_p75) > 0)
