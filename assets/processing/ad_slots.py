"""The ad-slot detection asset: `raw.ad_slots` from the stored transcripts, chapters and show notes.

Incremental by episode: an episode is detected again only when what it is detected from changed
(its chosen transcript's or chapters file's content hash, its show notes, its duration, the show's
site and title) or the detector's version did (`ops.ad_detection_inputs`). Its slots are replaced in one
transaction, so a re-run on the same input changes nothing.

Of an episode's transcripts the detector reads one: timed before untimed, then Podcasting 2.0
JSON (it names speakers), WebVTT, SRT, HTML, plain text.
"""


import time
from collections import Counter, defaultdict
from dataclasses import dataclass
from typing import Iterable
from urllib.parse import urlsplit

import dagster as dg
import psycopg

from assets.automation import ON_NEW_DATA
from assets.ingestion.transcripts import DOCUMENT_FRESHNESS
from assets.processing.ad_detection import Chapter, Cue, Detector, EpisodeDocuments, RuleDetector, Slot, registrable
from resources.warehouse import WarehouseResource

BATCH = 200
# The columns of raw.ad_slots (tests/test_raw_columns.py holds the warehouse, the quality suite and
# dbt's source to them); the warehouse fills `_ingested_at` in.
RAW_COLUMNS = {
    "ad_slots": ("tenant_id", "feed_url", "guid", "slot_index", "start_seconds", "end_seconds", "kind", "position",
                 "sponsor_brand", "sponsor_domain", "vanity_url", "promo_code", "confidence", "evidence",
                 "evidence_sources", "detector_version", "_ingested_at", "_batch_id"),
}
SLOT_COLUMNS = tuple(c for c in RAW_COLUMNS["ad_slots"] if c != "_ingested_at")

# Every episode with what it would be detected from now, and the hash of those inputs.
PENDING_SQL = """
with transcript as (
    select distinct on (tenant_id, feed_url, guid) tenant_id, feed_url, guid, url, content_sha256
    from raw.transcripts
    order by tenant_id, feed_url, guid, has_timings desc,
             array_position(array['json', 'vtt', 'srt', 'html', 'text'], format), url
),
chapters as (
    select distinct on (tenant_id, feed_url, guid) tenant_id, feed_url, guid, url, content_sha256
    from raw.chapters_documents
    order by tenant_id, feed_url, guid, url
),
inputs as (
    select e.tenant_id, e.feed_url, e.guid, e.duration_seconds, e.description_text, p.link, p.title,
           t.url as transcript_url, c.url as chapters_url,
           md5(concat_ws('|', t.content_sha256, c.content_sha256, md5(coalesce(e.description_text, '')),
                         e.duration_seconds, p.link, p.title)) as input_hash
    from raw.rss_episodes as e
    left join raw.rss_podcasts as p on p.tenant_id = e.tenant_id and p.feed_url = e.feed_url
    left join transcript as t on t.tenant_id = e.tenant_id and t.feed_url = e.feed_url and t.guid = e.guid
    left join chapters as c on c.tenant_id = e.tenant_id and c.feed_url = e.feed_url and c.guid = e.guid
)
select inputs.*
from inputs
left join ops.ad_detection_inputs as done
    on done.tenant_id = inputs.tenant_id and done.feed_url = inputs.feed_url and done.guid = inputs.guid
where done.input_hash is distinct from inputs.input_hash or done.detector_version <> %(version)s
order by inputs.tenant_id, inputs.feed_url, inputs.guid
"""


@dataclass(frozen=True)
class Pending:
    tenant_id: str
    feed_url: str
    guid: str
    duration: int | None
    show_notes: str | None
    link: str | None
    title: str | None
    transcript_url: str | None
    chapters_url: str | None
    input_hash: str


@dataclass
class DetectionStats:
    episodes: int = 0
    unchanged: int = 0
    transcript_hours: float = 0.0
    seconds: float = 0.0
    kinds: Counter | None = None

    def as_metadata(self) -> dict:
        return {"episodes_detected": self.episodes, "episodes_unchanged": self.unchanged,
                "transcript_hours": round(self.transcript_hours, 2), "detect_seconds": round(self.seconds, 3),
                "slots_by_kind": dict(self.kinds or {})}


