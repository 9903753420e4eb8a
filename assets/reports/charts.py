"""The charts of a report, drawn with matplotlib: SVG for the HTML page (text kept as text, so
the page stays searchable), PNG for the PDF. matplotlib is imported on first use only (it costs
about a second, and the code location must load fast)."""

from __future__ import annotations

import hashlib
import html
import io
import time
from collections import defaultdict
from dataclasses import dataclass, field, replace

from assets.reports.content import NO_BENCHMARK, ReportContent
from assets.reports.formatting import MODEL_NAMES, label, money, percent

NEUTRAL = "#9e9e9e"
# Every series keeps its colour in every chart and report: fixed colours for the series a report
# always has, and a show's colour picked from its own palette by a hash of its name (so no show
# ever takes a fixed series' colour, and a show has the same colour in every report).
SERIES_COLOURS = {
    "ads delivered": "#222222", "revenue": "#1b9e77", "cost": "#d95f02", "this campaign": "#e7298a",
    "benchmark": NEUTRAL,
    **dict(zip(MODEL_NAMES.values(), ("#1f78b4", "#33a02c", "#6a3d9a", "#b15928", "#a6761d"))),
}
SHOW_PALETTE = ("#4e79a7", "#f28e2b", "#59a14f", "#edc948", "#b07aa1", "#76b7b2", "#ff9da7", "#9c755f",
                "#8cd17d", "#86bcb6")


def show_colours(shows) -> dict[str, str]:
    """Distinct colours for the shows of one chart: each show its hashed colour, or the next free
    one of the palette when another show (earlier by name) already has it."""
    taken: dict[str, str] = {}
    for show in sorted(shows):
        start = SHOW_PALETTE.index(series_colour(show))
        free = [SHOW_PALETTE[(start + n) % len(SHOW_PALETTE)] for n in range(len(SHOW_PALETTE))]
        taken[show] = next((c for c in free if c not in taken.values()), free[0])
    return taken


def series_colour(series: str) -> str:
    """A series' colour: fixed for the report's own series ("revenue", "First touch", ...), else
    the show palette's entry for a hash of the name."""
    if series in SERIES_COLOURS:
        return SERIES_COLOURS[series]
    return SHOW_PALETTE[int(hashlib.sha256(series.encode()).hexdigest(), 16) % len(SHOW_PALETTE)]


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
    busiest = sorted(by_show.items(), key=lambda item: (-sum(item[1].values()), item[0]))[:8]
    colours = show_colours(show for show, _ in busiest)
    for show, days in busiest:
        dates = sorted(days)
        ax.plot(dates, [days[d] for d in dates], marker="o", linewidth=1.5, label=show, color=colours[show],
                gid=f"series-show-{len(ax.lines)}")
    delivered = [(r["activity_date"], float(r["impressions"])) for r in content.table("performance_daily").records()
                 if r["impressions"]]
    if delivered:
        ax.plot([d for d, _ in delivered], [n for _, n in delivered], color=series_colour("ads delivered"),
                linestyle="--", linewidth=2, label="ads delivered (impressions)", gid="series-ads-delivered")
    if by_show or delivered:
        import matplotlib.dates as mdates

        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False)
        ax.set_ylabel("per day")
        ax.xaxis.set_major_locator(mdates.AutoDateLocator(minticks=3, maxticks=10, interval_multiples=True))
        ax.xaxis.set_major_formatter(mdates.DateFormatter("%b %d"))
        ax.set_ylim(bottom=0)
        fig.autofmt_xdate()
    ax.set_title(title)
    return _finish(plt, fig, "downloads_over_time", title)


def conversions_by_model(plt, content: ReportContent) -> Chart:
    title = f"Conversions by attribution model (this report uses {label(content.attribution_model)})"
    records = content.table("roi_by_model").records()
    fig, ax = plt.subplots(figsize=(8, 3))
    models = [label(r["attribution_model"]) for r in records]
    values = [float(r["conversions"]) for r in records]
    bars = ax.bar(models, values, color=[series_colour(m) for m in models],
                  edgecolor=["black" if r.get("is_selected_model") else "none" for r in records], linewidth=1.5)
    ax.bar_label(bars, labels=[f"{v:,.1f}" + (" (this report)" if r.get("is_selected_model") else "")
                               for v, r in zip(values, records)], fontsize=8)
    ax.set_ylabel("credited conversions")
    ax.set_title(title)
    return _finish(plt, fig, "conversions_by_model", title)


def roi_axis(campaign: float | None, bands: list[tuple[float, float, float]]) -> tuple[float, float]:
    """The ROI axis of the benchmark chart (fractions): the campaign's value, the benchmark
    quartiles around it, at most max(1, 3 × |campaign ROI|) (100 percentage points, or three times
    the campaign's own ROI) either side of it, so a benchmark pool with extreme ROIs cannot
    flatten the campaign's value to the axis; what lies beyond is drawn clipped and labelled."""
    values = [v for band in bands for v in band] + ([campaign] if campaign is not None else [])
    if not values:
        return -0.1, 0.1
    low, high = min(values), max(values)
    if campaign is not None:
        reach = max(1.0, 3 * abs(campaign))
        low, high = max(low, campaign - reach), min(high, campaign + reach)
    low, high = min(low, 0.0), max(high, 0.0)  # zero (break-even) is always on the axis
    pad = max(0.02, 0.08 * (high - low))
    return low - pad, high + pad


