"""Detected ad slots against a ground truth: precision, recall and boundary accuracy.

A detected slot counts when it overlaps a true slot of the same episode and names the same
sponsor (its domain, or failing that its brand); each true slot is matched at most once (the
largest overlap first). Only sponsor slots with times take part: breaks that name no sponsor and
show-note mentions are not slots of a sponsor's read. Boundaries are right when both the start and
the end are within `tolerance` seconds of the truth.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any, Iterable, Mapping

SPONSOR_KINDS = ("host_read", "produced")
TOLERANCE_SECONDS = 15.0


@dataclass(frozen=True)
class Evaluation:
    truth_slots: int
    detected_slots: int
    matched_slots: int
    boundaries_within: int

    @property
    def precision(self) -> float | None:
        return self.matched_slots / self.detected_slots if self.detected_slots else None

    @property
    def recall(self) -> float | None:
        return self.matched_slots / self.truth_slots if self.truth_slots else None

    @property
    def boundary_share(self) -> float | None:
        return self.boundaries_within / self.matched_slots if self.matched_slots else None

    def passes(self, precision: float, recall: float, boundaries: float) -> bool:
        return ((self.precision is None or self.precision >= precision)
                and (self.recall is None or self.recall >= recall)
                and (self.boundary_share is None or self.boundary_share >= boundaries))


def _same_sponsor(truth: Mapping[str, Any], detected: Mapping[str, Any]) -> bool:
    if truth.get("domain") and detected.get("domain"):
        return truth["domain"].lower().removeprefix("www.") == detected["domain"].lower()
    squash = lambda v: "".join(ch for ch in (v or "").lower() if ch.isalnum())  # noqa: E731
    return bool(squash(truth.get("brand"))) and squash(truth.get("brand")) == squash(detected.get("brand"))


def evaluate(truth: Iterable[Mapping[str, Any]], detected: Iterable[Mapping[str, Any]],
             tolerance: float = TOLERANCE_SECONDS) -> Evaluation:
    """Both sides are dicts with `episode` (any hashable key), `start`, `end`, `domain`, `brand`
    (and `kind` for the detected side)."""
    by_episode: dict[Any, list[Mapping[str, Any]]] = defaultdict(list)
    truth = list(truth)
    for t in truth:
        by_episode[t["episode"]].append(t)
    candidates = [d for d in detected if d.get("kind") in SPONSOR_KINDS and d.get("start") is not None]
    pairs = []
    for n, d in enumerate(candidates):
        for m, t in enumerate(by_episode.get(d["episode"], ())):
            overlap = min(float(d["end"]), float(t["end"])) - max(float(d["start"]), float(t["start"]))
            if overlap > 0 and _same_sponsor(t, d):
                pairs.append((overlap, n, id(t), t, d))
    pairs.sort(key=lambda p: -p[0])
    used_d, used_t, within = set(), set(), 0
    for _, n, tid, t, d in pairs:
        if n in used_d or tid in used_t:
            continue
        used_d.add(n)
        used_t.add(tid)
        within += (abs(float(d["start"]) - float(t["start"])) <= tolerance
                   and abs(float(d["end"]) - float(t["end"])) <= tolerance)
    return Evaluation(len(truth), len(candidates), len(used_d), within)