def own_domains(link: str | None, feed_url: str) -> frozenset[str]:
    """The show's own sites: its link's and its feed's registrable domains."""
    hosts = {urlsplit(u).hostname for u in (link, feed_url) if u}
    return frozenset(registrable(h) for h in hosts if h and "." in h)


def _chunks(items: list, size: int) -> Iterable[list]:
    for i in range(0, len(items), size):
        yield items[i:i + size]


def _rows_of(conn: psycopg.Connection, table: str, columns: str, order: str, keys: list[tuple]) -> list[tuple]:
    """The rows of `table` of the given (tenant, feed, guid, url) keys, in order."""
    if not keys:
        return []
    return conn.execute(
        f"select c.tenant_id, c.feed_url, c.guid, {columns} from {table} as c "  # noqa: S608 (fixed names)
        "join unnest(%s::text[], %s::text[], %s::text[], %s::text[]) as k(tenant_id, feed_url, guid, url) "
        f"using (tenant_id, feed_url, guid, url) order by c.tenant_id, c.feed_url, c.guid, c.{order}",
        [list(col) for col in zip(*keys)]).fetchall()


def _seconds(value) -> float | None:
    return float(value) if value is not None else None


def _load_documents(conn: psycopg.Connection, batch: list[Pending]) -> tuple[dict, dict]:
    """The cues of each episode's chosen transcript and its chapters, keyed by (tenant, feed, guid)."""
    cues: dict[tuple, list[Cue]] = defaultdict(list)
    chapters: dict[tuple, list[Chapter]] = defaultdict(list)
    for t, f, g, start, end, speaker, body in _rows_of(
            conn, "raw.transcript_cues", "c.start_seconds, c.end_seconds, c.speaker, c.body", "cue_index",
            [(p.tenant_id, p.feed_url, p.guid, p.transcript_url) for p in batch if p.transcript_url]):
        cues[(t, f, g)].append(Cue(_seconds(start), _seconds(end), speaker, body))
    for t, f, g, start, end, title, link, toc in _rows_of(
            conn, "raw.chapters", "c.start_seconds, c.end_seconds, c.title, c.link_url, c.toc", "chapter_index",
            [(p.tenant_id, p.feed_url, p.guid, p.chapters_url) for p in batch if p.chapters_url]):
        chapters[(t, f, g)].append(Chapter(float(start), _seconds(end), title, link, toc))
    return cues, chapters


def _slot_row(p: Pending, index: int, slot: Slot, version: str, batch_id: str | None) -> tuple:
    return (p.tenant_id, p.feed_url, p.guid, index, slot.start, slot.end, slot.kind, slot.position, slot.brand,
            slot.domain, slot.vanity_url, slot.promo_code, slot.confidence, slot.evidence, slot.sources, version,
            batch_id)


def detect_ad_slots(conn: psycopg.Connection, batch_id: str | None, detector: Detector | None = None,
                    redetect: bool = False) -> DetectionStats:
    """Detect the slots of every episode whose inputs changed (all of them with `redetect`)."""
    detector = detector or RuleDetector()
    if redetect:
        conn.execute("delete from ops.ad_detection_inputs")
    pending = [Pending(*row) for row in conn.execute(PENDING_SQL, {"version": detector.version}).fetchall()]
    total = conn.execute("select count(*) from raw.rss_episodes").fetchone()[0]
    stats = DetectionStats(unchanged=total - len(pending), kinds=Counter())
    for batch in _chunks(pending, BATCH):
        cues, chapters = _load_documents(conn, batch)
        rows, inputs = [], []
        started = time.perf_counter()
        for p in batch:
            key = (p.tenant_id, p.feed_url, p.guid)
            documents = EpisodeDocuments(cues=cues.get(key, ()), chapters=chapters.get(key, ()),
                                         show_notes=p.show_notes, duration=p.duration,
                                         own_domains=own_domains(p.link, p.feed_url), show_title=p.title)
            slots = detector.detect(documents)
            rows.extend(_slot_row(p, i, s, detector.version, batch_id) for i, s in enumerate(slots))
            inputs.append((*key, p.input_hash, detector.version, len(slots)))
            stats.kinds.update(s.kind for s in slots)
            if documents.cues:
                last = documents.cues[-1]
                stats.transcript_hours += float(last.end or last.start or p.duration or 0) / 3600
        stats.seconds += time.perf_counter() - started
        stats.episodes += len(batch)
        with conn.transaction(), conn.cursor() as cur:
            cur.execute(
                "delete from raw.ad_slots as s using unnest(%s::text[], %s::text[], %s::text[]) as k(tenant_id, feed_url, guid) "
                "where s.tenant_id = k.tenant_id and s.feed_url = k.feed_url and s.guid = k.guid",
                [list(col) for col in zip(*[(p.tenant_id, p.feed_url, p.guid) for p in batch])])
            with cur.copy(f"copy raw.ad_slots ({', '.join(SLOT_COLUMNS)}) from stdin") as copy:
                for row in rows:
                    copy.write_row(row)
            cur.executemany(
                "insert into ops.ad_detection_inputs (tenant_id, feed_url, guid, input_hash, detector_version, slot_count) "
                "values (%s, %s, %s, %s, %s, %s) on conflict (tenant_id, feed_url, guid) do update set "
                "input_hash = excluded.input_hash, detector_version = excluded.detector_version, "
                "slot_count = excluded.slot_count, detected_at = now()", inputs)
    return stats


