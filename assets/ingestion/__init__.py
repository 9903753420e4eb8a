"""Ingestion assets: sources into `raw` tables."""
