"""The charts of a report, drawn with matplotlib: SVG for the HTML page (text kept as text, so
the page stays searchable), PNG for the PDF. matplotlib is imported on first use only (it costs
about a second, and the code location must load fast)."""

from __future__ import annotations

import html
import io
import time
from collections import defaultdict
from dataclasses import dataclass, field, replace
from decimal import Decimal

from assets.reports.content import NO_BENCHMARK, ReportContent

SELECTED = "#d95f02"
OTHER = "#7570b3"
NEUTRAL = "#9e9e9e"


@dataclass(frozen=True)
class Chart:
    name: str
    title: str
    svg: str
    png: bytes
    seconds: float = field(default=0.0, compare=False)  # time to draw it (SVG and PNG)


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    # Names of shows, sponsors and campaigns are text, never math or TeX: `Big $$ Energy` is drawn
    # as written instead of failing the chart (and with it the report).
    plt.rcParams.update({"svg.fonttype": "none", "font.size": 9, "axes.spines.top": False,
                         "axes.spines.right": False, "figure.dpi": 100, "text.parse_math": False,
                         "text.usetex": False})
    return plt


def _finish(plt, fig, name: str, title: str) -> Chart:
    fig.tight_layout()
    svg, png = io.StringIO(), io.BytesIO()
    fig.savefig(svg, format="svg", metadata={"Date": None})
    fig.savefig(png, format="png", dpi=110)
    plt.close(fig)
    text = svg.getvalue()
    text = text[text.index("<svg"):]  # inline: no XML declaration or doctype
    text = text.replace("<svg ", f'<svg role="img" aria-label="{html.escape(title)}" data-chart="{name}" ', 1)
    return Chart(name, title, text, png.getvalue())


def _empty(ax, message: str) -> None:
    ax.text(0.5, 0.5, message, ha="center", va="center", transform=ax.transAxes, color=NEUTRAL)
    ax.set_xticks([])
    ax.set_yticks([])


def downloads_over_time(plt, content: ReportContent) -> Chart:
    title = "Downloads of the campaign's shows and ads delivered, by day"
    fig, ax = plt.subplots(figsize=(8, 3.2))
    by_show: dict[str, dict] = defaultdict(dict)
    for record in content.table("downloads_daily").records():
        by_show[record["podcast_title"] or record["podcast_id"]][record["download_date"]] = float(record["downloads"])
    if not by_show:
        _empty(ax, "no downloads in the period")
    for show, days in sorted(by_show.items(), key=lambda item: -sum(item[1].values()))[:8]:
        dates = sorted(days)
        ax.plot(dates, [days[d] for d in dates], marker="o", linewidth=1.5, label=show)
    delivered = [(r["activity_date"], float(r["impressions"])) for r in content.table("performance_daily").records()
                 if r["impressions"]]
    if delivered:
        ax.plot([d for d, _ in delivered], [n for _, n in delivered], color=SELECTED, linestyle="--",
                linewidth=2, label="ads delivered (impressions)")
    if by_show or delivered:
        import matplotlib.dates as mdates

        ax.legend(fontsize=7, loc="upper left", frameon=False)
        ax.set_ylabel("per day")
        ax.xaxis.set_major_locator(mdates.AutoDateLocator(minticks=3, maxticks=10, interval_multiples=True))
        ax.xaxis.set_major_formatter(mdates.DateFormatter("%b %d"))
        ax.set_ylim(bottom=0)
        fig.autofmt_xdate()
    ax.set_title(title)
    return _finish(plt, fig, "downloads_over_time", title)


def conversions_by_model(plt, content: ReportContent) -> Chart:
    title = f"Conversions by attribution model (this report uses {content.attribution_model})"
    records = content.table("roi_by_model").records()
    fig, ax = plt.subplots(figsize=(8, 3))
    models = [r["attribution_model"] for r in records]
    values = [float(r["conversions"]) for r in records]
    colors = [SELECTED if r.get("is_selected_model") else OTHER for r in records]
    bars = ax.bar(models, values, color=colors)
    ax.bar_label(bars, labels=[f"{v:.1f}" for v in values], fontsize=8)
    ax.set_ylabel("credited conversions")
    ax.set_title(title)
    return _finish(plt, fig, "conversions_by_model", title)


