"""What a sponsor report says: the rows of the attribution and download marts for one campaign
(or one sponsor), read once from the warehouse into plain tables that every format renders.

Numbers are the marts' own (Decimal as stored): a report never recomputes what the marts hold,
so the CSV, XLSX and JSON files equal the marts row for row."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal

import psycopg

from assets.reports.formatting import COUNT, CREDIT, DAYS, FRACTION, MONEY, RATIO, Figure, label, money
from resources.identifiers import InvalidIdentifier, validate_identifier

TEMPLATES = ("standard", "summary")
FORMATS = ("html", "pdf", "csv", "xlsx", "json")


class ReportError(ValueError):
    """A report that cannot be produced as asked (unknown campaign, template or format, bad range)."""


class SubjectNotFound(ReportError):
    """The campaign (or the sponsor's every campaign) is not in the marts (any more): there is
    nothing to report, which a scheduled run records as skipped, not as a failure."""


@dataclass(frozen=True)
class Table:
    name: str                  # file suffix / sheet name: performance_daily, roi_by_model, ...
    title: str
    columns: tuple[str, ...]
    rows: list[tuple]

    def records(self) -> list[dict]:
        return [dict(zip(self.columns, row)) for row in self.rows]


@dataclass
class ReportContent:
    scope: str                 # campaign | sponsor
    tenant_id: str
    sponsor_id: str
    campaign_id: str | None
    title: str
    subtitle: str
    attribution_model: str
    currency: str
    period_start: dt.date
    period_end: dt.date
    freshness: dict[str, str]  # what the numbers include, newest first-class fact first
    facts: list[tuple[str, str]]
    kpis: list[Figure]         # the mart's values with their kinds (assets.reports.formatting)
    tables: dict[str, Table] = field(default_factory=dict)
    period_partial: bool = False  # the period's last day had not ended when the report was made

    @property
    def period_text(self) -> str:
        """"2026-11-01 to 2026-12-06, partial day" when the last day is still running."""
        text = f"{self.period_start} to {self.period_end}"
        return f"{text}, partial day" if self.period_partial else text

    def kpi_texts(self) -> list[tuple[str, str]]:
        """The key figures as a reader sees them: ("ROI", "3.5 %"), ("Revenue", "USD 1,234.50")."""
        return [(figure.label, figure.text(self.currency)) for figure in self.kpis]

    @property
    def subject_id(self) -> str:
        return self.campaign_id or self.sponsor_id

    def table(self, name: str) -> Table:
        return self.tables[name]


@dataclass(frozen=True)
class ReportRequest:
    """Which report: a campaign (or a sponsor roll-up), a period (defaults: the campaign's flight
    through its attribution window, cut at today) and a template."""

    tenant_id: str
    campaign_id: str | None = None
    sponsor_id: str | None = None
    period_start: dt.date | None = None
    period_end: dt.date | None = None
    template: str = "standard"

    def __post_init__(self):
        if (self.campaign_id is None) == (self.sponsor_id is None):
            raise ReportError("a report is for exactly one campaign or one sponsor")
        try:  # ids name the report's folder and files
            validate_identifier("tenant id", self.tenant_id)
            validate_identifier(*(("campaign id", self.campaign_id) if self.campaign_id is not None
                                  else ("sponsor id", self.sponsor_id)))
        except InvalidIdentifier as exc:
            raise ReportError(str(exc)) from exc
        if self.template not in TEMPLATES:
            raise ReportError(f"unknown template {self.template!r}; known: {', '.join(TEMPLATES)}")
        if self.period_start and self.period_end and self.period_start > self.period_end:
            raise ReportError(f"period starts {self.period_start} after it ends {self.period_end}")


def _fetch(conn: psycopg.Connection, name: str, title: str, statement: str, params) -> Table:
    cur = conn.execute(statement, params)
    return Table(name, title, tuple(d.name for d in cur.description), cur.fetchall())


def partial_day(period_end: dt.date, today: dt.date) -> bool:
    """Whether a period's last day is partial: it is the day the report is made (or later), so
    the newest data day is still being loaded, whatever the sources' freshness says."""
    return period_end >= today


NO_BENCHMARK = "not enough campaigns to publish a benchmark"


def benchmark_statement(records: list[dict]) -> str:
    """Which pool the benchmarks shown come from (marts.mart_roi_benchmarks `benchmark_level`):
    "Benchmark: all podcasts in finance, 14 campaigns from 4 networks"."""
    clauses = []
    for r in records:
        pool = {"category_position": f"{label(r['position']).lower()} ads in {label(r['category'])}",
                "category": f"all podcasts in {label(r['category'])}",
                "all": "all podcasts and sponsor categories"}.get(r["benchmark_level"])
        clause = NO_BENCHMARK if pool is None else f"{pool}, {r['campaigns']} campaigns from {r['tenants']} networks"
        if clause not in clauses:
            clauses.append(clause)
    return "Benchmark: " + ("; ".join(clauses) or NO_BENCHMARK)


def _freshness(conn: psycopg.Connection, tenant_id: str) -> dict[str, str]:
    downloads, conversions, exposures = conn.execute(
        "select (select max(download_date) from marts.fct_downloads_daily_by_tenant where tenant_id = %(t)s), "
        "(select max(conversion_date) from marts.fct_attributed_conversions where tenant_id = %(t)s), "
        "(select max(activity_date) from marts.fct_campaign_performance_daily "
        " where tenant_id = %(t)s and impressions > 0)", {"t": tenant_id}).fetchone()
    return {
        "downloads counted through": str(downloads or "no downloads yet"),
        "ads delivered through": str(exposures or "no ads delivered yet"),
        "conversions through": str(conversions or "no conversions yet"),
    }


def campaign_content(conn: psycopg.Connection, request: ReportRequest, today: dt.date) -> ReportContent:
    """Every table of a campaign report, read from the marts."""
    tenant, campaign = request.tenant_id, request.campaign_id
    head = conn.execute(
        "select sponsor_id, sponsor_name, category, campaign_name, attribution_model, pricing_model, budget, "
        "currency, flight_start, flight_end, attribution_window_days, impressions, households_reached, frequency, "
        "conversions, conversion_rate, revenue, cost, net_profit, roi, roas, cpa, effective_cpm, payback_days "
        "from marts.mart_campaign_roi where tenant_id = %s and campaign_id = %s and is_selected_model",
        (tenant, campaign)).fetchone()
    if head is None:
        raise SubjectNotFound(f"campaign {tenant}/{campaign} is not in marts.mart_campaign_roi")
    (sponsor_id, sponsor_name, category, name, model, pricing, budget, currency, flight_start, flight_end,
     window, impressions, households_reached, frequency, conversions, conversion_rate, revenue, cost, net_profit,
     roi, roas, cpa, cpm, payback) = head
    start = request.period_start or flight_start
    end = request.period_end or min(today, flight_end + dt.timedelta(days=window))
    end = max(end, start)
    key = {"t": tenant, "c": campaign, "start": start, "end": end}

    tables = [
        _fetch(conn, "performance_daily", "Delivery, conversions and cost by day", """
            select activity_date, in_flight, impressions, households_reached, conversions, revenue, cost
            from marts.fct_campaign_performance_daily
            where tenant_id = %(t)s and campaign_id = %(c)s and activity_date between %(start)s and %(end)s
            order by activity_date""", key),
        _fetch(conn, "downloads_daily", "IAB downloads of the campaign's shows by day", """
            with shows as (
                select distinct podcast_id from intermediate.int_placement_episodes
                where tenant_id = %(t)s and campaign_id = %(c)s and podcast_id is not null
            )
            select downloads.download_date, downloads.podcast_id, podcasts.title as podcast_title,
                   downloads.downloads, downloads.unique_listeners
            from marts.fct_downloads_daily_by_show as downloads
            inner join shows on shows.podcast_id = downloads.podcast_id
            left join marts.dim_podcasts as podcasts on podcasts.podcast_id = downloads.podcast_id
            where downloads.tenant_id = %(t)s and downloads.download_date between %(start)s and %(end)s
            order by downloads.download_date, downloads.podcast_id""", key),
        _fetch(conn, "roi_by_model", "Results under every attribution model (campaign to date)", """
            select attribution_model, is_selected_model, impressions, households_reached, frequency, conversions,
                   conversion_rate, revenue, cost, net_profit, roi, roas, cpa, effective_cpm, payback_days
            from marts.mart_campaign_roi
            where tenant_id = %(t)s and campaign_id = %(c)s
            order by attribution_model""", key),
        _fetch(conn, "placements", "Performance by show and placement (campaign's model)", """
            select podcast_id, podcast_title, position, impressions, households_reached, impression_share, conversions,
                   revenue, cost, roi, conversion_rate, cpa, effective_cpm
            from marts.mart_campaign_roi_by_placement
            where tenant_id = %(t)s and campaign_id = %(c)s and is_selected_model
            order by impressions desc, podcast_id, position""", key),
        _fetch(conn, "benchmarks", f"Benchmarks for {label(category or 'uncategorized')} sponsors, by position", """
            select category, position, benchmark_level, campaigns, tenants, roi_p25, roi_median, roi_p75,
                   cpa_median, effective_cpm_median, conversion_rate_median
            from marts.mart_roi_benchmarks
            where category = %(category)s
            order by position""", {**key, "category": category or "uncategorized"}),
        _fetch(conn, "lift", "Lift against unexposed households", """
            select exposed_households, exposed_converters, exposed_rate, baseline_households,
                   baseline_converters, baseline_rate, lift
            from marts.mart_campaign_lift where tenant_id = %(t)s and campaign_id = %(c)s""", key),
    ]
    benchmark = benchmark_statement(next(t for t in tables if t.name == "benchmarks").records())
    return ReportContent(
        scope="campaign", tenant_id=tenant, sponsor_id=sponsor_id, campaign_id=campaign,
        title=f"{name} — campaign report", subtitle=f"{sponsor_name or sponsor_id} · {label(category or 'uncategorized')}",
        attribution_model=model, currency=currency, period_start=start, period_end=end,
        period_partial=partial_day(end, today), freshness=_freshness(conn, tenant),
        facts=[
            ("Campaign", f"{name} ({campaign})"), ("Sponsor", f"{sponsor_name or sponsor_id} ({sponsor_id})"),
            ("Flight", f"{flight_start} to {flight_end}"),
            ("Reporting period", f"{start} to {end}, partial day" if partial_day(end, today) else f"{start} to {end}"),
            ("Pricing", f"{label(pricing)}, budget {money(budget, currency)}"),
            ("Attribution model", f"{label(model)}, {window}-day window"),
            ("Benchmark", benchmark),
        ],
        kpis=[
            Figure("Impressions", impressions, COUNT), Figure("Households reached", households_reached, COUNT),
            Figure("Frequency", frequency, RATIO), Figure("Conversions", conversions, CREDIT),
            Figure("Conversion rate", conversion_rate, FRACTION), Figure("Revenue", revenue, MONEY),
            Figure("Cost", cost, MONEY), Figure("Net profit", net_profit, MONEY),
            Figure("ROI", roi, FRACTION), Figure("ROAS", roas, RATIO), Figure("CPA", cpa, MONEY),
            Figure("Effective CPM", cpm, MONEY), Figure("Payback", payback, DAYS),
        ],
        tables={t.name: t for t in tables},
    )


def sponsor_content(conn: psycopg.Connection, request: ReportRequest, today: dt.date) -> ReportContent:
    """A sponsor's roll-up: its campaigns added up per attribution model, and each campaign."""
    tenant, sponsor = request.tenant_id, request.sponsor_id
    campaigns = _fetch(conn, "campaigns", "Campaigns (each under its own attribution model)", """
        select campaign_id, campaign_name, attribution_model, flight_start, flight_end, impressions,
               households_reached, conversions, revenue, cost, net_profit, roi, roas, cpa, effective_cpm
        from marts.mart_campaign_roi
        where tenant_id = %(t)s and sponsor_id = %(s)s and is_selected_model
        order by flight_start, campaign_id""", {"t": tenant, "s": sponsor})
    if not campaigns.rows:
        raise SubjectNotFound(f"sponsor {tenant}/{sponsor} has no campaign in marts.mart_campaign_roi")
    by_model = _fetch(conn, "roi_by_model", "All campaigns under every attribution model", """
        select attribution_model, campaigns, impressions, conversions, revenue, cost, net_profit, roi, roas,
               cpa, effective_cpm
        from marts.mart_sponsor_roi where tenant_id = %(t)s and sponsor_id = %(s)s
        order by attribution_model""", {"t": tenant, "s": sponsor})
    name, category, currency = conn.execute(
        "select min(sponsor_name), min(category), min(currency) from marts.mart_campaign_roi "
        "where tenant_id = %s and sponsor_id = %s", (tenant, sponsor)).fetchone()
    starts = [r[3] for r in campaigns.rows]
    ends = [r[4] for r in campaigns.rows]
    models = sorted({r[2] for r in campaigns.rows})
    impressions = sum(r[5] for r in campaigns.rows)
    revenue = sum((r[8] for r in campaigns.rows), Decimal(0))
    cost = sum((r[9] for r in campaigns.rows), Decimal(0))
    period_start = request.period_start or min(starts)
    period_end = request.period_end or min(today, max(ends))
    return ReportContent(
        scope="sponsor", tenant_id=tenant, sponsor_id=sponsor, campaign_id=None,
        title=f"{name or sponsor} — sponsor report",
        subtitle=f"{len(campaigns.rows)} campaigns · {label(category or 'uncategorized')}",
        attribution_model=", ".join(models), currency=currency or "USD",
        period_start=period_start, period_end=period_end, period_partial=partial_day(period_end, today),
        freshness=_freshness(conn, tenant),
        facts=[("Sponsor", f"{name or sponsor} ({sponsor})"), ("Campaigns", str(len(campaigns.rows))),
               ("Flights", f"{min(starts)} to {max(ends)}"),
               ("Reporting period", f"{period_start} to {period_end}"
                                    + (", partial day" if partial_day(period_end, today) else "")),
               ("Attribution models", ", ".join(label(m) for m in models) + " (each campaign under its own)")],
        kpis=[Figure("Impressions", impressions, COUNT), Figure("Revenue", revenue, MONEY),
              Figure("Cost", cost, MONEY), Figure("Net profit", revenue - cost, MONEY),
              Figure("ROI", ((revenue - cost) / cost).quantize(Decimal("0.000001")) if cost else None, FRACTION)],
        tables={campaigns.name: campaigns, by_model.name: by_model},
    )


def report_content(conn: psycopg.Connection, request: ReportRequest, today: dt.date | None = None) -> ReportContent:
    today = today or dt.datetime.now(dt.UTC).date()
    return (campaign_content if request.campaign_id else sponsor_content)(conn, request, today)
