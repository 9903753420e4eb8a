"""Attribution at scale: exposures, multi-touch attribution and ROI marts.

Builds a warehouse with the simulator's real catalog (RSS feeds of the bench network), then
writes synthetic volume straight into the tables the attribution models read: `--downloads`
IAB downloads in marts.fct_downloads over 30 days (households re-used across days, as real
listeners are), campaigns with show-wide placements (each show carries a few campaigns at a time, as real
ones do), and `--conversions` conversion events in
raw.attribution_events (a share with promo codes, UTM or vanity visits; most from listening
households). The download counting itself is measured by bench/ingest.py; this measures what
comes after it. Prints:

  (a) full build of the attribution models (staging of campaigns and conversions, exposures,
      attribution, ROI marts), and of the daily lift mart on its own;
  (b) the incremental build after one more day of downloads and conversions, as a share of (a),
      both without the lift mart, which is rebuilt daily rather than with each run (target: <= 5 %);
  (c) ROI per campaign: the mart_campaign_roi build time divided by the number of campaigns,
      and the latency of recomputing one campaign's ROI from the attributed conversions
      (target: < 1 s per campaign).

    python bench/attribution.py [--downloads 10000000] [--conversions 1000000] [--database-url URL] [--skip-lift]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

import psycopg
from scratch import scratch_warehouse

from assets.ingestion.rss_ingest import FeedSource, RssSources, ingest_rss
from assets.ingestion.user_agents import read_patterns, store_patterns
from resources.settings import REPO_ROOT
from resources.warehouse import dbt_env, warehouse_at
from simulator.network import build_network
from simulator.server import SimulatorServer
from simulator.truth import ground_truth

ATTRIBUTION = ["path:models/staging/campaigns", "path:models/intermediate/attribution", "path:models/marts/attribution"]
DAYS = 30
FIRST_DAY = "2026-10-01"

# Synthetic volume, written with set-based SQL. %(...)s are psycopg parameters.
DOWNLOADS_SQL = """
insert into marts.fct_downloads (
    download_id, group_key, refreshed_at, tenant_id, episode_id, podcast_id, listener_ip_key, user_agent,
    listener_id, app_name, agent_type, device_category, platform, country_code, downloaded_at, download_date,
    bytes_covered, threshold_bytes, request_count, counted_at)
with episodes as (
    select row_number() over (order by episode_id) - 1 as n, episode_id, podcast_id, tenant_id, enclosure_length_bytes
    from staging.stg_rss__episodes where enclosure_length_bytes > 0
),
picks as (
    select i,
           (hashtext('e' || i) & 2147483647) %% (select count(*) from episodes) as episode_n,
           (hashtext('h' || i) & 2147483647) %% %(households)s as household,
           %(first_day)s::timestamptz + make_interval(days => %(day_offset)s + (i %% %(days)s))
               + make_interval(secs => (hashtext('t' || i) & 2147483647) %% 86400) as at
    from generate_series(%(start)s, %(stop)s - 1) as i
)
select md5('d' || picks.i), md5('g' || picks.i), now(), episodes.tenant_id, episodes.episode_id, episodes.podcast_id,
       md5(episodes.tenant_id || 'h' || picks.household), 'App/' || (picks.household %% 3),
       md5('l' || picks.household), 'App', 'app', 'mobile', 'ios', 'US', picks.at, (picks.at at time zone 'UTC')::date,
       (episodes.enclosure_length_bytes * (0.2 + 0.8 * ((hashtext('b' || picks.i) & 1023) / 1023.0)))::bigint,
       least(episodes.enclosure_length_bytes, 1048576), 1, now()
from picks inner join episodes on episodes.n = picks.episode_n
"""

CAMPAIGNS_SQL = """
insert into raw.sponsors (tenant_id, sponsor_id, name, category, _source)
select distinct tenant_id, 's' || s, 'Sponsor ' || s, (array['dtc_retail', 'software', 'finance'])[1 + s %% 3], 'bench'
from staging.stg_rss__podcasts cross join generate_series(0, %(sponsors)s - 1) as s;

