"""How a report's numbers and names read, in one place for every format: what kind of value each
mart column holds (money, fraction, ratio, count, ...), how a reader sees it (HTML, PDF and the
e-mail body), which Excel number format it gets (XLSX) and which unit it carries (JSON).

Values stay the marts' own Decimals up to the last step: a formatter quantizes a Decimal and
prints it, so no binary float reaches a reader (`80.6451612903225806` reads "80.65",
`869.7441914999999` reads "USD 869.74"). Fractions read as percentages with one decimal (ROI
0.034704 reads "3.5 %" in a table and in the key figures alike). Ids give way to names: a table
that carries `podcast_title` hides `podcast_id` from readers, and attribution models, sponsor
categories, placement positions and benchmark levels read as words. Data files (CSV, and the
XLSX and JSON tables) keep the raw values and ids, so they equal the marts row for row."""

from __future__ import annotations

import datetime as dt
from decimal import ROUND_HALF_UP, Decimal
from typing import NamedTuple

MONEY, FRACTION, RATIO, COUNT, CREDIT, DAYS, DATE, FLAG, ID, LABEL, TEXT = (
    "money", "fraction", "ratio", "count", "credit", "days", "date", "flag", "id", "label", "text")
NUMERIC_KINDS = (MONEY, FRACTION, RATIO, COUNT, CREDIT, DAYS)

# What each column of a report table holds (the marts' column names; one name per measure).
KINDS: dict[str, str] = {
    **dict.fromkeys(("revenue", "cost", "net_profit", "cpa", "effective_cpm", "budget", "cpa_median",
                     "effective_cpm_p25", "effective_cpm_median", "effective_cpm_p75", "cost_to_date", "spend"),
                    MONEY),
    **dict.fromkeys(("roi", "conversion_rate", "impression_share", "exposed_rate", "baseline_rate", "lift",
                     "roi_p25", "roi_median", "roi_p75", "conversion_rate_median", "roi_fraction",
                     "conversion_rate_fraction"), FRACTION),
    **dict.fromkeys(("frequency", "roas"), RATIO),
    **dict.fromkeys(("impressions", "households_reached", "downloads", "unique_listeners", "campaigns",
                     "tenants", "exposed_households", "exposed_converters", "baseline_households",
                     "baseline_converters", "attribution_window_days"), COUNT),
    "conversions": CREDIT,  # credited conversions: fractional under the linear and decay models
    "payback_days": DAYS,
    **dict.fromkeys(("activity_date", "download_date", "flight_start", "flight_end", "conversion_date"), DATE),
    **dict.fromkeys(("is_selected_model", "in_flight"), FLAG),
    **dict.fromkeys(("podcast_id", "campaign_id", "sponsor_id", "tenant_id"), ID),
    **dict.fromkeys(("attribution_model", "category", "position", "benchmark_level", "pricing_model"), LABEL),
}

HEADERS: dict[str, str] = {
    "activity_date": "Day", "download_date": "Day", "in_flight": "In flight",
    "households_reached": "Households reached", "unique_listeners": "Unique listeners",
    "conversions": "Conversions", "conversion_rate": "Conversion rate", "net_profit": "Net profit",
    "roi": "ROI", "roas": "ROAS", "cpa": "CPA", "effective_cpm": "Effective CPM", "payback_days": "Payback (days)",
    "attribution_model": "Attribution model", "is_selected_model": "This report's model",
    "podcast_id": "Show id", "podcast_title": "Show", "impression_share": "Share of impressions",
    "benchmark_level": "Benchmark pool", "roi_p25": "ROI 25th percentile", "roi_median": "ROI median",
    "roi_p75": "ROI 75th percentile", "cpa_median": "CPA median", "effective_cpm_median": "Effective CPM median",
    "conversion_rate_median": "Conversion rate median", "exposed_households": "Exposed households",
    "exposed_converters": "Exposed converters", "exposed_rate": "Exposed conversion rate",
    "baseline_households": "Baseline households", "baseline_converters": "Baseline converters",
    "baseline_rate": "Baseline conversion rate", "campaign_id": "Campaign id", "campaign_name": "Campaign",
    "flight_start": "Flight start", "flight_end": "Flight end",
}

# The dbt project's attribution models (models/marts/attribution/_attribution__models.yml).
MODEL_NAMES = {"first_touch": "First touch", "last_touch": "Last touch", "linear": "Linear",
               "time_decay": "Time decay", "position_based": "Position based"}
LABELS = {
    **MODEL_NAMES,
    "dtc_retail": "DTC retail", "food_delivery": "Food delivery", "uncategorized": "Uncategorized",
    "pre": "Pre-roll", "mid": "Mid-roll", "post": "Post-roll", "all": "All positions",
    "category_position": "Category and position", "category": "Category",
    "cpm": "CPM", "flat": "Flat fee",
}

