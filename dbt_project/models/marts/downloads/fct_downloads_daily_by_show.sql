-- Daily downloads by show (UTC day of the download).
{{ downloads_daily_rollup(["tenant_id", "podcast_id"]) }}
