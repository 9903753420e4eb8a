{{ config(indexes=[{'columns': ['tenant_id', 'household_key']}], materialized='table') }}
-- One row per household (hashed IP prefix) and sponsor it converted for: when it first did.
-- A campaign that excludes prior customers credits no household whose first conversion for the
-- sponsor came before the flight (fct_attributed_conversions); that conversion may lie any time
-- back, past the days a partition of credits reads, so it is kept here instead.
-- A table rebuilt whole from the conversion events (one small row per converting household),
-- unpartitioned: it reads no partitioned model, so it is built before the partitioned models
-- that read it. A conversion found late for day D before a campaign's flight that becomes a
-- household's first moves that household's credits of the campaign on the days of its credit
-- period (flight start to flight end + window): those partitions are run again, as for any
-- change of this table (Dagster maps it to every partition of fct_attributed_conversions).
select tenant_id, household_key, sponsor_id, min(occurred_at) as first_converted_at
from {{ ref('stg_conversions__events') }}
where is_conversion and household_key is not null
group by tenant_id, household_key, sponsor_id
