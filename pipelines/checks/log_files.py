"""Loud failure instead of silent loss: a log file the loader mostly refused fails a blocking check.

The loader refuses a line it cannot read into quarantine and goes on, so a file in a format it
reads wrongly, or not at all, would load nothing and leave the run green. This check judges the
files of the batch it follows (the run's `_batch_id` in the ledger; the newest batch when no run
is given): a file whose refused share is above `log_refused_limit` (default 1 %) fails it, and
the result names the file, the format detected, the reasons and the formats accepted; for a file
in no known format, the config that adds a JSON field mapping.

Refused = malformed or unknown lines (every quarantine reason but `not_a_download`), over the
lines that claim to be requests (loaded + refused). Non-download operations are left out of both:
an S3 bucket's log holds console and upload calls in normal operation (19 of the 94 lines of the
real JSPirates sample), which say nothing about whether the loader reads the file right.

A file fails when its share is above the limit and at least `log_refused_min_lines` (default 3)
of its lines are refused, or when nothing of it loaded at all (a file of one unreadable line
fails too). The floor keeps a small file from failing on one torn line: the last file of a day
holds a few hundred lines, and one damaged write in it is 0.3 % of a day's traffic but can be
above 1 % of that file.
"""


from dataclasses import dataclass

import dagster as dg
import psycopg

from assets.ingestion.log_formats import MAPPING_HINT, accepted_formats, load_log_sources
from resources.settings import get_settings
from resources.warehouse import WarehouseResource

NOT_REFUSALS = ("not_a_download",)


@dataclass(frozen=True)
class FileVerdict:
    file_key: str
    tenant_id: str
    format: str
    loaded: int
    reasons: dict[str, int]  # refused lines by quarantine reason

    @property
    def refused(self) -> int:
        return sum(self.reasons.values())

    def fails(self, limit: float, min_lines: int) -> bool:
        if self.refused and not self.loaded:
            return True
        return self.share > limit and self.refused >= min_lines

    @property
    def share(self) -> float:
        total = self.loaded + self.refused
        return self.refused / total if total else 0.0

    def describe(self) -> str:
        reasons = ", ".join(f"{k} {v}" for k, v in sorted(self.reasons.items())) or "none"
        text = (f"{self.file_key} (tenant {self.tenant_id}): format {self.format}, {self.refused} of "
                f"{self.loaded + self.refused} lines refused ({100 * self.share:.1f} %; {reasons})")
        return text + (f"; {MAPPING_HINT}" if self.format == "unknown" else "")


def batch_files(conn: psycopg.Connection, batch_id: str | None = None) -> tuple[str | None, list[FileVerdict]]:
    """The files the batch loaded (the newest batch when `batch_id` is None), with their counts."""
    if batch_id is None:
        row = conn.execute("select _batch_id from ops.listener_log_files order by loaded_at desc limit 1").fetchone()
        batch_id = row[0] if row else None
    rows = conn.execute(
        """
        select f.file_key, f.tenant_id, f.format, f.rows_loaded, q.reason_code, count(q.line_no)
        from ops.listener_log_files f
        left join quarantine.listener_events q on q.file_key = f.file_key
        where f._batch_id = %s
        group by 1, 2, 3, 4, 5 order by 1
        """, (batch_id,)).fetchall()
    files: dict[str, FileVerdict] = {}
    for key, tenant, fmt, loaded, reason, n in rows:
        verdict = files.setdefault(key, FileVerdict(key, tenant, fmt, int(loaded), {}))
        if reason is not None and reason not in NOT_REFUSALS:
            verdict.reasons[reason] = int(n)
    return batch_id, list(files.values())


def judge(conn: psycopg.Connection, limit: float, batch_id: str | None = None,
          accepted: list[str] | None = None, min_lines: int = 3) -> dg.AssetCheckResult:
    batch, files = batch_files(conn, batch_id)
    failing = [f for f in files if f.fails(limit, min_lines)]
    accepted_text = ", ".join(accepted or accepted_formats())
    if failing:
        description = (f"{len(failing)} of {len(files)} log file(s) above the {100 * limit:g} % refused limit: "
                       + "; ".join(f.describe() for f in failing[:20]) + f". Formats accepted: {accepted_text}")
    else:
        description = f"{len(files)} log file(s) of batch {batch} within the {100 * limit:g} % refused limit"
    return dg.AssetCheckResult(
        passed=not failing, severity=dg.AssetCheckSeverity.ERROR, description=description[:4000],
        metadata={
            "batch_id": batch or "none", "files": len(files), "failing_files": len(failing),
            "refused_limit": limit, "refused_min_lines": min_lines,
            "failing": dg.MetadataValue.json([{"file_key": f.file_key, "format": f.format, "loaded": f.loaded,
                                               "refused": f.refused, "reasons": f.reasons} for f in failing[:100]]),
            "formats_accepted": accepted_text,
        },
    )


@dg.asset_check(
    asset=dg.AssetKey(["raw", "listener_events"]), name="listener_log_files_refused_share", blocking=True,
    description="Every log file this run loaded has at most `log_refused_limit` (1 %) of its request lines refused "
                "(malformed or in an unknown format); non-download operations are not refusals.",
)
def listener_log_files_refused_share(context: dg.AssetCheckExecutionContext,
                                     warehouse: WarehouseResource) -> dg.AssetCheckResult:
    settings = get_settings()
    mappings = load_log_sources(settings.resolved_sources_file()).mappings()
    with warehouse.connect() as conn:
        return judge(conn, settings.log_refused_limit, context.op_execution_context.run.run_id, accepted_formats(mappings),
                     settings.log_refused_min_lines)


LOG_CHECKS = [listener_log_files_refused_share]
