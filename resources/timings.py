"""Timings of reports, charts, deliveries and alerts, appended to `ops.operation_timings` by the
operations they measure; `pipelines.metrics` serves them to Prometheus."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import psycopg

from resources.warehouse import WarehouseResource

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Timing:
    operation: str
    seconds: float
    outcome: str = "success"    # success | reused | failure
    tenant_id: str | None = None
    subject: str | None = None
    detail: str | None = None


def record_timings(warehouse: WarehouseResource, timings: list[Timing], batch_id: str | None = None) -> None:
    """Append timings to `ops.operation_timings`. Never raises: a metric that cannot be stored
    must not fail the report, delivery or alert it measures (the miss is logged)."""
    if not timings:
        return
    try:
        with warehouse.connect(connect_timeout=10) as conn:
            conn.cursor().executemany(
                "insert into ops.operation_timings (operation, tenant_id, subject, detail, outcome, seconds, _batch_id) "
                "values (%s, %s, %s, %s, %s, %s, %s)",
                [(t.operation, t.tenant_id, t.subject, t.detail, t.outcome, max(0.0, t.seconds), batch_id)
                 for t in timings])
    except psycopg.Error as exc:
        log.warning("%d timing(s) not recorded: %s", len(timings), exc)
