-- Daily downloads by tenant (UTC day of the download).
{{ downloads_daily_rollup(["tenant_id"]) }}
