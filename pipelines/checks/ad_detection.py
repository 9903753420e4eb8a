"""The blocking check of the ad-slot detector: on the simulated network, its slots against the
simulator's planted reads (`ad_slots_truth.json` beside the other truth files). The evaluation is
stored per tenant in `ops.ad_detection_evaluations` (kept `PODCAST_OPS_HISTORY_DAYS`, each tenant's
latest always), which the `ad_detection_accuracy` metric serves. On real sources there is no truth
and the check says so."""


import json
from collections import defaultdict

import dagster as dg

from assets.processing.ad_detection import DETECTOR_VERSION
from assets.processing.ad_evaluation import TOLERANCE_SECONDS, Evaluation, evaluate
from assets.processing.ad_slots import AD_SLOTS
from resources.settings import get_settings
from resources.warehouse import WarehouseResource

TRUTH_FILE = "ad_slots_truth.json"
MIN_PRECISION = 0.95
MIN_RECALL = 0.85
MIN_BOUNDARIES = 0.90


def evaluate_against_truth(conn, truth: dict, run_id: str | None = None) -> dict[str, Evaluation]:
    """Per tenant: the stored slots of the truth's episodes against the truth's slots; each
    evaluation is recorded in ops.ad_detection_evaluations."""
    episodes = {tuple(e) for e in truth["episodes"]}
    truth_rows: dict[str, list[dict]] = defaultdict(list)
    for s in truth["slots"]:
        key = (s["tenant_id"], s["feed_url"], s["guid"])
        truth_rows[s["tenant_id"]].append({"episode": key, "start": s["start_seconds"], "end": s["end_seconds"],
                                           "domain": s.get("domain"), "brand": s.get("brand")})
    detected: dict[str, list[dict]] = defaultdict(list)
    for t, f, g, start, end, kind, domain, brand in conn.execute(
            "select tenant_id, feed_url, guid, start_seconds, end_seconds, kind, sponsor_domain, sponsor_brand "
            "from raw.ad_slots"):
        if (t, f, g) in episodes:
            detected[t].append({"episode": (t, f, g), "start": start, "end": end, "kind": kind,
                                "domain": domain, "brand": brand})
    results = {}
    for tenant in sorted({e[0] for e in episodes}):
        result = evaluate(truth_rows.get(tenant, []), detected.get(tenant, []))
        results[tenant] = result
        conn.execute(
            "insert into ops.ad_detection_evaluations (run_id, tenant_id, detector_version, truth_slots, "
            "detected_slots, matched_slots, precision, recall, boundaries_within_15s) "
            "values (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
            (run_id, tenant, DETECTOR_VERSION, result.truth_slots, result.detected_slots, result.matched_slots,
             result.precision, result.recall, result.boundary_share))
    # Older evaluations than the ops history's retention go, except each tenant's latest (the metric's).
    conn.execute(
        "delete from ops.ad_detection_evaluations as old where old.evaluated_at < now() - make_interval(days => %s) "
        "and exists (select from ops.ad_detection_evaluations as newer where newer.tenant_id = old.tenant_id "
        "and newer.evaluated_at > old.evaluated_at)", (get_settings().ops_history_days,))
    return results


@dg.asset_check(
    asset=AD_SLOTS, blocking=True,
    description=f"On the simulated network, detected sponsor slots against the planted reads: precision >= "
                f"{MIN_PRECISION}, recall >= {MIN_RECALL}, both boundaries within {TOLERANCE_SECONDS:.0f} s for "
                f"{MIN_BOUNDARIES:.0%} of matched slots, per tenant.",
)
def ad_slots_match_simulator_truth(context: dg.AssetCheckExecutionContext,
                                   warehouse: WarehouseResource) -> dg.AssetCheckResult:
    truth_file = get_settings().simulator_dir / TRUTH_FILE
    if not truth_file.exists():
        return dg.AssetCheckResult(passed=True, description="no simulator ground truth here (real sources)",
                                   metadata={"applicable": False})
    truth = json.loads(truth_file.read_text())
    with warehouse.connect(autocommit=True) as conn:
        known = {tuple(r) for r in conn.execute("select tenant_id, feed_url, guid from raw.rss_episodes")}
        if not known & {tuple(e) for e in truth["episodes"]}:
            return dg.AssetCheckResult(passed=True, description="the stored feeds are not the simulated ones",
                                       metadata={"applicable": False})
        results = evaluate_against_truth(conn, truth, context.run.run_id)
    failing = [t for t, r in results.items() if not r.passes(MIN_PRECISION, MIN_RECALL, MIN_BOUNDARIES)]
    metadata = {"applicable": True, "detector_version": DETECTOR_VERSION}
    for tenant, r in results.items():
        metadata[f"{tenant}_precision"] = r.precision
        metadata[f"{tenant}_recall"] = r.recall
        metadata[f"{tenant}_boundaries_within_{TOLERANCE_SECONDS:.0f}s"] = r.boundary_share
        metadata[f"{tenant}_slots"] = dg.MetadataValue.json(
            {"truth": r.truth_slots, "detected": r.detected_slots, "matched": r.matched_slots})
    return dg.AssetCheckResult(
        passed=not failing,
        description="every tenant meets the goals" if not failing else f"below the goals: {', '.join(failing)}",
        metadata=metadata,
    )
