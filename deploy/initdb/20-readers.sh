#!/usr/bin/env bash
# Runs once, when the TimescaleDB container initialises an empty data volume: the log-in role
# Grafana (and any BI tool given it) reads the warehouse with, a member of podcast_reader, which
# may read the marts and the report registry only (grants: resources/sql/readers.sql, applied by
# `podcast-analytics migrate`), with the readers' timeouts (a statement or an idle transaction ends
# after a minute; migration 0002 sets the same on podcast_reader and its members then).
# Name and password: GRAFANA_WAREHOUSE_USER / _PASSWORD.
set -euo pipefail
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
    -v reader="${GRAFANA_WAREHOUSE_USER:-grafana}" -v password="${GRAFANA_WAREHOUSE_PASSWORD:-grafana}" <<'SQL'
select not exists (select from pg_roles where rolname = 'podcast_reader') as missing \gset
\if :missing
create role podcast_reader nologin;
\endif
create role :"reader" login password :'password' in role podcast_reader;
alter role :"reader" set statement_timeout = '60s';
alter role :"reader" set idle_in_transaction_session_timeout = '60s';
SQL
