"""Blocking checks on the IAB download marts."""

import json

import dagster as dg

from resources.settings import get_settings
from resources.warehouse import WarehouseResource

FCT_DOWNLOADS = dg.AssetKey(["marts", "fct_downloads"])


@dg.asset_check(
    asset=FCT_DOWNLOADS, blocking=True,
    description="Every download maps to a known episode; unmatched media is reported. (The day rollups are "
                "reconciled with fct_downloads by the dbt test downloads_rollups_reconcile, in their partitions' runs.)",
)
def downloads_are_consistent(warehouse: WarehouseResource) -> dg.AssetCheckResult:
    with warehouse.connect() as conn:
        orphans = conn.execute(
            "select count(*) from marts.fct_downloads f left join marts.dim_episodes e using (episode_id) "
            "where e.episode_id is null"
        ).fetchone()[0]
        fact_total = conn.execute("select count(*) from marts.fct_downloads").fetchone()[0]
        unmatched = conn.execute(
            "select count(*), count(distinct media_key) from intermediate.int_downloads_iab_filtered "
            "where exclusion_reason = 'unmatched_media'"
        ).fetchone()
    return dg.AssetCheckResult(
        passed=not orphans,
        description=f"{orphans} downloads of unknown episodes" if orphans else "consistent",
        metadata={"downloads": fact_total, "unmatched_media_requests": unmatched[0],
                  "unmatched_media_files": unmatched[1], "downloads_of_unknown_episodes": orphans},
    )


@dg.asset_check(
    asset=FCT_DOWNLOADS, blocking=True,
    description="On the simulated network, downloads per episode and day equal the simulator's ground truth.",
)
def downloads_match_simulator_truth(warehouse: WarehouseResource) -> dg.AssetCheckResult:
    truth_file = get_settings().simulator_dir / "logs_truth.json"
    if not truth_file.exists():
        return dg.AssetCheckResult(passed=True, description="no simulator ground truth here (real sources)",
                                   metadata={"applicable": False})
    truth = json.loads(truth_file.read_text())
    with warehouse.connect() as conn:
        loaded = {r[0] for r in conn.execute("select sha256 from ops.listener_log_files "
                                             "where status in ('loaded', 'duplicate')").fetchall()}
    if not loaded or loaded != set(truth.get("file_sha256", [])):
        return dg.AssetCheckResult(passed=True, description="the loaded logs are not the simulated ones",
                                   metadata={"applicable": False, "loaded_files": len(loaded)})
    want = {(d["tenant_id"], d["enclosure_url_normalized"].split("://", 1)[1], d["day"]): d["downloads"]
            for d in truth["downloads"]}
    with warehouse.connect() as conn:
        rows = conn.execute(
            "select f.tenant_id, m.media_key, f.download_date::text, count(*) from marts.fct_downloads f "
            "join intermediate.int_episode_media m using (episode_id) group by 1, 2, 3"
        ).fetchall()
    got = {(t, m, d): n for t, m, d, n in rows}
    differing = sorted(k for k in set(want) | set(got) if want.get(k, 0) != got.get(k, 0))
    return dg.AssetCheckResult(
        passed=not differing,
        description="exact match" if not differing else f"{len(differing)} episode-days differ",
        metadata={"applicable": True, "loaded_files": len(loaded), "truth_downloads": sum(want.values()), "counted_downloads": sum(got.values()),
                  "differing_episode_days": len(differing),
                  "first_differences": dg.MetadataValue.json([list(k) + [want.get(k, 0), got.get(k, 0)] for k in differing[:10]])},
    )
