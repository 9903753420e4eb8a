"""A report's content in every format: a self-contained HTML page (inline CSS and SVG charts),
a PDF of the same content (fpdf2, charts as images), one CSV file per table, an XLSX workbook
with a sheet per table, and JSON.

Data files carry the marts' values unrounded: decimals as written by PostgreSQL (JSON holds them
as strings, so no digit is lost to floating point), dates in ISO format.

Names come from sponsors, insertion orders and feeds, so spreadsheet files never let text act as
a formula (OWASP's CSV injection guidance): in CSV a text cell starting with `=`, `+`, `-`, `@`,
a tab or a carriage return is prefixed with a single quote; in XLSX every cell is typed
explicitly (text as a string with Excel's quote prefix, numbers as numbers, never a formula)."""

from __future__ import annotations

import csv
import datetime as dt
import functools
import hashlib
import io
import json
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

from assets.reports.charts import Chart
from assets.reports.content import ReportContent, Table

TEMPLATE_DIR = Path(__file__).with_name("templates")
# Tables shown in the HTML page and the PDF, per template (data files always hold every table).
SHOWN = {
    ("campaign", "standard"): ("roi_by_model", "placements", "benchmarks", "lift", "performance_daily", "downloads_daily"),
    ("campaign", "summary"): ("roi_by_model", "benchmarks", "lift"),
    ("sponsor", "standard"): ("roi_by_model", "campaigns"),
    ("sponsor", "summary"): ("campaigns",),
}


@dataclass(frozen=True)
class RenderedFile:
    format: str
    part: str          # the table of a CSV file, '' for the others
    suffix: str        # file name ending: ".html", ".performance_daily.csv", ...
    data: bytes


def _plain(value):
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dt.date | dt.datetime):
        return value.isoformat()
    return value


FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_text(text: str) -> str:
    """A text cell made safe for a spreadsheet: prefixed with `'` when it starts with a formula
    trigger (numbers are not text and keep their sign)."""
    return f"'{text}" if text.startswith(FORMULA_TRIGGERS) else text


def _csv_cell(value):
    return spreadsheet_text(value) if isinstance(value, str) else _plain(value)


