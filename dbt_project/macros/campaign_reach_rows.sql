{#-
  campaign_reach_rows(relation): the (campaign, household) rows of int_campaign_reach for the ads
  in `relation` (rows of int_exposures), at both grains: per show and position ('placement')
  and per campaign ('campaign', show and position null), with the first day of the ads.
-#}
{% macro campaign_reach_rows(relation) -%}
    select
        tenant_id, sponsor_id, campaign_id, household_key,
        case when grouping(podcast_id, position) = 0 then 'placement' else 'campaign' end as grain,
        case when grouping(podcast_id, position) = 0 then podcast_id end as podcast_id,
        case when grouping(podcast_id, position) = 0 then position end as position,
        min(exposure_date) as first_exposure_date
    from {{ relation }}
    group by grouping sets (
        (tenant_id, sponsor_id, campaign_id, household_key, podcast_id, position),
        (tenant_id, sponsor_id, campaign_id, household_key)
    )
{%- endmacro %}
