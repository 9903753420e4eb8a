{{ config(materialized='table') }}
-- One row per platform episode and day of every platform in `platform_models()`: downloads from
-- hosts, streams/plays/listeners from listening platforms; a metric a platform does not report
-- is null.
{{ union_platform_models('metrics_daily') }}
