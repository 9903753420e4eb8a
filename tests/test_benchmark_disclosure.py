"""ROI benchmarks without disclosure, on the attribution warehouse of tests/conftest.py (three
tenants, 24 campaigns): a benchmark is published only from a pool of at least 5 campaigns from
at least 3 tenants, otherwise rolled up or suppressed, and no tenant can read or work back to
another tenant's campaign ROI from what it sees; reports say which pool they show."""

from __future__ import annotations

import json
import math
from collections import defaultdict
from pathlib import Path

import pytest

from assets.reports.content import ReportRequest
from assets.reports.formatting import label
from assets.reports.generate import generate_report
from resources.settings import Settings
from resources.report_store import ReportStoreResource
from resources.warehouse import warehouse_at
from tests.conftest import query
from tests.dbt_cli import run_dbt
from tests.test_reports import NOW

PROJECT = Path(__file__).resolve().parents[1] / "dbt_project"
K, M = 5, 3  # the defaults (dbt_project.yml, resources/settings.py)
QUARTILES = ("roi_p25", "roi_median", "roi_p75")
BENCHMARKS = ("select category, position, benchmark_level, campaigns, tenants, roi_p25, roi_median, roi_p75 "
              "from marts.mart_roi_benchmarks order by category, position")


@pytest.fixture(scope="module")
def built(attribution_warehouse, tmp_path_factory):
    return {**attribution_warehouse, "target": str(tmp_path_factory.mktemp("benchmarks"))}


@pytest.fixture(scope="module")
def campaigns(built):
    """Every campaign under its own model: tenant, category, the positions it ran in and its ROI
    (what a pool is made of), from the placements the mart reads."""
    found = {}
    for tenant, campaign, category, position, roi in query(built["url"], """
            select tenant_id, campaign_id, coalesce(category, 'uncategorized'), position, roi
            from marts.mart_campaign_roi_by_placement where is_selected_model"""):
        entry = found.setdefault((tenant, campaign), {"tenant": tenant, "category": category, "positions": set(),
                                                      "roi": None if roi is None else float(roi), "placements": []})
        entry["positions"].add(position)
        entry["placements"].append(position)
    return found


def percentile(values: list[float], fraction: float) -> float:
    """PostgreSQL's percentile_cont: linear between the two nearest ranks."""
    ordered = sorted(values)
    rank = fraction * (len(ordered) - 1)
    low = math.floor(rank)
    return ordered[low] + (rank - low) * (ordered[min(low + 1, len(ordered) - 1)] - ordered[low])


def pool(campaigns: dict, row: dict) -> dict:
    level, category, position = row["benchmark_level"], row["category"], row["position"]
    return {key: c for key, c in campaigns.items()
            if level == "all" or (c["category"] == category and (level == "category" or position in c["positions"]))}


def preimage(function, value: float, span: float = 1e6) -> tuple[float, float]:
    """[lowest, highest] y in ±span with function(y) == value, for a non-decreasing function
    (bisection from both sides; an empty preimage comes back with lowest > highest)."""
    bounds = []
    for from_above in (False, True):
        low, high = -span, span
        for _ in range(200):
            mid = (low + high) / 2
            y = function(mid)
            if y < value - 1e-9 or (from_above and y <= value + 1e-9):
                low = mid
            else:
                high = mid
        bounds.append(low if from_above else high)
    return bounds[0], bounds[1]


def derived_by(reader: str, members: dict, published: dict) -> dict:
    """What `reader` can work back to from a row it sees: when the pool, less the reader's own
    campaigns, is one or two campaigns of a single other tenant, those campaigns' ROIs that a
    published quartile equals, or that the reader solves from the quartiles and its own ROIs (one
    unknown: each quartile, monotone in it, is inverted; a single common solution is a leak)."""
    own = [c["roi"] for c in members.values() if c["tenant"] == reader]
    others = {key: c for key, c in members.items() if c["tenant"] != reader}
    if not 1 <= len(others) <= 2 or len({c["tenant"] for c in others.values()}) != 1:
        return {}
    leaked = {}
    for key, c in others.items():
        if any(math.isclose(published[q], c["roi"], abs_tol=1e-6) for q in QUARTILES):
            leaked[key] = c["roi"]
    if len(others) == 1:
        (key, c), = others.items()
        solutions = [preimage(lambda y, f=fraction: percentile(own + [y], f), published[q])
                     for q, fraction in zip(QUARTILES, (0.25, 0.5, 0.75))]
        low, high = max(s[0] for s in solutions), min(s[1] for s in solutions)
        if high - low < 1e-6 and math.isclose(low, c["roi"], abs_tol=1e-4):
            leaked[key] = c["roi"]
    return leaked


