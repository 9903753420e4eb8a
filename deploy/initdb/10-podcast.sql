-- Runs once, when the TimescaleDB container initialises an empty data volume, as
-- POSTGRES_USER connected to the warehouse database (POSTGRES_DB).

-- Dagster's own storage (DAGSTER_PG_URL) lives beside the warehouse on the same server.
create database dagster;

-- The pipeline detects TimescaleDB through pg_extension: make sure the warehouse has it.
create extension if not exists timescaledb;
