"""The Dagster code location of the podcast analytics platform."""
