"""Hourly downloads for sub-day dashboards: `time_bucket` over the downloads fact, as a plain
table (today) and as a hypertable, against a continuous aggregate.

A throwaway database (DATABASE_URL's server, else an embedded one, which must preload TimescaleDB:
README "TimescaleDB") gets synthetic downloads shaped as `marts.fct_downloads` (its columns that
the queries read, its indexes, row-level security enabled as every mart has it), spread evenly
over `--days` days and `--tenants` tenants. Each query is run `--runs` times for random tenants;
prints p50 / p95 per variant (the plain table also with an index on tenant and time), the cost of
making the hypertable, of the index and of refreshing the aggregate,
and what TimescaleDB answers when asked for a continuous aggregate or compression on a table with
row-level security.

    python bench/hourly_rollups.py [--downloads 3000000] [--days 30] [--tenants 10] [--runs 30]
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import psycopg
from scratch import scratch_warehouse

from resources.warehouse import timescale_status

END = datetime(2026, 11, 30, tzinfo=timezone.utc)  # the data's last hour ends here; queries look back from it

TABLE = """
    create table bench.{name} (
        tenant_id text not null, podcast_id text not null, episode_id text not null, group_key text not null,
        downloaded_at timestamptz not null, download_date date not null, counted_at timestamptz not null
    );
    create index on bench.{name} (group_key);
    create index on bench.{name} (download_date);
    create index on bench.{name} (episode_id);
    create index on bench.{name} (counted_at);
"""

FILL = """
    insert into bench.{name}
    select 'tenant-' || (n %% %(tenants)s), 'show-' || (n %% 97), 'episode-' || (n %% 4001), md5(n::text),
           at, (at at time zone 'UTC')::date, %(end)s::timestamptz
    from (select n, %(end)s::timestamptz - (n::float / %(rows)s) * %(days)s * interval '1 day' as at
          from generate_series(1, %(rows)s) as n) as spread
"""

BUCKETS = """
    select time_bucket('1 hour', downloaded_at) as hour, count(*) from bench.{name}
    where tenant_id = %s and download_date >= (%s::timestamptz at time zone 'UTC')::date and downloaded_at >= %s
    group by 1 order by 1
"""
AGGREGATE = "select hour, downloads from bench.hourly where tenant_id = %s and hour >= %s order by 1"


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def timed(conn: psycopg.Connection, statement: str, params=None) -> float:
    started = time.perf_counter()
    conn.execute(statement, params)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--downloads", type=int, default=3_000_000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--tenants", type=int, default=10)
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--database-url", default=os.environ.get("BENCH_DATABASE_URL"))
    args = parser.parse_args()
    values = {"tenants": args.tenants, "end": END, "rows": args.downloads, "days": args.days}
    with tempfile.TemporaryDirectory(prefix="bench-hourly-") as tmp, \
            scratch_warehouse(args.database_url, Path(tmp)) as url, psycopg.connect(url, autocommit=True) as conn:
        if not timescale_status(conn).created:
            raise SystemExit("this server does not preload TimescaleDB (README, \"TimescaleDB\")")
        conn.execute("create schema bench")
        for name in ("plain", "hyper", "open"):
            conn.execute(TABLE.format(name=name))
        costs = {}
        costs["hypertable (empty, then filled)"] = timed(
            conn, "select create_hypertable('bench.hyper', by_range('downloaded_at', interval '1 day'))")
        conn.execute("select create_hypertable('bench.open', by_range('downloaded_at', interval '1 day'))")
        for name in ("plain", "hyper", "open"):
            costs[f"fill {name}"] = timed(conn, FILL.format(name=name), values)
            conn.execute(f"analyze bench.{name}")
        for name in ("plain", "hyper"):  # as every mart: the tenant isolation macro enables it
            conn.execute(f"alter table bench.{name} enable row level security")
        refused = {}
        for what, statement in (
                ("continuous aggregate", "create materialized view bench.refused with (timescaledb.continuous) as "
                                         "select tenant_id, time_bucket('1 hour', downloaded_at) as hour, count(*) "
                                         "from bench.hyper group by 1, 2 with no data"),
                ("compression", "alter table bench.hyper set (timescaledb.compress)")):
            try:
                conn.execute(statement)
                refused[what] = "accepted"
            except psycopg.errors.FeatureNotSupported as exc:
                refused[what] = str(exc).splitlines()[0]
        # what the aggregate would be on a table without row-level security
        conn.execute("create materialized view bench.hourly with (timescaledb.continuous) as "
                     "select tenant_id, time_bucket('1 hour', downloaded_at) as hour, count(*) as downloads "
                     "from bench.open group by 1, 2 with no data")
        costs["continuous aggregate, first refresh"] = timed(
            conn, "call refresh_continuous_aggregate('bench.hourly', null, null)")

        rng = random.Random(7)
        results = {}
        for window, hours in (("last 24 h", 24), ("last 7 days", 24 * 7)):
            since = END - timedelta(hours=hours)
            for name in ("plain", "hyper"):
                statement = BUCKETS.format(name=name)
                conn.execute(statement, ("tenant-0", since, since))  # warm-up
                results[(window, f"time_bucket, {name}")] = [
                    timed(conn, statement, (f"tenant-{rng.randrange(args.tenants)}", since, since))
                    for _ in range(args.runs)]
            conn.execute(AGGREGATE, ("tenant-0", since))
            results[(window, "continuous aggregate")] = [
                timed(conn, AGGREGATE, (f"tenant-{rng.randrange(args.tenants)}", since)) for _ in range(args.runs)]
        # the plain table again, with an index for these queries (dbt's `indexes` config would declare it)
        costs["index (tenant_id, downloaded_at) on the plain table"] = timed(
            conn, "create index on bench.plain (tenant_id, downloaded_at)")
        conn.execute("analyze bench.plain")
        for window, hours in (("last 24 h", 24), ("last 7 days", 24 * 7)):
            since = END - timedelta(hours=hours)
            statement = BUCKETS.format(name="plain")
            conn.execute(statement, ("tenant-0", since, since))
            results[(window, "time_bucket, plain + index")] = [
                timed(conn, statement, (f"tenant-{rng.randrange(args.tenants)}", since, since))
                for _ in range(args.runs)]

        print(f"{args.downloads:,} downloads over {args.days} days, {args.tenants} tenants, {args.runs} runs each")
        for (window, variant), times in results.items():
            print(f"  {window:12s} {variant:28s} p50 {statistics.median(times) * 1000:8.1f} ms   "
                  f"p95 {percentile(times, 0.95) * 1000:8.1f} ms")
        for what, seconds in costs.items():
            print(f"  {what}: {seconds:.1f} s")
        for what, answer in refused.items():
            print(f"  {what} on a hypertable with row-level security: {answer}")


if __name__ == "__main__":
    main()
