{#- A table: it unions several staging views (a view on two views deadlocks parallel rebuilds). -#}
{{ config(materialized='table') }}
-- One row per platform episode (platform, tenant, show id, episode id) of every platform in
-- `platform_models()`, in one vocabulary.
{{ union_platform_models('episodes') }}