def roi_versus_benchmarks(plt, content: ReportContent) -> Chart:
    """Each benchmark pool as its quartile band (25th to 75th percentile) with a tick at the
    median, and the campaign's ROI as a marked line across them, on roi_axis's scale."""
    title = "ROI versus benchmarks (quartiles of comparable campaigns)"
    selected = next(r for r in content.table("roi_by_model").records() if r["is_selected_model"])
    campaign = None if selected["roi"] is None else float(selected["roi"])
    labels, bands = [], []
    for record in content.table("benchmarks").records():
        if record["roi_median"] is None:
            continue
        labels.append(f"{label(record['position'])} ({label(record['benchmark_level']).lower()})")
        bands.append((float(record["roi_p25"]), float(record["roi_median"]), float(record["roi_p75"])))
    fig, ax = plt.subplots(figsize=(8, max(2.4, 0.5 * len(labels) + 1.4)))
    low, high = roi_axis(campaign, bands)
    rows = list(range(len(labels)))[::-1]
    colour = series_colour("benchmark")
    for row, (p25, median, p75) in zip(rows, bands):
        left, right = max(p25, low), min(p75, high)
        if right > left:
            ax.barh(row, right - left, left=left, height=0.5, color=colour, alpha=0.45, gid=f"benchmark-band-{row}",
                    label="benchmark 25th–75th percentile" if row == rows[0] else None)
        if low <= median <= high:
            ax.plot([median, median], [row - 0.3, row + 0.3], color="black", linewidth=2, gid=f"benchmark-median-{row}",
                    label="benchmark median" if row == rows[0] else None)
        quartiles = (("25th", p25), ("median", median), ("75th", p75))
        for beyond, edge, align in ((lambda v: v < low, low, "left"), (lambda v: v > high, high, "right")):
            clipped = ", ".join(f"{name} {percent(value)}" for name, value in quartiles if beyond(value))
            if clipped:  # off the axis: say where it really is
                ax.annotate(f"◂ {clipped}" if align == "left" else f"{clipped} ▸", (edge, row), xytext=(0, 9),
                            textcoords="offset points", ha=align, fontsize=7, color="#555555",
                            gid=f"benchmark-clipped-{row}")
    if not labels:
        _empty(ax, NO_BENCHMARK)
    if campaign is not None:
        ax.axvline(campaign, color=series_colour("this campaign"), linewidth=2, gid="campaign-roi",
                   label=f"this campaign: {percent(selected['roi'])}")
        ax.plot([campaign] * len(rows), rows, linestyle="none", marker="D", markersize=6,
                color=series_colour("this campaign"))
    from matplotlib.ticker import FuncFormatter

    ax.set_xlim(low, high)
    ax.set_yticks(rows, labels, fontsize=8)
    ax.xaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value * 100:,.0f} %"))
    ax.set_xlabel("ROI (net profit ÷ cost)")
    ax.legend(fontsize=7, frameon=False, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    ax.set_title(title)
    return _finish(plt, fig, "roi_versus_benchmarks", title)


def performance_by_placement(plt, content: ReportContent) -> Chart:
    title = "Performance by show and placement"
    records = content.table("placements").records()[:12]
    fig, ax = plt.subplots(figsize=(8, max(2.2, 0.35 * len(records) + 1)))
    if not records:
        _empty(ax, "no ads delivered yet")
    else:
        labels = [f"{(r['podcast_title'] or r['podcast_id'])[:40]} · {label(r['position'])}" for r in records][::-1]
        impressions = [float(r["impressions"]) for r in records][::-1]
        revenue = [r["revenue"] for r in records][::-1]
        bars = ax.barh(labels, impressions, color=series_colour("ads delivered"), alpha=0.7)
        ax.bar_label(bars, labels=[money(v, content.currency) for v in revenue], fontsize=7, padding=3)
        ax.set_xlabel("impressions (label: credited revenue)")
    ax.set_title(title)
    return _finish(plt, fig, "performance_by_placement", title)


def sponsor_campaigns(plt, content: ReportContent) -> Chart:
    title = "Revenue and cost by campaign"
    records = content.table("campaigns").records()
    fig, ax = plt.subplots(figsize=(8, 3))
    positions = range(len(records))
    ax.bar([p - 0.2 for p in positions], [float(r["revenue"]) for r in records], width=0.4,
           color=series_colour("revenue"), label="revenue", gid="series-revenue")
    ax.bar([p + 0.2 for p in positions], [float(r["cost"]) for r in records], width=0.4, color=series_colour("cost"),
           label="cost", gid="series-cost")
    ax.set_xticks(list(positions), [r["campaign_name"] or r["campaign_id"] for r in records], rotation=20, fontsize=7)
    ax.legend(fontsize=7, frameon=False)
    ax.set_title(title)
    return _finish(plt, fig, "revenue_and_cost_by_campaign", title)


def sponsor_conversions_by_model(plt, content: ReportContent) -> Chart:
    title = "Conversions by attribution model, all campaigns"
    records = content.table("roi_by_model").records()
    fig, ax = plt.subplots(figsize=(8, 3))
    models = [label(r["attribution_model"]) for r in records]
    bars = ax.bar(models, [float(r["conversions"]) for r in records], color=[series_colour(m) for m in models])
    ax.bar_label(bars, fmt="{:,.1f}", fontsize=8)
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
