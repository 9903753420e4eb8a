-- Daily downloads by country (UTC day of the download).
{{ downloads_daily_rollup(["tenant_id", "country_code"]) }}
