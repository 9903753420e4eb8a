-- Daily downloads by app (UTC day of the download).
{{ downloads_daily_rollup(["tenant_id", "app_name", "agent_type"]) }}