def leaks(campaigns: dict, rows: list[dict]) -> list[tuple]:
    tenants = {c["tenant"] for c in campaigns.values()}
    found = []
    for row in rows:
        if row["benchmark_level"] == "suppressed":
            continue
        members = pool(campaigns, row)
        published = {q: float(row[q]) for q in QUARTILES}
        for reader in sorted(tenants):
            for key, roi in derived_by(reader, members, published).items():
                found.append((reader, row["category"], row["position"], key, roi))
    return found


def test_the_marts_own_tests_pass_the_two_placement_case_among_them(built):
    """The dbt unit tests (two placements of two tenants in a cell: nothing published; the roll-ups;
    no pool one campaign larger than another) and the mart's data tests, run by dbt."""
    result = run_dbt(built["url"], built["target"], "test", "--select", "mart_roi_benchmarks")
    assert result.returncode == 0, result.stdout[-4000:]
    results = json.loads((Path(built["target"]) / "run_results.json").read_text())["results"]
    status = {r["unique_id"].split(".")[-1]: r["status"] for r in results}
    for name in ("mart_roi_benchmarks_two_tenants_are_not_published", "mart_roi_benchmarks_levels",
                 "mart_roi_benchmarks_no_pool_is_another_plus_one_campaign",
                 "benchmarks_published_only_from_large_pools"):
        assert status.get(name) == "pass", (name, status)


def test_cells_of_two_tenants_are_not_published_at_their_level(built, campaigns):
    rows = [dict(zip(("category", "position", "benchmark_level", "campaigns", "tenants", *QUARTILES), r))
            for r in query(built["url"], BENCHMARKS)]
    cells = defaultdict(set)
    for c in campaigns.values():
        for position in c["positions"]:
            cells[(c["category"], position)].add(c["tenant"])
    # one row per cell a campaign delivered in
    assert {(r["category"], r["position"]) for r in rows} == set(cells)
    two_tenant_cells = [cell for cell, tenants in cells.items() if len(tenants) == 2]
    assert two_tenant_cells, "the demo network has cells shared by two tenants"
    by_cell = {(r["category"], r["position"]): r for r in rows}
    for cell in two_tenant_cells:
        assert by_cell[cell]["benchmark_level"] != "category_position", by_cell[cell]
    # dtc_retail is sponsored in two of the three networks only: never published as such.
    category_tenants = defaultdict(set)
    for c in campaigns.values():
        category_tenants[c["category"]].add(c["tenant"])
    for (category, position), row in by_cell.items():
        if len(category_tenants[category]) < M:
            assert row["benchmark_level"] in ("all", "suppressed"), row
    assert {r["benchmark_level"] for r in rows} >= {"category", "all"}, {r["benchmark_level"] for r in rows}


def test_no_published_benchmark_discloses_another_tenants_campaign(built, campaigns):
    """Every published row pools at least k campaigns from m tenants (recounted from the
    placements), its quartiles are those of that pool, and no tenant can read or solve another
    tenant's campaign ROI from it. The same check on the benchmarks as they were (every cell
    published, quartiles of its placements) finds the leaks: it can fail."""
    rows = [dict(zip(("category", "position", "benchmark_level", "campaigns", "tenants", *QUARTILES), r))
            for r in query(built["url"], BENCHMARKS)]
    published = [r for r in rows if r["benchmark_level"] != "suppressed"]
    assert published
    for row in published:
        members = pool(campaigns, row)
        assert row["campaigns"] == len(members) >= K, row
        assert row["tenants"] == len({c["tenant"] for c in members.values()}) >= M, row
        rois = [c["roi"] for c in members.values()]
        for q, fraction in zip(QUARTILES, (0.25, 0.5, 0.75)):
            assert math.isclose(float(row[q]), percentile(rois, fraction), abs_tol=1e-9), (row, q)
            # quartiles only: with at least five campaigns neither the lowest nor the highest is shown
            assert min(rois) < float(row[q]) < max(rois) or min(rois) == max(rois), (row, q)
    assert leaks(campaigns, rows) == []

    # The ungated benchmarks: every category × position cell, quartiles over its placements.
    ungated = []
    for category, position in {(r["category"], r["position"]) for r in rows}:
        placed = [c["roi"] for c in campaigns.values() if c["category"] == category
                  for p in c["placements"] if p == position]
        ungated.append({"category": category, "position": position, "benchmark_level": "category_position",
                        **{q: percentile(placed, f) for q, f in zip(QUARTILES, (0.25, 0.5, 0.75))}})
    found = leaks(campaigns, ungated)
    assert found, "the check finds what the ungated benchmarks gave away"
    # among them the case of the issue: a cell of two tenants, where each reads the other's ROI
    two_tenant_cells = {(r["category"], r["position"]) for r in ungated
                        if len({c["tenant"] for c in pool(campaigns, r).values()}) == 2}
    assert {(category, position) for _, category, position, _, _ in found} & two_tenant_cells


