"""Asset checks that gate the data: Great Expectations suites and mart invariants, blocking."""

from pipelines.checks.ad_detection import ad_slots_match_simulator_truth
from pipelines.checks.downloads import downloads_are_consistent, downloads_match_simulator_truth
from pipelines.checks.quality import QUALITY_CHECKS
from pipelines.checks.roi import roi_recomputed_in_python

# QUALITY_CHECKS: one GX suite per raw table (raw.rss_episodes' check keeps its name,
# `rss_episodes_expectations`).
CHECKS = [*QUALITY_CHECKS, downloads_are_consistent, downloads_match_simulator_truth, roi_recomputed_in_python,
          ad_slots_match_simulator_truth]