def roi_versus_benchmarks(plt, content: ReportContent) -> Chart:
    title = "ROI versus benchmarks (quartiles of comparable campaigns)"
    fig, ax = plt.subplots(figsize=(8, 3))
    selected = next(r for r in content.table("roi_by_model").records() if r["is_selected_model"])
    labels, lows, mids, highs = [], [], [], []
    for record in content.table("benchmarks").records():
        if record["roi_median"] is None:
            continue
        labels.append(f"{record['position']} ({record['benchmark_level'].replace('_', ' ')})")
        lows.append(float(record["roi_p25"]))
        mids.append(float(record["roi_median"]))
        highs.append(float(record["roi_p75"]))
    positions = list(range(len(labels)))
    if labels:
        ax.bar(positions, [h - lo for lo, h in zip(lows, highs)], bottom=lows, color=NEUTRAL, alpha=0.5,
               label="benchmark 25th–75th percentile")
        ax.scatter(positions, mids, color="black", marker="_", s=300, label="benchmark median", zorder=3)
    else:
        _empty(ax, NO_BENCHMARK)
    if selected["roi"] is not None:
        ax.axhline(float(selected["roi"]), color=SELECTED, linewidth=2,
                   label=f"this campaign: {Decimal(selected['roi']) * 100:.1f} %")
    from matplotlib.ticker import PercentFormatter

    ax.set_xticks(positions, labels, rotation=20, fontsize=7)
    ax.yaxis.set_major_formatter(PercentFormatter(xmax=1, decimals=0))
    ax.set_ylabel("ROI")
    ax.legend(fontsize=7, frameon=False)
    ax.set_title(title)
    return _finish(plt, fig, "roi_versus_benchmarks", title)


def performance_by_placement(plt, content: ReportContent) -> Chart:
    title = "Performance by show and placement"
    records = content.table("placements").records()[:12]
    fig, ax = plt.subplots(figsize=(8, max(2.2, 0.35 * len(records) + 1)))
    if not records:
        _empty(ax, "no ads delivered yet")
    else:
        labels = [f"{(r['podcast_title'] or r['podcast_id'])[:40]} · {r['position']}" for r in records][::-1]
        impressions = [float(r["impressions"]) for r in records][::-1]
        revenue = [float(r["revenue"]) for r in records][::-1]
        bars = ax.barh(labels, impressions, color=OTHER)
        ax.bar_label(bars, labels=[f"{content.currency} {v:,.0f}" for v in revenue], fontsize=7, padding=3)
        ax.set_xlabel("impressions (label: credited revenue)")
    ax.set_title(title)
    return _finish(plt, fig, "performance_by_placement", title)


def sponsor_campaigns(plt, content: ReportContent) -> Chart:
    title = "Revenue and cost by campaign"
    records = content.table("campaigns").records()
    fig, ax = plt.subplots(figsize=(8, 3))
    positions = range(len(records))
    ax.bar([p - 0.2 for p in positions], [float(r["revenue"]) for r in records], width=0.4, color=SELECTED,
           label="revenue")
    ax.bar([p + 0.2 for p in positions], [float(r["cost"]) for r in records], width=0.4, color=OTHER, label="cost")
    ax.set_xticks(list(positions), [r["campaign_id"] for r in records], rotation=20, fontsize=7)
    ax.legend(fontsize=7, frameon=False)
    ax.set_title(title)
    return _finish(plt, fig, "revenue_and_cost_by_campaign", title)


def sponsor_conversions_by_model(plt, content: ReportContent) -> Chart:
    title = "Conversions by attribution model, all campaigns"
    records = content.table("roi_by_model").records()
    fig, ax = plt.subplots(figsize=(8, 3))
    bars = ax.bar([r["attribution_model"] for r in records], [float(r["conversions"]) for r in records], color=OTHER)
    ax.bar_label(bars, fmt="%.1f", fontsize=8)
    ax.set_title(title)
    return _finish(plt, fig, "conversions_by_model", title)


CAMPAIGN_CHARTS = {"standard": (downloads_over_time, conversions_by_model, roi_versus_benchmarks, performance_by_placement),
                   "summary": (conversions_by_model, roi_versus_benchmarks)}
SPONSOR_CHARTS = {"standard": (sponsor_campaigns, sponsor_conversions_by_model),
                  "summary": (sponsor_campaigns,)}


def draw_charts(content: ReportContent, template: str) -> list[Chart]:
    plt = _pyplot()
    charts = (CAMPAIGN_CHARTS if content.scope == "campaign" else SPONSOR_CHARTS)[template]
    drawn = []
    for draw in charts:
        started = time.perf_counter()
        chart = draw(plt, content)
        drawn.append(replace(chart, seconds=time.perf_counter() - started))
    return drawn
