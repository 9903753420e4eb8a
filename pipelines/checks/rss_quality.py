"""Great Expectations validation of a table inside PostgreSQL (GX's SQL data source).

The suites themselves, one per raw table and raw.rss_episodes' among them, live in
`pipelines/checks/quality.py`. GX is imported inside the function: it costs seconds and hundreds
of MB at import, and the code location must load fast.
"""

from typing import Any


def validate_table(sqlalchemy_url: str, schema: str, table: str, suite_factory) -> Any:
    """Validate a whole table in the database (no rows pulled into Python).

    The suite is built by `suite_factory` once the GX context exists, as GX requires."""
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    source = context.data_sources.add_sql(name="warehouse", connection_string=sqlalchemy_url)
    try:
        asset = source.add_table_asset(name=f"{schema}.{table}", table_name=table, schema_name=schema)
        batch = asset.add_batch_definition_whole_table("whole_table").get_batch()
        return batch.validate(context.suites.add(suite_factory()))
    finally:
        source.get_execution_engine().engine.dispose()  # no pooled connection outlives the check
