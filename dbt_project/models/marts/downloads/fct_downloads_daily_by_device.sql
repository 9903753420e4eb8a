-- Daily downloads by device (UTC day of the download).
{{ downloads_daily_rollup(["tenant_id", "device_category"]) }}
