"""Ad-slot detection speed: episodes per second for transcripts of 30–90 minutes, against a
baseline of reading and parsing the same files in the same run.

The simulator's episodes of 30–90 minutes (seeds `--seeds`, with the campaigns' reads left out:
only the external reads and hard negatives) are written to a scratch folder as the documents a
host serves: the transcript (WebVTT, SRT, Podcasting 2.0 JSON or HTML, as each show publishes it),
the chapters file and the show notes. Then, `--runs` times each, alternating:

- **baseline**: read every episode's files and parse them (assets/ingestion/transcript_parse.py);
- **detection**: the same, then detect the episode's slots (assets/processing/ad_detection.py).

Prints episodes per second of both, the detection's own time per hour of transcript (goal: under
1 s), and the ratio of detection to baseline (medians of the runs); then, per seed, the accuracy
of the detection on every episode with a transcript (any length) against the simulator's planted
reads: precision, recall and the share of matched slots with both boundaries within 15 s (goals
0.95, 0.85, 0.90; the suite checks the same with the campaigns' reads, over HTTP, in
tests/test_ad_slots_flow.py).

    python bench/ad_detection.py [--seeds 7 42] [--runs 5]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from assets.ingestion.transcript_parse import ParseError, parse_chapters, parse_transcript  # noqa: E402
from assets.processing.ad_detection import Chapter, Cue, EpisodeDocuments, RuleDetector  # noqa: E402
from assets.processing.ad_evaluation import evaluate  # noqa: E402
from assets.processing.ad_slots import own_domains  # noqa: E402
from simulator import transcripts as sim  # noqa: E402
from simulator.network import build_network  # noqa: E402

BASE_URL = "http://127.0.0.1:8000"


def write_episodes(folder: Path, seeds: list[int], shortest: int = 1800, longest: int = 5400) -> list[dict]:
    """The documents of the episodes of `shortest`..`longest` seconds as files; one dict per episode."""
    episodes = []
    for seed in seeds:
        network = build_network(seed=seed)
        for show in sim._usable_shows(network):
            feed = BASE_URL + show.path
            for ep in show.episodes:
                if not (ep.duration_seconds and shortest <= ep.duration_seconds <= longest):
                    continue
                docs = [d for d in sim.episode_documents(show, ep, BASE_URL) if d.defect is None]
                transcript = next((d for d in docs if d.kind == "transcript"), None)
                if transcript is None:
                    continue
                chapters = next((d for d in docs if d.kind == "chapters"), None)
                script = sim.episode_script(show, ep, feed)
                stem = folder / f"{seed}-{show.slug}-{ep.index}"
                entry = {"key": (show.tenant_id, feed, sim.episode_guid(ep)), "duration": ep.duration_seconds, "title": show.title, "feed": feed,
                         "link": f"https://{show.tenant_id}.example.com/{show.slug}",
                         "transcript": (stem.with_suffix(f".{transcript.format}"), transcript.declared_type),
                         "chapters": None, "notes": stem.with_suffix(".notes.txt")}
                entry["transcript"][0].write_bytes(sim.render_document(script, transcript))
                if chapters is not None:
                    path = stem.with_suffix(".chapters.json")
                    path.write_bytes(sim.render_document(script, chapters))
                    entry["chapters"] = (path, chapters.declared_type)
                entry["notes"].write_text(sim.show_notes_text(show, ep))
                episodes.append(entry)
    return episodes


def read_and_parse(entry: dict) -> EpisodeDocuments:
    path, declared = entry["transcript"]
    parsed = parse_transcript(path.read_bytes(), declared)
    cues = [Cue(c.start_ms / 1000 if c.start_ms is not None else None,
                c.end_ms / 1000 if c.end_ms is not None else None, c.speaker, c.body) for c in parsed.cues]
    chapters: list[Chapter] = []
    if entry["chapters"] is not None:
        try:
            found = parse_chapters(entry["chapters"][0].read_bytes(), entry["chapters"][1]).chapters
        except ParseError:  # an episode too short for chapters: an empty file, quarantined
            found = []
        chapters = [Chapter(c.start_ms / 1000, c.end_ms / 1000 if c.end_ms is not None else None, c.title,
                            c.link_url, c.toc) for c in found]
    return EpisodeDocuments(cues=cues, chapters=chapters, show_notes=entry["notes"].read_text(),
                            duration=entry["duration"], own_domains=own_domains(entry["link"], entry["feed"]),
                            show_title=entry["title"])


def baseline(episodes: list[dict]) -> tuple[float, float]:
    started = time.perf_counter()
    for entry in episodes:
        read_and_parse(entry)
    return time.perf_counter() - started, 0.0


def detection(episodes: list[dict]) -> tuple[float, float]:
    detector = RuleDetector()
    detecting = 0.0
    started = time.perf_counter()
    for entry in episodes:
        documents = read_and_parse(entry)
        t = time.perf_counter()
        detector.detect(documents)
        detecting += time.perf_counter() - t
    return time.perf_counter() - started, detecting


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[7, 42])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-ads-") as scratch:
        episodes = write_episodes(Path(scratch), args.seeds)
        hours = sum(e["duration"] for e in episodes) / 3600
        size = sum(e["transcript"][0].stat().st_size for e in episodes)
        formats = sorted({e["transcript"][0].suffix for e in episodes})
        print(f"{len(episodes)} episodes of 30-90 min, {hours:.1f} h of transcript, {size / 2**20:.1f} MiB "
              f"({', '.join(formats)})")
        base_runs, detect_runs, own = [], [], []
        for _ in range(args.runs):
            base_runs.append(baseline(episodes)[0])
            total, detecting = detection(episodes)
            detect_runs.append(total)
            own.append(detecting)
    base, total, detecting = statistics.median(base_runs), statistics.median(detect_runs), statistics.median(own)
    print(f"baseline  (read + parse):          {base:7.2f} s  {len(episodes) / base:7.1f} episodes/s")
    print(f"detection (read + parse + detect): {total:7.2f} s  {len(episodes) / total:7.1f} episodes/s")
    print(f"detection alone: {detecting:.2f} s = {detecting / hours * 1000:.1f} ms per hour of transcript "
          f"(goal < 1000 ms); {detecting / len(episodes) * 1000:.1f} ms per episode")
    print(f"ratio detection / baseline: {total / base:.2f}x (the detector adds {detecting / base:.0%} to reading "
          f"and parsing)")
    for seed in args.seeds:
        accuracy(seed)


def accuracy(seed: int) -> None:
    network = build_network(seed=seed)
    truth = [{"episode": (r["tenant_id"], r["feed_url"], r["guid"]), "start": r["start_seconds"],
              "end": r["end_seconds"], "domain": r["domain"], "brand": r["brand"]}
             for r in sim.ad_slot_truth(network, BASE_URL)]
    detector, detected = RuleDetector(), []
    with tempfile.TemporaryDirectory(prefix="bench-ads-") as scratch:
        for entry in write_episodes(Path(scratch), [seed], shortest=0, longest=10**9):
            for slot in detector.detect(read_and_parse(entry)):
                detected.append({"episode": entry["key"], "start": slot.start, "end": slot.end, "kind": slot.kind,
                                 "domain": slot.domain, "brand": slot.brand})
    r = evaluate(truth, detected)
    print(f"seed {seed}: {r.truth_slots} planted reads, {r.detected_slots} sponsor slots detected, "
          f"{r.matched_slots} matched: precision {r.precision:.3f}, recall {r.recall:.3f}, "
          f"boundaries within 15 s {r.boundary_share:.3f}")


if __name__ == "__main__":
    main()
