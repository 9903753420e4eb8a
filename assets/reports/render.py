"""A report's content in every format: a self-contained HTML page (inline CSS and SVG charts),
a PDF of the same content (fpdf2, charts as images), one CSV file per table, an XLSX workbook
with a sheet per table, and JSON.

Data files carry the marts' values unrounded: decimals as written by PostgreSQL (JSON holds every
number as a decimal string with its unit, so no digit is lost to floating point; XLSX as numbers
with a number format per column kind), dates in ISO format. Readers (HTML, PDF) see the same
values formatted by assets/reports/formatting.py: names for ids and codes, money with two
decimals, fractions as percentages.

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

from assets.reports import formatting
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


@dataclass(frozen=True)
class ShownTable:
    """A table as readers see it (HTML, PDF): headings, formatted cells, which cells are numbers
    and which rows are the report's own attribution model; ids with a name beside them hidden."""

    name: str
    title: str
    headers: list[str]
    numeric: list[bool]
    rows: list[list[str]]
    selected: list[bool]


def shown_table(table: Table, currency: str) -> ShownTable:
    columns = formatting.shown_columns(table.columns)
    records = table.records()
    return ShownTable(
        table.name, table.title, [formatting.header(c, currency) for c in columns],
        [formatting.kind_of(c) in formatting.NUMERIC_KINDS for c in columns],
        [[formatting.cell(c, r[c]) + (" (this report)" if c == "attribution_model" and r.get("is_selected_model")
                                      else "") for c in columns] for r in records],
        [bool(r.get("is_selected_model")) for r in records])


def shown_tables(content: ReportContent, template: str) -> list[ShownTable]:
    return [shown_table(content.tables[name], content.currency)
            for name in SHOWN[(content.scope, template)] if name in content.tables]


@functools.cache
def _environment():
    import jinja2

    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATE_DIR), autoescape=jinja2.select_autoescape(["j2"]),
                             undefined=jinja2.StrictUndefined)
    env.filters["label"] = formatting.label
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


def _json_value(value):
    """A value of a JSON data row: numbers as decimal strings, dates in ISO format."""
    if isinstance(value, int | Decimal) and not isinstance(value, bool):
        return formatting.decimal_string(value)
    return _plain(value)


def _document(content: ReportContent, generated_at: dt.datetime) -> dict:
    def units(table: Table) -> dict:
        return {c: u for c in table.columns if (u := formatting.unit(formatting.kind_of(c), content.currency))}

    return {
        "report": {
            "scope": content.scope, "tenant_id": content.tenant_id, "sponsor_id": content.sponsor_id,
            "campaign_id": content.campaign_id, "title": content.title,
            "attribution_model": content.attribution_model, "currency": content.currency,
            "period_start": content.period_start.isoformat(), "period_end": content.period_end.isoformat(),
            "period_end_partial_day": content.period_partial, "generated_at": generated_at.isoformat(),
        },
        "data_freshness": content.freshness,
        "facts": dict(content.facts),
        "kpis": {f.label: {"value": formatting.decimal_string(f.value),
                           "unit": formatting.unit(f.kind, content.currency)} for f in content.kpis},
        "tables": {t.name: {"title": t.title, "columns": list(t.columns), "units": units(t),
                            "rows": [{c: _json_value(v) for c, v in zip(t.columns, row)} for row in t.rows]}
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


def _width(values) -> float:
    """A column width (characters) that shows its widest value, within 10 to 48."""
    return min(48, max(10, *(len(v) + 2 for v in values)))


def render_xlsx(content: ReportContent, generated_at: dt.datetime) -> bytes:
    """A summary sheet (facts as text, key figures as numbers with their formats) and a sheet per
    table: the marts' column names and values (numbers as numbers, dates as dates), a number
    format per column kind, widths that show the values, a frozen header row and an autofilter."""
    from openpyxl import Workbook
    from openpyxl.styles import Alignment, Font
    from openpyxl.utils import get_column_letter

    book = Workbook()
    summary = book.active
    summary.title = "summary"
    summary.append(_typed_row(summary, [content.title]))
    summary["A1"].font = Font(bold=True, size=14)
    summary.append(_typed_row(summary, [content.subtitle]))
    summary.append(_typed_row(summary, ["generated at", generated_at.isoformat()]))
    for label, value in (*content.facts, *[(f"data: {k}", v) for k, v in content.freshness.items()]):
        summary.append(_typed_row(summary, [label, value]))
    for figure in content.kpis:
        value = figure.value if figure.value is None or isinstance(figure.value, Decimal | int) else Decimal(figure.value)
        summary.append(_typed_row(summary, [figure.label, value]))
        number_format = formatting.excel_format(figure.kind, content.currency)
        if number_format and value is not None:
            summary.cell(summary.max_row, 2).number_format = number_format
            summary.cell(summary.max_row, 2).alignment = Alignment(horizontal="left")
    summary.column_dimensions["A"].width = 28
    summary.column_dimensions["B"].width = 60
    for table in content.tables.values():
        sheet = book.create_sheet(table.name[:31])
        sheet.append(_typed_row(sheet, table.columns))
        for cell in sheet[1]:
            cell.font = Font(bold=True)
        for row in table.rows:
            sheet.append(_typed_row(sheet, row))
        for index, column in enumerate(table.columns, start=1):
            kind = formatting.kind_of(column)
            number_format = formatting.excel_format(kind, content.currency)
            if number_format:
                for (cell,) in sheet.iter_rows(min_row=2, min_col=index, max_col=index):
                    if cell.value is not None:
                        cell.number_format = number_format
            shown = [formatting.text(r[index - 1], kind, content.currency) for r in table.rows[:500]]
            sheet.column_dimensions[get_column_letter(index)].width = _width([column, *shown])
        sheet.freeze_panes = "A2"
        sheet.auto_filter.ref = f"A1:{get_column_letter(len(table.columns))}{max(1, len(table.rows) + 1)}"
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
    model = ", ".join(formatting.label(m) for m in content.attribution_model.split(", "))
    pairs(f"Data freshness (attribution model: {model})", content.freshness.items())
    pairs("Key figures", content.kpi_texts())

    for index, chart in enumerate(charts):
        if index % 2 == 0:
            pdf.add_page()
        pdf.set_font("report", "B", 11)
        pdf.multi_cell(0, 7, chart.title, new_x="LMARGIN", new_y="NEXT")
        pdf.image(io.BytesIO(chart.png), w=pdf.epw)
        pdf.ln(4)

    pdf.add_page(orientation="landscape")  # wide tables: up to 15 columns
    for table in shown_tables(content, template):
        size = 7 if len(table.headers) <= 8 else 6
        # Keep with next: a heading goes to a new page unless its table's heading row and first
        # rows fit under it (the heading row is repeated on every page the table runs onto).
        if pdf.will_page_break(7 + 4 * size * 0.55 * 2 + 8):
            pdf.add_page(orientation="landscape")
        pdf.set_font("report", "B", 11)
        pdf.multi_cell(0, 7, table.title, new_x="LMARGIN", new_y="NEXT")
        pdf.set_font("report", "", size)
        heading = FontFace(emphasis="BOLD", fill_color=(235, 235, 235))
        align = tuple("RIGHT" if numeric else "LEFT" for numeric in table.numeric)
        with pdf.table(headings_style=heading, line_height=size * 0.55, text_align=align, padding=0.8) as grid:
            grid.row(table.headers)
            for row in table.rows or [["—" for _ in table.headers]]:
                grid.row(row)
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
