{{ config(indexes=[{'columns': ['tenant_id', 'campaign_id']}], materialized='table',
          pre_hook=["{{ sort_memory() }}"]) }}
-- Households a campaign reached for the first time, per day, at two grains: 'campaign' (all its
-- shows and positions; podcast_id and position null) and 'placement' (per show and ad
-- position). A campaign's reach is the sum over its days: the ROI marts read these few rows
-- instead of every household.
-- A table rebuilt whole from int_exposures, not a partitioned model: a household's first day is
-- a minimum over the campaign's whole flight, so an ad found late for day E moves the
-- household's first day from any later day of the flight to E, a change no bounded window of
-- days holds. Only the unpartitioned ROI marts read it, so it is built with them, after the
-- partitioned models (it sits between no two of them); the work is one pass over the
-- exposures, which are few next to the downloads.
with first_exposures as (
    select
        tenant_id,
        sponsor_id,
        campaign_id,
        household_key,
        case when grouping(podcast_id, position) = 0 then 'placement' else 'campaign' end as grain,
        podcast_id,
        position,
        min(exposure_date) as first_exposure_date
    from {{ ref('int_exposures') }}
    group by grouping sets (
        (tenant_id, sponsor_id, campaign_id, household_key, podcast_id, position),
        (tenant_id, sponsor_id, campaign_id, household_key)
    )
)

select tenant_id, sponsor_id, campaign_id, grain, podcast_id, position, first_exposure_date, count(*) as households
from first_exposures
group by tenant_id, sponsor_id, campaign_id, grain, podcast_id, position, first_exposure_date
