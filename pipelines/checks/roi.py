"""Blocking check on the ROI mart: every campaign's revenue, cost and ROI recomputed in Python,
with Decimal arithmetic, from the rows underneath (campaign terms, delivered ads, credited
shares and each conversion's net revenue), must agree with marts.mart_campaign_roi to the cent.
Cost is cost to date: a flat fee accrued over the flight days up to the tenant's as-of day (its
newest accepted event or delivered ad), CPM on delivered ads capped at the budget.

It shares no SQL with the mart: if a join, a rounding or a filter in the models goes wrong, the
two computations disagree and the mart's downstream reports stop."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

import dagster as dg

from resources.warehouse import WarehouseResource

MART_CAMPAIGN_ROI = dg.AssetKey(["marts", "mart_campaign_roi"])
CENT = Decimal("0.01")
ROI_TOLERANCE = Decimal("0.000001")


def cents(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


@dataclass(frozen=True)
class Roi:
    revenue: Decimal
    cost: Decimal
    roi: Decimal | None


def recompute_roi(warehouse: WarehouseResource) -> dict[tuple[str, str, str], Roi]:
    """(tenant, campaign, model) -> revenue, cost and ROI, from the rows under the mart."""
    with warehouse.connect() as conn:
        terms = conn.execute(
            "select tenant_id, campaign_id, pricing_model, flat_fee, cpm_rate, budget, flight_start, flight_end "
            "from raw.campaigns"
        ).fetchall()
        # The data's as-of day per tenant: its newest accepted event or delivered ad (UTC).
        as_of: dict[str, object] = {}
        for tenant, day in conn.execute(
                "select tenant_id, max((occurred_at at time zone 'UTC')::date) from raw.attribution_events group by 1 "
                "union all select tenant_id, max(exposure_date) from intermediate.int_exposures group by 1"):
            if day is not None:
                as_of[tenant] = max(day, as_of.get(tenant, day))
        impressions = dict(((t, c), n) for t, c, n in conn.execute(
            "select tenant_id, campaign_id, count(*) from intermediate.int_exposures group by 1, 2"))
        revenue: dict[tuple[str, str, str], Decimal] = defaultdict(Decimal)
        with conn.cursor(name="credited") as cur:  # streamed: one conversion's credits at a time
            cur.itersize = 20_000
            cur.execute(
                "select credits.tenant_id, credits.campaign_id, credits.attribution_model, credits.credited_share, "
                "coalesce(events.gross_revenue, 0) - events.refunded_amount "
                "from marts.fct_attributed_conversions as credits "
                "inner join raw.attribution_events as events "
                "on events.tenant_id = credits.tenant_id and events.source = credits.source "
                "and events.event_id = credits.event_id "
                "where credits.campaign_id is not null"
            )
            for tenant, campaign, model, share, net in cur:
                revenue[(tenant, campaign, model)] += Decimal(share) * Decimal(net)
    out = {}
    models = {m for (_, _, m) in revenue} | {"first_touch", "last_touch", "linear", "time_decay", "position_based"}
    for tenant, campaign, pricing, flat_fee, cpm_rate, budget, start, end in terms:
        if pricing == "flat":  # accrued evenly over the flight days up to the as-of day
            days = (end - start).days + 1
            elapsed = max(0, min(days, (as_of[tenant] - start).days + 1)) if tenant in as_of else 0
            cost = cents(Decimal(flat_fee) * elapsed / days)
        else:
            cost = cents(min(Decimal(budget), Decimal(impressions.get((tenant, campaign), 0)) * Decimal(cpm_rate) / 1000))
        for model in models:
            money = cents(revenue.get((tenant, campaign, model), Decimal(0)))
            roi = ((money - cost) / cost).quantize(ROI_TOLERANCE, rounding=ROUND_HALF_UP) if cost else None
            out[(tenant, campaign, model)] = Roi(money, cost, roi)
    return out


def roi_discrepancies(warehouse: WarehouseResource) -> list[str]:
    expected = recompute_roi(warehouse)
    with warehouse.connect() as conn:
        mart = {(t, c, m): Roi(Decimal(rev), Decimal(cost), roi) for t, c, m, rev, cost, roi in conn.execute(
            "select tenant_id, campaign_id, attribution_model, revenue, cost, roi from marts.mart_campaign_roi")}
    problems = []
    for key in sorted(expected.keys() | mart.keys()):
        want, got = expected.get(key), mart.get(key)
        if want is None or got is None:
            problems.append(f"{'/'.join(key)}: {'missing from the mart' if got is None else 'not a known campaign'}")
            continue
        if abs(want.revenue - got.revenue) > CENT / 2 or abs(want.cost - got.cost) > CENT / 2:
            problems.append(f"{'/'.join(key)}: revenue {got.revenue} vs {want.revenue}, cost {got.cost} vs {want.cost}")
        elif (want.roi is None) != (got.roi is None) or (
                want.roi is not None and abs(want.roi - Decimal(got.roi)) > ROI_TOLERANCE):
            problems.append(f"{'/'.join(key)}: ROI {got.roi} vs {want.roi}")
    return problems


@dg.asset_check(
    asset=MART_CAMPAIGN_ROI, blocking=True,
    description="ROI per campaign and model recomputed independently in Python agrees with the mart to the cent.",
)
def roi_recomputed_in_python(warehouse: WarehouseResource) -> dg.AssetCheckResult:
    problems = roi_discrepancies(warehouse)
    return dg.AssetCheckResult(
        passed=not problems,
        description="; ".join(problems[:10]) or "every campaign agrees to the cent",
        metadata={"discrepancies": len(problems)},
    )
