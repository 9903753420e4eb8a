"""The daily partitions of the access-log loads and of the partitioned dbt models: UTC days from
the setting `history_start` (PODCAST_HISTORY_START) to tomorrow (a log file may be named for a day
that has begun somewhere). The partition mappings between the two assume the same days."""

import dagster as dg

from resources.settings import get_settings

DAILY_PARTITIONS = dg.DailyPartitionsDefinition(start_date=get_settings().history_start.isoformat(), end_offset=1,
                                                timezone="UTC")