insert into raw.campaigns (tenant_id, campaign_id, sponsor_id, name, budget, flight_start, flight_end, pricing_model,
                           flat_fee, cpm_rate, promo_codes, vanity_urls, utm_campaign, attribution_window_days,
                           attribution_model, exclude_prior_customers, _source)
select tenants.tenant_id, 'c' || c, 's' || (c %% %(sponsors)s), 'Campaign ' || c, 50000,
       %(first_day)s::date + (c %% 10), %(first_day)s::date + (c %% 10) + 19,
       case when c %% 2 = 0 then 'flat' else 'cpm' end, case when c %% 2 = 0 then 20000 end,
       case when c %% 2 = 1 then 25 end, array['code' || c], array['go.example.com/c' || c], 'utm' || c,
       (array[7, 14, 30, 45, 60])[1 + c %% 5],
       (array['first_touch', 'last_touch', 'linear', 'time_decay', 'position_based'])[1 + c %% 5], c %% 4 = 0, 'bench'
from (select distinct tenant_id from staging.stg_rss__podcasts) as tenants
cross join generate_series(0, %(campaigns)s - 1) as c;

insert into raw.placements (tenant_id, placement_id, campaign_id, feed_url, position, insertion, start_date, end_date,
                            ad_offset_seconds, ad_duration_seconds, _source)
with shows as (
    select tenant_id, feed_url, row_number() over (partition by tenant_id order by feed_url) - 1 as n,
           count(*) over (partition by tenant_id) as shows
    from staging.stg_rss__podcasts
),
numbered as (
    select campaigns.*, substring(campaigns.campaign_id from 2)::int as c from raw.campaigns as campaigns
)
select numbered.tenant_id, numbered.campaign_id || '-p', numbered.campaign_id, shows.feed_url,
       (array['pre', 'mid', 'post'])[1 + (numbered.c / shows.shows) %% 3],
       case when numbered.c %% 2 = 1 then 'dynamic' else 'baked_in' end,
       numbered.flight_start, numbered.flight_end,
       (array[0, 600, 1200])[1 + (numbered.c / shows.shows) %% 3], 60, 'bench'
from numbered
inner join shows on shows.tenant_id = numbered.tenant_id and shows.n = numbered.c %% shows.shows;
"""

CONVERSIONS_SQL = """
insert into raw.attribution_events (tenant_id, source, event_id, occurred_at, sponsor_id, event_type, ip_hash,
                                    ip_prefix_hash, ip_version, gross_revenue, currency, discount_codes,
                                    utm_campaign, vanity_url, _batch_id)
with tenants as (
    select row_number() over (order by tenant_id) - 1 as n, tenant_id from (select distinct tenant_id from raw.campaigns) t
),
events as (
    select i, (hashtext('k' || i) & 2147483647) %% 100 as kind,
           (hashtext('c' || i) & 2147483647) %% %(campaigns)s as campaign,
           (hashtext('h' || i) & 2147483647) %% %(households)s as household,
           (hashtext('n' || i) & 2147483647) %% (select count(*) from tenants) as tenant_n,
           %(first_day)s::timestamptz + make_interval(days => %(day_offset)s + (i %% %(days)s))
               + make_interval(secs => (hashtext('s' || i) & 2147483647) %% 86400) as at
    from generate_series(%(start)s, %(stop)s - 1) as i
)
select tenants.tenant_id, case when events.kind < 50 then 'shop_orders' else 'pixel' end, 'e' || events.i, events.at,
       's' || (events.campaign %% %(sponsors)s),
       case when events.kind < 50 then 'order' when events.kind < 90 then 'purchase' when events.kind < 95 then 'lead'
            else 'vanity_visit' end,
       md5(tenants.tenant_id || 'h' || events.household), md5(tenants.tenant_id || 'h' || events.household), 4,
       case when events.kind < 95 then 20 + events.i %% 180 end, 'USD',
       case when events.kind < 8 then array['code' || events.campaign] else '{}' end,
       case when events.kind between 50 and 54 then 'utm' || events.campaign end,
       case when events.kind >= 95 then 'go.example.com/c' || events.campaign end, 'bench'
