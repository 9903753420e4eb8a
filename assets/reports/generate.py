"""Generate a report (read the marts, draw, render, store) and keep the registry
(`reports.reports`) and its 30-day retention."""

from __future__ import annotations

import datetime as dt
import hashlib
import uuid
from dataclasses import dataclass


from assets.reports.content import FORMATS, ReportContent, ReportError, ReportRequest, report_content
from assets.reports.render import fingerprint, render
from resources.timings import Timing, record_timings
from resources.report_store import ReportStoreResource
from resources.warehouse import WarehouseResource


@dataclass(frozen=True)
class StoredFile:
    format: str
    part: str
    url: str
    size_bytes: int
    checksum_sha256: str


@dataclass(frozen=True)
class GeneratedReport:
    report_id: str
    content: ReportContent
    files: list[StoredFile]
    generated_at: dt.datetime
    expires_at: dt.datetime
    seconds: float
    reused: bool = False   # the same content was already generated: its files are re-issued

    def url(self, fmt: str, part: str = "") -> str:
        return next(f.url for f in self.files if f.format == fmt and f.part == part)


def validate_formats(formats: list[str]) -> list[str]:
    unknown = sorted(set(formats) - set(FORMATS))
    if unknown or not formats:
        raise ReportError(f"unknown or no report formats {unknown or formats}; known: {', '.join(FORMATS)}")
    return [f for f in FORMATS if f in formats]


def data_fresh_through(content: ReportContent) -> dt.datetime | None:
    """The day through which every source of the report is complete: the earliest of the
    sources' latest days (downloads, ads delivered, conversions), as the end of that UTC day."""
    days = []
    for value in content.freshness.values():
        try:
            days.append(dt.date.fromisoformat(value))
        except ValueError:
            continue
    return dt.datetime.combine(min(days), dt.time.max, dt.UTC) if days else None


def generate_report(warehouse: WarehouseResource, store: ReportStoreResource, request: ReportRequest, formats: list[str],
                    batch_id: str | None = None, now: dt.datetime | None = None) -> GeneratedReport:
    """Read, draw, render, write every format and register the files, in that order: a failure
    anywhere leaves no registry row (rows are written last, in one transaction).

    A report whose content (numbers, period, template, formats) equals one already generated and
    not expired is not rendered again: its files are re-issued (their expiry moves to a full
    retention period from now), so a re-run on unchanged data writes nothing new."""
    import time

    started = time.perf_counter()
    timings: list[Timing] = []
    scope = "campaign" if request.campaign_id is not None else "sponsor"
    subject = request.campaign_id if scope == "campaign" else request.sponsor_id
    try:
        report = _generate(warehouse, store, request, formats, batch_id, now, started, timings)
    except Exception:
        timings.append(Timing("report_generation", time.perf_counter() - started, "failure", request.tenant_id,
                              subject, scope))
        record_timings(warehouse, timings, batch_id)
        raise
    timings.append(Timing("report_generation", report.seconds, "reused" if report.reused else "success",
                          request.tenant_id, subject, scope))
    record_timings(warehouse, timings, batch_id)
    return report


