"""Asset checks that gate the data: Great Expectations suites and mart invariants, blocking."""

from pipelines.checks.downloads import downloads_are_consistent, downloads_match_simulator_truth
from pipelines.checks.roi import roi_recomputed_in_python
from pipelines.checks.rss_quality import rss_episodes_expectations

CHECKS = [rss_episodes_expectations, downloads_are_consistent, downloads_match_simulator_truth, roi_recomputed_in_python]
