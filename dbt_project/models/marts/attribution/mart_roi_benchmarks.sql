-- Benchmarks to compare a campaign with: quartiles of ROI, CPA, effective CPM and conversion
-- rate by sponsor category and placement position, over every campaign × show × position under
-- the campaign's own attribution model ('all' rows pool the categories or positions).
with results as (
    select category, position, roi, cpa, effective_cpm, conversion_rate
    from {{ ref('mart_campaign_roi_by_placement') }}
    where is_selected_model
),

grouped as (
    select coalesce(category, 'all') as category, coalesce(position, 'all') as position,
           count(*) as placements,
           percentile_cont(0.25) within group (order by roi) as roi_p25,
           percentile_cont(0.5) within group (order by roi) as roi_median,
           percentile_cont(0.75) within group (order by roi) as roi_p75,
           percentile_cont(0.25) within group (order by cpa) as cpa_p25,
           percentile_cont(0.5) within group (order by cpa) as cpa_median,
           percentile_cont(0.75) within group (order by cpa) as cpa_p75,
           percentile_cont(0.25) within group (order by effective_cpm) as cpm_p25,
           percentile_cont(0.5) within group (order by effective_cpm) as cpm_median,
           percentile_cont(0.75) within group (order by effective_cpm) as cpm_p75,
           percentile_cont(0.25) within group (order by conversion_rate) as conversion_rate_p25,
           percentile_cont(0.5) within group (order by conversion_rate) as conversion_rate_median,
           percentile_cont(0.75) within group (order by conversion_rate) as conversion_rate_p75
    from results
    group by grouping sets ((category, position), (category), (position), ())
)

select * from grouped