def test_reports_state_the_benchmark_level(built, campaigns, tmp_path_factory):
    """A campaign report says which pool its benchmarks come from; with thresholds no pool
    reaches, the mart publishes nothing and the report says so (then the mart is rebuilt as it was)."""
    url = built["url"]
    store = ReportStoreResource(base_url=str(tmp_path_factory.mktemp("benchmark-reports")))
    levels = dict(((c, p), lvl) for c, p, lvl in query(url, "select category, position, benchmark_level "
                                                             "from marts.mart_roi_benchmarks"))
    chosen = {}
    for tenant, campaign, category in query(url, "select tenant_id, campaign_id, coalesce(category, 'uncategorized') "
                                                 "from marts.mart_campaign_roi where is_selected_model "
                                                 "order by tenant_id, campaign_id"):
        level = next((lvl for (c, _), lvl in levels.items() if c == category), None)
        chosen.setdefault(level, (tenant, campaign, category))
    assert {"category", "all"} <= set(chosen), chosen

    def statement(tenant, campaign, formats=("html", "json")):
        report = generate_report(warehouse_at(url), store, ReportRequest(tenant, campaign_id=campaign), list(formats), now=NOW)
        page = store.read(report.url("html")).decode()
        fact = json.loads(store.read(report.url("json")))["facts"]["Benchmark"]
        assert fact in page
        return fact

    tenant, campaign, category = chosen["category"]
    (count, tenants), = query(url, "select distinct campaigns, tenants from marts.mart_roi_benchmarks "
                                   "where category = %s", (category,))
    assert statement(tenant, campaign) == (f"Benchmark: all podcasts in {label(category)}, {count} campaigns "
                                           f"from {tenants} networks")
    tenant, campaign, _ = chosen["all"]
    (count, tenants), = query(url, "select distinct campaigns, tenants from marts.mart_roi_benchmarks "
                                   "where benchmark_level = 'all'")
    delivered = len(campaigns)  # every campaign that delivered an ad, each counted once
    assert (count, tenants) == (delivered, 3) and delivered >= 20
    assert statement(tenant, campaign) == (f"Benchmark: all podcasts and sponsor categories, {delivered} campaigns "
                                           f"from 3 networks")

    strict = json.dumps({"benchmark_min_campaigns": 100, "benchmark_min_tenants": 3})
    try:
        result = run_dbt(url, built["target"], "run", "--select", "mart_roi_benchmarks", "--vars", strict)
        assert result.returncode == 0, result.stdout[-4000:]
        assert query(url, "select distinct benchmark_level from marts.mart_roi_benchmarks") == [("suppressed",)]
        assert statement(tenant, campaign) == "Benchmark: not enough campaigns to publish a benchmark"
    finally:
        result = run_dbt(url, built["target"], "run", "--select", "mart_roi_benchmarks")
        assert result.returncode == 0, result.stdout[-4000:]
    assert dict(((c, p), lvl) for c, p, lvl in query(url, "select category, position, benchmark_level "
                                                           "from marts.mart_roi_benchmarks")) == levels


def test_thresholds_are_settings_passed_to_dbt_and_never_below_the_floor(monkeypatch):
    from pydantic import ValidationError

    assert Settings().dbt_vars() == {"benchmark_min_campaigns": K, "benchmark_min_tenants": M}
    monkeypatch.setenv("PODCAST_BENCHMARK_MIN_CAMPAIGNS", "8")
    monkeypatch.setenv("PODCAST_BENCHMARK_MIN_TENANTS", "4")
    assert Settings().dbt_vars() == {"benchmark_min_campaigns": 8, "benchmark_min_tenants": 4}
    monkeypatch.setenv("PODCAST_BENCHMARK_MIN_TENANTS", "2")
    with pytest.raises(ValidationError, match="benchmark_min_tenants"):
        Settings()


def test_the_cli_passes_the_thresholds_to_dbt(built, tmp_path):
    """`podcast-analytics dbt -- compile` (build, run, test alike) compiles the mart with the
    settings' thresholds (a `--vars` of the command line is left to dbt as given)."""
    from tests.test_cli import run_cli

    url = built["url"]
    compiled = tmp_path / "dbt" / "target" / "compiled" / "podcast_analytics" / "models" / "marts" / "attribution"
    variables = {"DATABASE_URL": url, "DAGSTER_PG_URL": url, "PODCAST_BENCHMARK_MIN_CAMPAIGNS": "7",
                 "PODCAST_BENCHMARK_MIN_TENANTS": "4"}
    result = run_cli("dbt", "--", "compile", "--select", "mart_roi_benchmarks", "--quiet", data_dir=tmp_path,
                     **variables)
    assert result.returncode == 0, result.stdout + result.stderr
    sql = (compiled / "mart_roi_benchmarks.sql").read_text()
    assert "count(*) >= 7 and count(distinct tenant_id) >= 4" in sql
