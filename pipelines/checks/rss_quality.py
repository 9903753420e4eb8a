"""Great Expectations suite on `raw.rss_episodes`, run inside PostgreSQL as a blocking check.

GX is imported inside the check: it costs seconds and hundreds of MB at import, and the code
location must load fast. The suite is kept here as code and versioned with the product.
"""


from typing import Any

import dagster as dg

from resources.warehouse import ConnectionParts, WarehouseResource

REQUIRED_FIELDS = ("title", "enclosure_url", "enclosure_type", "published_at")
COMPLETENESS = 0.9


def rss_episodes_suite():
    import great_expectations as gx

    suite = gx.ExpectationSuite(name="raw.rss_episodes")
    for column in REQUIRED_FIELDS:
        suite.add_expectation(gx.expectations.ExpectColumnValuesToNotBeNull(column=column, mostly=COMPLETENESS))
    suite.add_expectation(gx.expectations.ExpectColumnValuesToNotBeNull(column="guid"))
    suite.add_expectation(gx.expectations.ExpectColumnValuesToMatchRegex(column="enclosure_url", regex=r"^https?://[^\s/]+"))
    suite.add_expectation(gx.expectations.ExpectColumnValuesToBeBetween(column="duration_seconds", min_value=0))
    suite.add_expectation(gx.expectations.ExpectColumnValuesToBeBetween(column="enclosure_length", min_value=0))
    return suite


def validate_table(sqlalchemy_url: str, schema: str, table: str, suite_factory) -> Any:
    """Validate a whole table in the database (GX's SQL data source: no rows pulled into Python).

    The suite is built by `suite_factory` once the GX context exists, as GX requires."""
    import great_expectations as gx

    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    source = context.data_sources.add_sql(name="warehouse", connection_string=sqlalchemy_url)
    asset = source.add_table_asset(name=f"{schema}.{table}", table_name=table, schema_name=schema)
    batch = asset.add_batch_definition_whole_table("whole_table").get_batch()
    return batch.validate(context.suites.add(suite_factory()))


def summarize(result) -> tuple[bool, dict[str, Any]]:
    details: dict[str, Any] = {}
    for r in result.results:
        cfg = r.expectation_config
        name = f"{cfg.type}({cfg.kwargs.get('column')})"
        unexpected = r.result.get("unexpected_percent")
        details[name] = {"success": bool(r.success), "unexpected_percent": None if unexpected is None else round(float(unexpected), 3)}
    return bool(result.success), details


@dg.asset_check(
    asset=dg.AssetKey(["raw", "rss_episodes"]),
    blocking=True,
    description=(
        f"Great Expectations: fields {', '.join(REQUIRED_FIELDS)} at least {COMPLETENESS:.0%} "
        "complete, guid always present, enclosure URLs http(s), durations and sizes non-negative."
    ),
)
def rss_episodes_expectations(warehouse: WarehouseResource) -> dg.AssetCheckResult:
    parts = ConnectionParts.from_url(warehouse.url())
    result = validate_table(parts.sqlalchemy_url(), "raw", "rss_episodes", rss_episodes_suite)
    success, details = summarize(result)
    failed = sorted(name for name, d in details.items() if not d["success"])
    return dg.AssetCheckResult(
        passed=success,
        severity=dg.AssetCheckSeverity.ERROR,
        description="all expectations met" if success else f"failed: {', '.join(failed)}",
        metadata={
            "expectations": dg.MetadataValue.json(details),
            "evaluated": len(details),
            "failed": len(failed),
        },
    )