def _generate(warehouse: WarehouseResource, store: ReportStoreResource, request: ReportRequest, formats: list[str],
              batch_id: str | None, now: dt.datetime | None, started: float, timings: list[Timing]) -> GeneratedReport:
    import time

    formats = validate_formats(formats)
    now = now or dt.datetime.now(dt.UTC)
    read_started = time.perf_counter()
    with warehouse.connect() as conn:
        content = report_content(conn, request, today=now.date())
    timings.append(Timing("roi_calculation", time.perf_counter() - read_started, "success", content.tenant_id,
                          content.subject_id, content.scope))
    content_sha256 = fingerprint(content, request.template, formats)
    expires = now + dt.timedelta(days=store.retention_days)
    existing = _reissue(warehouse, store, content, content_sha256, now, expires)
    if existing is not None:
        report_id, generated_at, stored = existing
        return GeneratedReport(report_id, content, stored, generated_at, expires, round(time.perf_counter() - started, 3),
                               reused=True)
    charts = []
    if {"html", "pdf"} & set(formats):
        from assets.reports.charts import draw_charts

        charts = draw_charts(content, request.template)
        timings.extend(Timing("chart_render", c.seconds, "success", content.tenant_id, c.name, content.scope)
                       for c in charts)
    rendered = render(content, charts, request.template, formats, now)

    report_id = f"{content.subject_id}-{request.template}-{now:%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:6]}"
    stored = []
    for file in rendered:  # ids were validated by the request; the store checks the path stays under its root
        url = store.write("/".join((content.tenant_id, content.scope, content.subject_id, f"{report_id}{file.suffix}")),
                          file.data)
        stored.append(StoredFile(file.format, file.part, url, len(file.data), hashlib.sha256(file.data).hexdigest()))
    with warehouse.connect() as conn:
        conn.cursor().executemany(
            "insert into reports.reports (report_id, format, part, scope, tenant_id, sponsor_id, campaign_id, template, "
            "attribution_model, period_start, period_end, data_fresh_through, file_url, size_bytes, checksum_sha256, "
            "content_sha256, generated_at, expires_at, _batch_id) "
            "values (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
            [(report_id, f.format, f.part, content.scope, content.tenant_id, content.sponsor_id, content.campaign_id,
              request.template, content.attribution_model, content.period_start, content.period_end,
              data_fresh_through(content), f.url, f.size_bytes, f.checksum_sha256, content_sha256, now, expires,
              batch_id)
             for f in stored],
        )
    return GeneratedReport(report_id, content, stored, now, expires, round(time.perf_counter() - started, 3))


def _reissue(warehouse: WarehouseResource, store: ReportStoreResource, content: ReportContent, content_sha256: str,
             now: dt.datetime, expires: dt.datetime) -> tuple[str, dt.datetime, list[StoredFile]] | None:
    """The newest unexpired report with this content whose files are all still there, its
    expiry pushed to `expires`; None when there is none."""
    with warehouse.connect() as conn:
        rows = conn.execute(
            "select report_id, generated_at, format, part, file_url, size_bytes, checksum_sha256 from reports.reports "
            "where tenant_id = %s and content_sha256 = %s and deleted_at is null and expires_at > %s "
            "and report_id = (select report_id from reports.reports where tenant_id = %s and content_sha256 = %s "
            "                 and deleted_at is null and expires_at > %s order by generated_at desc limit 1) "
            "order by format, part", (content.tenant_id, content_sha256, now) * 2).fetchall()
        if not rows or not all(store.exists(url) for *_, url, _, _ in rows):
            return None
        conn.execute("update reports.reports set expires_at = greatest(expires_at, %s) where report_id = %s",
                     (expires, rows[0][0]))
    return rows[0][0], rows[0][1], [StoredFile(f, p, u, n, c) for _, _, f, p, u, n, c in rows]


@dataclass(frozen=True)
class RetentionResult:
    expired_files: int
    removed_files: int       # files that were still there (the others were already gone)
    kept_files: int
    refused_files: tuple[str, ...] = ()   # registered URLs outside the report store: never deleted


def enforce_retention(warehouse: WarehouseResource, store: ReportStoreResource, now: dt.datetime | None = None) -> RetentionResult:
    """Remove every report file past its expiry and mark its registry row deleted. Running it
    again changes nothing; a file already gone is recorded as deleted all the same. A registered
    URL outside the report store is never deleted: it stays in the registry, undeleted, and is
    returned in `refused_files` (every run names it again until someone looks)."""
    now = now or dt.datetime.now(dt.UTC)
    with warehouse.connect() as conn:
        expired = conn.execute(
            "select report_id, format, part, file_url from reports.reports "
            "where deleted_at is null and expires_at <= %s order by expires_at for update skip locked", (now,)
        ).fetchall()
        refused = tuple(url for *_, url in expired if not store.contains(url))
        deletable = [row for row in expired if row[3] not in refused]
        removed = sum(1 for *_, url in deletable if store.delete(url))
        conn.cursor().executemany(
            "update reports.reports set deleted_at = %s where report_id = %s and format = %s and part = %s",
            [(now, report_id, fmt, part) for report_id, fmt, part, _ in deletable],
        )
        kept = conn.execute("select count(*) from reports.reports where deleted_at is null").fetchone()[0]
    return RetentionResult(len(expired), removed, kept, refused)
