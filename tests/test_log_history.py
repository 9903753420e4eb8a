"""A network's own history, in real CDN logs of 2016 and 2025 (`../shared/realdata/logs/`): the
daily partitions start at `history_start` (PODCAST_HISTORY_START, 1 January 2026 by default). A
file of a day before it is named by the log sensor and left, while the other days load; with the
setting on an earlier day, the sensors ask for the real days, and the partitioned runs over them
give what a full rebuild gives."""

import json
import os
import subprocess
import sys
from datetime import date
from pathlib import Path

import dagster as dg
import psycopg
import pytest

from assets.ingestion.listener_logs_load import name_date
from assets.ingestion.user_agents import read_patterns, store_patterns
from pipelines.sensors import listener_log_files_sensor
from resources.settings import get_settings
from resources.warehouse import WarehouseResource
from tests.conftest import REPO_ROOT, UA_PATTERNS, query
from tests.test_downloads_incremental import dbt_build
from tests.test_request_retention import _facts, _request_rows

REALDATA = Path(__file__).resolve().parents[2] / "shared" / "realdata" / "logs"
# Real files under the names their hosts give them (CloudFront: <distribution>.YYYY-MM-DD-HH.<id>;
# S3: <prefix>YYYY-mm-DD-HH-MM-SS-<id>), each named for the day of its lines.
CLOUDFRONT_2025 = (REALDATA / "cloudfront" / "code-dot-org__code-dot-org__docs_log-formats.md.log",
                   "E2EXAMPLE1.2025-10-29-23.a1b2c3d4.log")
AKAMAI_2016 = (REALDATA / "akamai" / "radionewzealand__prpm-tools__akamai_lds_lines.log",
               "npr_download.esw3c_S.2016-01-31-1500.log")
S3_2013 = (REALDATA / "s3" / "JSPirates__s3logs__test_logs_selection.log", "logs/2013-09-04-20-22-37-FEE50FAB52B.log")


def _land(landing: Path, *files: tuple[Path, str], tenant: str = "northwind") -> None:
    for source, name in files:
        target = landing / tenant / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.symlink_to(source)


@pytest.mark.parametrize(("name", "day"), [
    ("E2EXAMPLE1.2026-11-06-15.a1b2c3d4.gz", date(2026, 11, 6)),         # CloudFront
    ("logs/2026-11-06-15-22-37-FEE50FAB52B0A1B2", date(2026, 11, 6)),     # S3 server access log
    ("2026-11-06T15:00:00.000-aBcD.log", date(2026, 11, 6)),             # Fastly to S3
    ("access.log-20261106", date(2026, 11, 6)),                          # logrotate dateext
    ("access.log-20261106.gz", date(2026, 11, 6)),
    ("npr_download.esw3c_S.202611061500-1600-0.gz", date(2026, 11, 6)),  # Akamai log delivery
    ("access.log", None),                                                # still being written
    ("id-12345678.log", None), ("ep-123456789.log", None), ("x-20261306.log", None),
])
def test_the_day_a_log_file_is_named_for(name, day):
    assert name_date(Path(name).name) == day


def test_files_before_the_history_start_are_named_and_the_other_days_load(fresh_db, tmp_path, monkeypatch):
    landing = tmp_path / "landing"
    _land(landing, CLOUDFRONT_2025, S3_2013)
    monkeypatch.setenv("PODCAST_LOG_LANDING_DIR", str(landing))
    monkeypatch.setenv("PODCAST_LOG_SETTLE_SECONDS", "0")
    get_settings.cache_clear()
    try:
        context = dg.build_sensor_context(resources={"warehouse": WarehouseResource(database_url=fresh_db)})
        skipped = listener_log_files_sensor(context)
        assert isinstance(skipped, dg.SkipReason)
        assert skipped.skip_message == "nothing to load but files of 2 day(s) outside the partitions"
        # files of days inside the partitions are asked for, named as Akamai and nginx's logrotate
        # name theirs; the old ones do not hold them back, and the file still written waits
        _land(landing, (AKAMAI_2016[0], "npr_download.esw3c_S.202611021500-1600-0.log"),
              (CLOUDFRONT_2025[0], "access.log-20261103"), (CLOUDFRONT_2025[0], "access.log"))
        requests = listener_log_files_sensor(context)
        assert [(r.partition_key, r.tags["log_files"]) for r in requests] == [("2026-11-02", "1"), ("2026-11-03", "1")]
    finally:
        get_settings.cache_clear()


def test_an_earlier_history_start_partitions_the_real_days_and_equals_a_full_rebuild(fresh_db, tmp_path):
    with psycopg.connect(fresh_db, autocommit=True) as conn:
        store_patterns(conn, read_patterns(UA_PATTERNS), "t")
    target = str(tmp_path / "target")
    selection = ("--select", "+fct_downloads_daily_by_tenant", "--indirect-selection", "cautious")
    dbt_build(fresh_db, target, *selection)  # the download models and their parents, over no events yet
    landing = tmp_path / "landing"
    _land(landing, CLOUDFRONT_2025, AKAMAI_2016, S3_2013)

    env = {**os.environ, "PODCAST_HISTORY_START": "2016-01-01", "PODCAST_LOG_LANDING_DIR": str(landing),
           "PODCAST_LOG_SETTLE_SECONDS": "0"}
    flow = subprocess.run([sys.executable, "-m", "tests.history_start_flow", fresh_db, str(landing)], env=env,
                          cwd=REPO_ROOT, capture_output=True, text=True, timeout=900)
    assert flow.returncode == 0, flow.stdout[-3000:] + flow.stderr[-3000:]
    found = json.loads(flow.stdout.strip().splitlines()[-1])
    # Both partition sets start on the day set; the S3 file of 2013 is still before it.
    assert found["log_partitions_from"] == found["dbt_partitions_from"] == "2016-01-01"
    assert found["log_days"] == ["2016-01-31", "2025-10-29"]
    # The days of the events, with the day before; not past the newest request (29 October 2025).
    assert found["dbt_ranges"] == [["2016-01-30", "2016-02-01"], ["2025-10-28", "2025-10-29"]]
    stored = dict(query(fresh_db, "select event_time::date, count(*) from raw.listener_events group by 1"))
    assert set(stored) == {date(2016, 1, 31), date(2025, 10, 29)}
    by_partitions = (_request_rows(fresh_db), _facts(fresh_db))
    screened = dict(query(fresh_db, "select event_date, count(*) from intermediate.int_listener_requests_screened "
                                    "group by 1"))
    assert screened == stored

    dbt_build(fresh_db, target, *selection, "--full-refresh")
    assert (_request_rows(fresh_db), _facts(fresh_db)) == by_partitions
