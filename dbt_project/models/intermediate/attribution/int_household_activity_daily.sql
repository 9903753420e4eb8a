{{ downloads_daily_rollup(['tenant_id', 'listener_ip_key']) }}
{{ config(tags=['daily'], indexes=[{'columns': ['download_date']}, {'columns': ['tenant_id', 'listener_ip_key', 'download_date']}]) }}
-- Per UTC day and household (hashed IP prefix): IAB downloads and distinct listeners (user
-- agents on the address). The listening population of the lift baseline: as large as the
-- downloads themselves, so it is tagged `daily` and rebuilt with the lift mart, not with every
-- attribution run (the shared-address screen reads int_shared_address_days). Daily-partitioned
-- by download_date, like the other download rollups.
