-- Daily downloads by platform (UTC day of the download).
{{ downloads_daily_rollup(["tenant_id", "platform"]) }}