# Tables shown to readers hide an id when the row names the same thing, and the selected-model flag
# when the model's name is there (the row is marked "(this report)" instead).
HIDDEN_WHEN = {"podcast_id": "podcast_title", "campaign_id": "campaign_name", "is_selected_model": "attribution_model"}

_CENT, _TENTH, _ONE = Decimal("0.01"), Decimal("0.1"), Decimal(1)


def kind_of(column: str) -> str:
    return KINDS.get(column, TEXT)


def header(column: str, currency: str | None = None) -> str:
    """A column's heading for readers: "Households reached", "Revenue (USD)"."""
    text = HEADERS.get(column) or column.replace("_", " ").capitalize()
    return f"{text} ({currency})" if currency and kind_of(column) == MONEY else text


def label(value: str | None) -> str:
    """A code as words: first_touch → "First touch", dtc_retail → "DTC retail"."""
    if value is None:
        return "—"
    return LABELS.get(value) or value.replace("_", " ").capitalize()


def _decimal(value) -> Decimal:
    return value if isinstance(value, Decimal) else Decimal(str(value))


def _quantized(value, step: Decimal) -> Decimal:
    return _decimal(value).quantize(step, rounding=ROUND_HALF_UP)


def money(value, currency: str | None = None) -> str:
    """"USD 1,234.50"; without a currency (a table whose heading names it) "1,234.50"."""
    if value is None:
        return "—"
    text = f"{_quantized(value, _CENT):,}"
    return f"{currency} {text}" if currency else text


def percent(value) -> str:
    """A fraction as a percentage: 0.034704 → "3.5 %"."""
    return "—" if value is None else f"{_quantized(_decimal(value) * 100, _TENTH):,} %"


def ratio(value) -> str:
    return "—" if value is None else f"{_quantized(value, _CENT):,}"


def count(value) -> str:
    return "—" if value is None else f"{_quantized(value, _ONE):,}"


def credit(value) -> str:
    """Credited conversions, one decimal: a linear model credits fractions of a conversion."""
    return "—" if value is None else f"{_quantized(value, _TENTH):,}"


def days(value) -> str:
    return "not yet" if value is None else f"{count(value)} days"


def text(value, kind: str, currency: str | None = None) -> str:
    """A value of a kind as a reader sees it (money with `currency` when given)."""
    if value is None:
        return "not yet" if kind == DAYS else "—"
    if kind == MONEY:
        return money(value, currency)
    if kind == FRACTION:
        return percent(value)
    if kind == RATIO:
        return ratio(value)
    if kind == COUNT:
        return count(value)
    if kind == CREDIT:
        return credit(value)
    if kind == DAYS:
        return days(value)
    if kind == FLAG:
        return "yes" if value else "no"
    if kind == LABEL:
        return label(value)
    if kind == DATE and isinstance(value, dt.date | dt.datetime):
        return value.isoformat()
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, Decimal | int | float):  # a column no map names: still no float artefacts
        return ratio(value)
    return str(value)


def cell(column: str, value) -> str:
    """A table cell as shown in HTML and PDF: money without its code and days without the word
    (the heading carries them)."""
    kind = kind_of(column)
    return count(value) if kind == DAYS and value is not None else text(value, kind)


def unit(kind: str, currency: str) -> str | None:
    """What a JSON number is counted in: the currency code, "fraction", "ratio", "count", "days"."""
    return {MONEY: currency, FRACTION: "fraction", RATIO: "ratio", COUNT: "count", CREDIT: "conversions",
            DAYS: "days"}.get(kind)


def decimal_string(value) -> str | None:
    """A number for JSON: the mart's decimal as written, never a float."""
    if value is None:
        return None
    return str(value) if isinstance(value, Decimal | int) else str(_decimal(value))


def excel_format(kind: str, currency: str) -> str | None:
    """The number format of a column's cells in XLSX."""
    return {MONEY: f'"{currency}" #,##0.00', FRACTION: "0.0%", RATIO: "0.00", COUNT: "#,##0", CREDIT: "#,##0.0",
            DAYS: "#,##0", DATE: "yyyy-mm-dd"}.get(kind)


class Figure(NamedTuple):
    """A key figure: its label, the mart's value and the value's kind."""

    label: str
    value: object
    kind: str

    def text(self, currency: str) -> str:
        return text(self.value, self.kind, currency)


def shown_columns(columns: tuple[str, ...]) -> tuple[str, ...]:
    """The columns a reader sees: an id is hidden where the table names the same thing."""
    return tuple(c for c in columns if HIDDEN_WHEN.get(c) not in columns)
