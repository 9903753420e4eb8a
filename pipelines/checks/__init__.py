"""Asset checks that gate the data: Great Expectations suites run as blocking checks."""

from pipelines.checks.rss_quality import rss_episodes_expectations

CHECKS = [rss_episodes_expectations]
