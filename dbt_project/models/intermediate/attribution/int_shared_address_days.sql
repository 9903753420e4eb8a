{{ downloads_daily_rollup(['tenant_id', 'listener_ip_key'], having='count(distinct downloads.listener_id) > 1') }}
-- Per UTC day, the households (hashed IP prefixes) from which more than one listener (user
-- agent) downloaded, with how many: the shared-address screen of int_household_exclusions,
-- run with every attribution run. It is the small part of int_household_activity_daily (every
-- household-day, for the daily lift baseline), so the hourly run does not upkeep the large one.
-- Daily-partitioned by download_date, like the other download rollups.