def display(value) -> str:
    """A cell as shown to a reader (data files keep the raw value)."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, Decimal):
        return f"{value:,}"  # the mart's own scale: money keeps its cents
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def shown_tables(content: ReportContent, template: str) -> list[Table]:
    return [content.tables[name] for name in SHOWN[(content.scope, template)] if name in content.tables]


@functools.cache
def _environment():
    import jinja2

    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATE_DIR), autoescape=jinja2.select_autoescape(["j2"]),
                             undefined=jinja2.StrictUndefined)
    env.filters["display"] = display
    return env


def render_html(content: ReportContent, charts: list[Chart], template: str, generated_at: dt.datetime) -> bytes:
    import markupsafe

    page = _environment().get_template("report.html.j2").render(
        content=content, template=template, tables=shown_tables(content, template),
        charts=[(chart, markupsafe.Markup(chart.svg)) for chart in charts], generated_at=generated_at,
    )
    return page.encode()


def render_csv(content: ReportContent) -> list[RenderedFile]:
    files = []
    for table in content.tables.values():
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(table.columns)
        writer.writerows([_csv_cell(v) for v in row] for row in table.rows)
        files.append(RenderedFile("csv", table.name, f".{table.name}.csv", out.getvalue().encode()))
    return files


def _document(content: ReportContent, generated_at: dt.datetime) -> dict:
    return {
        "report": {
            "scope": content.scope, "tenant_id": content.tenant_id, "sponsor_id": content.sponsor_id,
            "campaign_id": content.campaign_id, "title": content.title,
            "attribution_model": content.attribution_model, "currency": content.currency,
            "period_start": content.period_start.isoformat(), "period_end": content.period_end.isoformat(),
            "generated_at": generated_at.isoformat(),
        },
        "data_freshness": content.freshness,
        "facts": dict(content.facts),
        "kpis": dict(content.kpis),
        "tables": {t.name: {"title": t.title, "columns": list(t.columns),
                            "rows": [{c: _plain(v) for c, v in zip(t.columns, row)} for row in t.rows]}
                   for t in content.tables.values()},
    }


def fingerprint(content: ReportContent, template: str, formats: list[str]) -> str:
    """SHA-256 of everything a report shows (every table, fact, figure, freshness and the period)
    with its template and formats, not of when it was generated: equal hashes, equal reports."""
    document = _document(content, dt.datetime.min)
    del document["report"]["generated_at"]
    document["template"], document["formats"] = template, sorted(formats)
    return hashlib.sha256(json.dumps(document, sort_keys=True).encode()).hexdigest()


def render_json(content: ReportContent, generated_at: dt.datetime) -> bytes:
    return json.dumps(_document(content, generated_at), indent=2, ensure_ascii=False).encode()


def _typed_row(sheet, values) -> list:
    """openpyxl cells for one row, typed explicitly: a string is always a string cell (openpyxl
    would make `=…` a formula), quote-prefixed when it starts with a formula trigger so that
    editing it in Excel keeps it text; numbers, dates and booleans keep their own types."""
    from openpyxl.cell.cell import Cell

    cells = []
    for value in values:
        if isinstance(value, str):
            cell = Cell(sheet)
            cell._value, cell.data_type = value, "s"  # noqa: SLF001 (set without openpyxl's formula guess)
            if value.startswith(FORMULA_TRIGGERS):
                cell.quotePrefix = True
        else:
            cell = Cell(sheet, value=value)
        cells.append(cell)
    return cells


def render_xlsx(content: ReportContent, generated_at: dt.datetime) -> bytes:
    from openpyxl import Workbook
    from openpyxl.styles import Font

    book = Workbook()
    summary = book.active
    summary.title = "summary"
    summary.append(_typed_row(summary, [content.title]))
    summary["A1"].font = Font(bold=True, size=14)
    summary.append(_typed_row(summary, [content.subtitle]))
    summary.append(_typed_row(summary, ["generated at", generated_at.isoformat()]))
    for label, value in (*content.facts, *[(f"data: {k}", v) for k, v in content.freshness.items()], *content.kpis):
        summary.append(_typed_row(summary, [label, value]))
    summary.column_dimensions["A"].width = 28
    summary.column_dimensions["B"].width = 48
    for table in content.tables.values():
        sheet = book.create_sheet(table.name[:31])
        sheet.append(_typed_row(sheet, table.columns))
        for cell in sheet[1]:
            cell.font = Font(bold=True)
        for row in table.rows:
            sheet.append(_typed_row(sheet, row))
        sheet.freeze_panes = "A2"
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def _font_path() -> Path:
    import matplotlib

    return Path(matplotlib.get_data_path()) / "fonts" / "ttf"


def render_pdf(content: ReportContent, charts: list[Chart], template: str, generated_at: dt.datetime) -> bytes:
    """Page 1: title, facts, data freshness and key figures; then the charts, two per page; then
    the tables. Every page has a footer 'page n of N'."""
    from fpdf import FPDF
    from fpdf.fonts import FontFace

    title = content.title

    class Document(FPDF):
        def footer(self):
            self.set_y(-12)
            self.set_font("report", size=7)
            self.set_text_color(120)
            self.cell(0, 6, f"{title} · generated {generated_at:%Y-%m-%d %H:%M} UTC · page {self.page_no()} of {{nb}}",
                      align="C")
            self.set_text_color(0)

    pdf = Document(orientation="portrait", format="A4")
    pdf.set_title(title)
    pdf.set_creator("podcast-analytics")
    pdf.add_font("report", "", str(_font_path() / "DejaVuSans.ttf"))
    pdf.add_font("report", "B", str(_font_path() / "DejaVuSans-Bold.ttf"))
    pdf.set_auto_page_break(True, margin=16)

    pdf.add_page()
    pdf.set_font("report", "B", 18)
    pdf.multi_cell(0, 9, title, new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("report", "", 10)
    pdf.multi_cell(0, 6, content.subtitle, new_x="LMARGIN", new_y="NEXT")
    pdf.ln(3)

    def pairs(heading: str, items) -> None:
        pdf.set_font("report", "B", 11)
        pdf.cell(0, 7, heading, new_x="LMARGIN", new_y="NEXT")
        pdf.set_font("report", "", 9)
        with pdf.table(col_widths=(60, 120), first_row_as_headings=False, line_height=5.5) as grid:
            for label, value in items:
                grid.row([label, value])
        pdf.ln(3)

    pairs("Campaign" if content.scope == "campaign" else "Sponsor", content.facts)
    pairs(f"Data freshness (attribution model: {content.attribution_model})", content.freshness.items())
    pairs("Key figures", content.kpis)

    for index, chart in enumerate(charts):
        if index % 2 == 0:
            pdf.add_page()
        pdf.set_font("report", "B", 11)
        pdf.multi_cell(0, 7, chart.title, new_x="LMARGIN", new_y="NEXT")
        pdf.image(io.BytesIO(chart.png), w=pdf.epw)
        pdf.ln(4)

    pdf.add_page(orientation="landscape")  # wide tables: up to 15 columns
    for table in shown_tables(content, template):
        pdf.set_font("report", "B", 11)
        pdf.multi_cell(0, 7, table.title, new_x="LMARGIN", new_y="NEXT")
        size = 7 if len(table.columns) <= 8 else 6
        pdf.set_font("report", "", size)
        heading = FontFace(emphasis="BOLD", fill_color=(235, 235, 235))
        with pdf.table(headings_style=heading, line_height=size * 0.55, text_align="LEFT", padding=0.8) as grid:
            grid.row([c.replace("_", " ") for c in table.columns])
            for row in table.rows or [tuple("—" for _ in table.columns)]:
                grid.row([display(v) for v in row])
        pdf.ln(5)
    return bytes(pdf.output())


def render(content: ReportContent, charts: list[Chart], template: str, formats: list[str],
           generated_at: dt.datetime) -> list[RenderedFile]:
    files: list[RenderedFile] = []
    for fmt in formats:
        if fmt == "html":
            files.append(RenderedFile("html", "", ".html", render_html(content, charts, template, generated_at)))
        elif fmt == "pdf":
            files.append(RenderedFile("pdf", "", ".pdf", render_pdf(content, charts, template, generated_at)))
        elif fmt == "csv":
            files.extend(render_csv(content))
        elif fmt == "xlsx":
            files.append(RenderedFile("xlsx", "", ".xlsx", render_xlsx(content, generated_at)))
        elif fmt == "json":
            files.append(RenderedFile("json", "", ".json", render_json(content, generated_at)))
        else:
            raise ValueError(f"unknown report format {fmt!r}")
    return files
