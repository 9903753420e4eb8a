"""Transcripts, chapters and the ad slots detected in them (issue 19, docs/AD_DETECTION.md).

- `raw.transcripts` / `raw.chapters_documents`: one row per (tenant, episode, document URL) as last
  fetched: format, language, size, content hash, validators, how many cues or chapters it held.
- `raw.transcript_cues`: the cues of each transcript (start/end seconds where the format has
  timings, the speaker where given); `raw.chapters`: the chapters of each chapters file.
- `quarantine.episode_documents`: transcripts and chapters files that could not be used now, with
  the reason (fetch errors, unknown formats, files that do not parse).
- `raw.ad_slots`: the sponsor reads and ad breaks the detector found, one row per slot, with the
  sponsor (brand, domain, vanity URL, promo code), kind, position, confidence, evidence and the
  detector's version; `ops.ad_detection_inputs` records what each episode's slots were detected
  from, so an unchanged episode is not detected again; `ops.ad_detection_evaluations` holds each
  evaluation against a ground truth (precision, recall, boundaries), read by the metrics.
- Placements may leave the ad's offset out (an insertion order that says "mid-roll, host read"):
  `raw.placements.ad_offset_seconds` becomes nullable; the detected slot places the ad.
"""

from resources.schema import run_script

revision = "0014"
down_revision = "0013"


def upgrade() -> None:
    run_script("""
        create table if not exists raw.transcripts (
            tenant_id       text        not null,
            feed_url        text        not null,
            guid            text        not null,
            url             text        not null,
            declared_type   text,
            language        text,
            format          text        not null check (format in ('vtt', 'srt', 'json', 'html', 'text')),
            content_type    text,
            bytes           integer     not null,
            content_sha256  text        not null,
            etag            text,
            last_modified   text,
            cue_count       integer     not null,
            has_timings     boolean     not null,
            fetched_at      timestamptz not null,
            _source         text        not null default 'transcript',
            _ingested_at    timestamptz not null default now(),
            _batch_id       text,
            primary key (tenant_id, feed_url, guid, url)
        );

        create table if not exists raw.transcript_cues (
            tenant_id      text          not null,
            feed_url       text          not null,
            guid           text          not null,
            url            text          not null,
            cue_index      integer       not null,
            start_seconds  numeric(10,3),
            end_seconds    numeric(10,3),
            speaker        text,
            body           text          not null,
            primary key (tenant_id, feed_url, guid, url, cue_index)
        );

        create table if not exists raw.chapters_documents (
            tenant_id       text        not null,
            feed_url        text        not null,
            guid            text        not null,
            url             text        not null,
            declared_type   text,
            version         text,
            content_type    text,
            bytes           integer     not null,
            content_sha256  text        not null,
            etag            text,
            last_modified   text,
            chapter_count   integer     not null,
            fetched_at      timestamptz not null,
            _source         text        not null default 'chapters',
            _ingested_at    timestamptz not null default now(),
            _batch_id       text,
            primary key (tenant_id, feed_url, guid, url)
        );

        create table if not exists raw.chapters (
            tenant_id      text          not null,
            feed_url       text          not null,
            guid           text          not null,
            url            text          not null,
            chapter_index  integer       not null,
            start_seconds  numeric(10,3) not null,
            end_seconds    numeric(10,3),
            title          text,
            link_url       text,
            image_url      text,
            toc            boolean,
            primary key (tenant_id, feed_url, guid, url, chapter_index)
        );

        create table if not exists quarantine.episode_documents (
            tenant_id     text        not null,
            feed_url      text        not null,
            guid          text        not null,
            url           text        not null,
            kind          text        not null check (kind in ('transcript', 'chapters')),
            reason_code   text        not null,
            detail        text,
            evidence      text,
            _ingested_at  timestamptz not null default now(),
            _batch_id     text,
            primary key (tenant_id, feed_url, guid, url)
        );

        create table if not exists raw.ad_slots (
            tenant_id         text          not null,
            feed_url          text          not null,
            guid              text          not null,
            slot_index        integer       not null,
            start_seconds     numeric(10,3),
            end_seconds       numeric(10,3),
            kind              text          not null
                              check (kind in ('host_read', 'produced', 'break', 'show_notes')),
            position          text          check (position in ('pre', 'mid', 'post')),
            sponsor_brand     text,
            sponsor_domain    text,
            vanity_url        text,
            promo_code        text,
            confidence        numeric(4,3)  not null check (confidence between 0 and 1),
            evidence          text          not null,
            evidence_sources  text[]        not null,
            detector_version  text          not null,
            _ingested_at      timestamptz   not null default now(),
            _batch_id         text,
            primary key (tenant_id, feed_url, guid, slot_index)
        );

        create table if not exists ops.ad_detection_inputs (
            tenant_id         text        not null,
            feed_url          text        not null,
            guid              text        not null,
            input_hash        text        not null,
            detector_version  text        not null,
            slot_count        integer     not null,
            detected_at       timestamptz not null default now(),
            primary key (tenant_id, feed_url, guid)
        );

        -- Each evaluation of the detector against a ground truth (the simulator's, where it applies):
        -- what the `ad_detection_accuracy` metric serves.
        create table if not exists ops.ad_detection_evaluations (
            evaluated_at          timestamptz not null default now(),
            run_id                text,
            tenant_id             text        not null,
            detector_version      text        not null,
            truth_slots           integer     not null,
            detected_slots        integer     not null,
            matched_slots         integer     not null,
            precision             double precision,
            recall                double precision,
            boundaries_within_15s double precision,
            primary key (evaluated_at, tenant_id)
        );

        alter table raw.placements alter column ad_offset_seconds drop not null;
    """)
