"""Hosting-platform API ingestion: clients per platform, the sync that stores what they return,
and the Dagster assets around it."""
