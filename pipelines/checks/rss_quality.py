"""Great Expectations validation of a table inside PostgreSQL (GX's SQL data source).

The suites themselves, one per raw table and raw.rss_episodes' among them, live in
`pipelines/checks/quality.py`. GX is imported inside the functions: it costs seconds and hundreds
of MB at import, and the code location must load fast.
"""

from collections.abc import Callable
from typing import Any


def validate_table(sqlalchemy_url: str, schema: str, table: str, suite_factory) -> Any:
    """Validate a whole table in the database (no rows pulled into Python).

    The suite is built by `suite_factory` once the GX context exists, as GX requires."""
    return _validate(sqlalchemy_url, lambda source: source.add_table_asset(
        name=f"{schema}.{table}", table_name=table, schema_name=schema), "whole_table", suite_factory)


def validate_query(sqlalchemy_url: str, name: str, query: str, suite_factory) -> Any:
    """`validate_table` for the rows of a query (a batch-scoped suite's batch)."""
    return _validate(sqlalchemy_url, lambda source: source.add_query_asset(name=name, query=query),
                     "whole_query", suite_factory)


def _validate(sqlalchemy_url: str, add_asset: Callable[[Any], Any], batch_name: str, suite_factory) -> Any:
    """GX holds two engines per source (its connection test's and its execution engine's). With
    no pool, each connection closes when GX is done with it; a pooled one lived on until the
    garbage collector found it, and closing it then printed a warning in the middle of whatever
    the process was writing."""
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig
    from sqlalchemy.pool import NullPool

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    source = context.data_sources.add_sql(name="warehouse", connection_string=sqlalchemy_url,
                                          kwargs={"poolclass": NullPool})
    try:
        batch = add_asset(source).add_batch_definition_whole_table(batch_name).get_batch()
        return batch.validate(context.suites.add(suite_factory()))
    finally:
        source.get_execution_engine().engine.dispose()
