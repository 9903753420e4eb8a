{{ downloads_daily_rollup(['tenant_id', 'listener_ip_key']) }}
{{ config(indexes=[{'columns': ['download_date']}, {'columns': ['tenant_id', 'listener_ip_key', 'download_date']}]) }}
-- Per UTC day and household (hashed IP prefix): IAB downloads and distinct listeners (user
-- agents on the address). The listening population of the lift baseline, and the shared-address
-- screen of int_household_exclusions. Incremental by day, like the other download rollups.