from events inner join tenants on tenants.n = events.tenant_n
"""


def dbt_runner(url: str, work: Path):
    """`dbt run <extra>` on the bench warehouse, targets and logs under `work`: returns the wall
    time and each model's own time; a failed run prints dbt's output and stops the bench."""
    env = {**os.environ, **dbt_env(url)}
    project = REPO_ROOT / "dbt_project"
    dbt_bin = Path(sys.executable).with_name("dbt")

    def dbt(*extra: str) -> tuple[float, dict[str, float]]:
        started = time.perf_counter()
        done = subprocess.run([str(dbt_bin), "run", "--project-dir", str(project), "--profiles-dir", str(project),
                               "--target-path", str(work / "target"), "--log-path", str(work / "logs"), *extra],
                              capture_output=True, text=True, env=env)
        if done.returncode != 0:
            print(done.stdout[-3000:])
            raise SystemExit("dbt run failed")
        results = json.loads((work / "target" / "run_results.json").read_text())["results"]
        return time.perf_counter() - started, {r["unique_id"].rsplit(".", 1)[1]: r["execution_time"] for r in results}

    return dbt


def write_volume(url: str, downloads: int, conversions: int, campaigns: int, households: int) -> tuple[dict, int]:
    """The synthetic downloads (over DAYS days), campaigns and conversion events. Returns the
    parameters shared by the statements (for a later day) and the number of campaigns."""
    common = {"households": households, "days": DAYS, "first_day": FIRST_DAY, "sponsors": 12, "campaigns": campaigns}
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(DOWNLOADS_SQL, {**common, "start": 0, "stop": downloads, "day_offset": 0})
        for statement in filter(str.strip, CAMPAIGNS_SQL.split(";")):
            conn.execute(statement, common)
        conn.execute(CONVERSIONS_SQL, {**common, "start": 0, "stop": conversions, "day_offset": 0})
        # Loaded minutes after they happened, as in production.
        conn.execute("update raw.attribution_events set _ingested_at = occurred_at + interval '5 minutes'")
        conn.execute("analyze")
        return common, conn.execute("select count(*) from raw.campaigns").fetchone()[0]


def load_catalog(url: str) -> None:
    """The simulator's catalog (seed 42 feeds, ingested for real) and the user-agent patterns."""
    network = build_network(seed=42)
    with SimulatorServer(network) as sim:
        truth = ground_truth(network, sim.base_url)
        feeds = [FeedSource(tenant_id=f["tenant_id"], url=f["feed_url"]) for f in truth["feeds"]]
        ingest_rss(warehouse_at(url), RssSources(feeds=feeds, allow_private_hosts=True, timeout_seconds=1.0, max_attempts=1,
                                   max_bytes=4_000_000), batch_id="bench")
    with psycopg.connect(url, autocommit=True) as conn:
        store_patterns(conn, read_patterns(REPO_ROOT / "resources" / "user_agents"), "bench")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--downloads", type=int, default=10_000_000)
    parser.add_argument("--conversions", type=int, default=1_000_000)
    parser.add_argument("--campaigns", type=int, default=40, help="per tenant")
    parser.add_argument("--database-url", default=os.environ.get("BENCH_DATABASE_URL"))
    parser.add_argument("--skip-lift", action="store_true", help="do not time the daily lift mart's full build")
    args = parser.parse_args()
    households = max(1000, args.downloads // 8)
    with tempfile.TemporaryDirectory(prefix="bench-attribution-") as tmp, \
            scratch_warehouse(args.database_url, Path(tmp)) as url:
        load_catalog(url)
        dbt = dbt_runner(url, Path(tmp))
        dbt("--full-refresh")  # every model once, on the catalog alone: the tables exist
        started = time.perf_counter()
        common, campaigns = write_volume(url, args.downloads, args.conversions, args.campaigns, households)
        print(f"synthetic volume: {args.downloads:,} downloads, {args.conversions:,} conversion events, "
              f"{campaigns} campaigns ({time.perf_counter() - started:.0f} s to write)")

        full, full_models = dbt("--full-refresh", "--select", *ATTRIBUTION, "--exclude", "tag:daily")
        lift = None if args.skip_lift else dbt("--full-refresh", "--select", "tag:daily")[0]
        with psycopg.connect(url) as conn:
            exposures = conn.execute("select count(*) from intermediate.int_exposures").fetchone()[0]
            credited = conn.execute("select count(*) from marts.fct_attributed_conversions "
                                    "where match_type <> 'unattributed'").fetchone()[0]
        print(f"(a) full attribution build: {full:.1f} s ({exposures:,} exposures, {credited:,} credited rows); "
              + ("the daily lift mart: not timed (--skip-lift)" if lift is None else f"the daily lift mart on its own: {lift:.1f} s"))
        for name, seconds in sorted(full_models.items(), key=lambda kv: -kv[1])[:6]:
            print(f"      {name}: {seconds:.1f} s")

        # One more day: downloads and conversions of the day after the 30.
        day_downloads, day_conversions = args.downloads // DAYS, args.conversions // DAYS
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(DOWNLOADS_SQL, {**common, "start": args.downloads, "stop": args.downloads + day_downloads,
                                         "day_offset": DAYS, "days": 1})
            conn.execute(CONVERSIONS_SQL, {**common, "start": args.conversions,
                                           "stop": args.conversions + day_conversions, "day_offset": DAYS, "days": 1})
        # The hourly run: every attribution model but the daily lift (tag `daily`), the
        # partitioned ones over the new day's partition (no conversion comes after it, so no
        # later day's credits change), the others whole.
        new_day = date.fromisoformat(FIRST_DAY) + timedelta(days=DAYS)
        window = json.dumps({"min_date": new_day.isoformat(), "max_date": (new_day + timedelta(days=1)).isoformat()})
        incremental, incremental_models = dbt("--select", *ATTRIBUTION, "--exclude", "tag:daily", "--vars", window)
        print(f"(b) incremental build after one more day ({day_downloads:,} downloads, {day_conversions:,} "
              f"conversion events), lift excluded: {incremental:.1f} s = {incremental / full:.1%} of the "
              f"full build (target <= 5 %); the models' own time (summed over dbt's threads, without dbt's "
              f"start): {sum(incremental_models.values()):.1f} s vs {sum(full_models.values()):.1f} s = "
              f"{sum(incremental_models.values()) / sum(full_models.values()):.1%}")
        for name, seconds in sorted(incremental_models.items(), key=lambda kv: -kv[1])[:6]:
            print(f"      {name}: {seconds:.1f} s")

        roi_build = incremental_models.get("mart_campaign_roi", 0.0)
        with psycopg.connect(url) as conn:
            one = conn.execute("select tenant_id, campaign_id from raw.campaigns order by campaign_id limit 1").fetchone()
            latencies = []
            for _ in range(5):
                started = time.perf_counter()
                conn.execute(ONE_CAMPAIGN_ROI, {"tenant": one[0], "campaign": one[1]}).fetchall()
                latencies.append(time.perf_counter() - started)
        print(f"(c) ROI per campaign: mart_campaign_roi build {roi_build:.2f} s / {campaigns} campaigns = "
              f"{roi_build / campaigns * 1000:.1f} ms per campaign; one campaign's ROI recomputed from the "
              f"attributed conversions: median {sorted(latencies)[2] * 1000:.0f} ms (target < 1 s)")


# One campaign's ROI under its own model, straight from the attributed conversions and exposures.
ONE_CAMPAIGN_ROI = """
with campaign as (
    select * from staging.stg_campaigns__campaigns where tenant_id = %(tenant)s and campaign_id = %(campaign)s
),
impressions as (
    select count(*) as impressions from intermediate.int_exposures
    where tenant_id = %(tenant)s and campaign_id = %(campaign)s
),
revenue as (
    select coalesce(sum(credited_revenue), 0) as revenue from marts.fct_attributed_conversions as credits, campaign
    where credits.campaign_id = campaign.campaign_id and credits.tenant_id = campaign.tenant_id
        and credits.attribution_model = campaign.attribution_model
)
select (revenue - cost) / nullif(cost, 0) as roi
from revenue, impressions, campaign,
     lateral (select case when pricing_model = 'flat' then flat_fee
                          else least(budget, impressions * cpm_rate / 1000) end as cost) as costs
"""


if __name__ == "__main__":
    main()