class AdDetectionConfig(dg.Config):
    redetect: bool = False  # detect every episode again, changed or not


AD_SLOTS = dg.AssetKey(["raw", "ad_slots"])
DETECTION_INPUTS = dg.AssetKey(["ops", "ad_detection_inputs"])
AD_SLOT_KEYS = [AD_SLOTS, DETECTION_INPUTS]
DETECTED_FROM = [dg.AssetKey(["raw", "rss_episodes"]), dg.AssetKey(["raw", "transcript_cues"]),
                 dg.AssetKey(["raw", "chapters"])]


@dg.multi_asset(
    specs=[
        dg.AssetSpec(
            AD_SLOTS, group_name="raw", kinds={"python", "postgres"}, automation_condition=ON_NEW_DATA,
            freshness_policy=DOCUMENT_FRESHNESS,  # detected when the documents are fetched: new episodes, and daily
            deps=DETECTED_FROM,
            description="Sponsor reads and ad breaks detected in each episode's transcript, chapters and show notes "
                        "(assets/processing/ad_detection.py): times, sponsor, kind, position, confidence, evidence."),
        dg.AssetSpec(
            DETECTION_INPUTS, group_name="raw", kinds={"python", "postgres"}, automation_condition=ON_NEW_DATA,
            freshness_policy=DOCUMENT_FRESHNESS,
            deps=DETECTED_FROM,
            description="Per episode, what its slots were detected from (an input hash, the detector's version) and "
                        "when (`detected_at`, also when no slot is left): attribution builds an episode's days "
                        "again after it is detected again."),
    ],
    can_subset=False,  # the slots and the record of their inputs are written in one transaction
)
def ad_slots(context: dg.AssetExecutionContext, config: AdDetectionConfig, warehouse: WarehouseResource):
    warehouse.require_schema()
    with warehouse.connect(autocommit=True) as conn:
        stats = detect_ad_slots(conn, context.run.run_id, redetect=config.redetect)
        count, stamp = conn.execute("select count(*), max(_ingested_at) from raw.ad_slots").fetchone()
        episodes, detected = conn.execute(
            "select count(*), max(detected_at) from ops.ad_detection_inputs").fetchone()
    context.log.info(f"detected {stats.episodes} episodes ({stats.unchanged} unchanged): {dict(stats.kinds)}")
    yield dg.MaterializeResult(
        asset_key=AD_SLOTS,
        metadata={"dagster/row_count": count, "detector_version": RuleDetector.version, **stats.as_metadata()},
        data_version=dg.DataVersion(f"{count}:{stamp.isoformat() if stamp else '-'}"),
    )
    yield dg.MaterializeResult(
        asset_key=DETECTION_INPUTS, metadata={"dagster/row_count": episodes},
        data_version=dg.DataVersion(f"{episodes}:{detected.isoformat() if detected else '-'}"),
    )
