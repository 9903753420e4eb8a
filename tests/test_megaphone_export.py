"""Megaphone-style daily exports in object storage: the sensor requests finalized days once,
the daily asset streams the day's files into real PostgreSQL, equal to the simulator's truth,
quarantines bad lines, and loads a day again only when its files changed."""

import gzip
import uuid
from datetime import date

import dagster as dg
import fsspec
import pytest

from assets.ingestion.megaphone_export import megaphone_episode_metrics_daily
from pipelines.megaphone_sensor import megaphone_export_sensor
from resources.settings import get_settings
from resources.warehouse import WarehouseResource
from simulator.megaphone import export_path, marker_path, megaphone_shows, write_megaphone_exports
from tests.conftest import query

DAY_1, DAY_2 = date(2026, 11, 1), date(2026, 11, 2)


def materialize(url: str, root: str, day: date, **kwargs) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        [megaphone_episode_metrics_daily], partition_key=day.isoformat(),
        resources={"warehouse": WarehouseResource(database_url=url)},
        run_config={"ops": {megaphone_episode_metrics_daily.op.name: {"config": {"export_url": root}}}}, **kwargs)


def metadata(result: dg.ExecuteInProcessResult) -> dict:
    [event] = result.get_asset_materialization_events()
    return {k: v.value for k, v in event.materialization.metadata.items()}


def stored(url: str) -> dict:
    return {(t, n, p, e, d): {"downloads": a, "blacklisted_requests": b, "unique_listeners": c, "bytes_sent": x,
                              "seconds_downloaded": y}
            for t, n, p, e, d, a, b, c, x, y in query(url, (
                "select tenant_id, network_id, podcast_id, episode_id, metric_date, downloads, blacklisted_requests, "
                "unique_listeners, bytes_sent, seconds_downloaded from raw.megaphone_episode_metrics_daily"))}


def versions(url: str) -> list[tuple]:
    return query(url, "select xmin::text, * from raw.megaphone_episode_metrics_daily order by episode_id, metric_date")


@pytest.fixture
def sensor_root(tmp_path, monkeypatch):
    root = tmp_path / "megaphone"
    monkeypatch.setenv("PODCAST_MEGAPHONE_EXPORT_URL", str(root))
    get_settings.cache_clear()
    yield str(root)
    get_settings.cache_clear()


def test_finalized_days_from_any_fsspec_url_load_equal_to_truth(fresh_db, network):
    root = f"memory://megaphone-{uuid.uuid4().hex[:8]}"
    truth = write_megaphone_exports(network, root, [DAY_1, DAY_2])
    results = [materialize(fresh_db, root, day) for day in (DAY_1, DAY_2)]
    assert all(r.success for r in results)
    assert stored(fresh_db) == truth["metrics"]
    assert len(truth["metrics"]) > 40 and sum(m["downloads"] for m in truth["metrics"].values()) > 500
    assert all(m["unique_listeners"] < m["downloads"] for m in truth["metrics"].values() if m["downloads"] > 8)
    assert sum(m["blacklisted_requests"] for m in truth["metrics"].values()) >= 15
    first = metadata(results[0])
    assert first["exports_loaded"] == 3 and first["dagster/row_count"] == sum(1 for k in truth["metrics"] if k[4] == DAY_1)
    # Every Megaphone-hosted show (index % 9 == 8) of every tenant is in the exports.
    assert {k[2] for k in truth["metrics"]} == {s.podcast_id for s in megaphone_shows(network)}
    assert [s.show_index for s in megaphone_shows(network)] == [8, 17, 26, 35]
    ledger = query(fresh_db, "select file_path, export_date, records, records_quarantined from ops.megaphone_export_files")
    assert len(ledger) == truth["files"] == 6 and all(p.endswith(f"{d}.json.gz") for p, d, _, _ in ledger)


def test_bad_lines_are_quarantined_with_a_reason_and_no_client_address(fresh_db, network, tmp_path):
    root = str(tmp_path / "exports")
    truth = write_megaphone_exports(network, root, [DAY_1, DAY_2])
    assert all(materialize(fresh_db, root, day).success for day in (DAY_1, DAY_2))
    rows = query(fresh_db, "select tenant_id, source_id, record_date, reason_code, record_key, payload::text "
                           "from quarantine.platform_records where platform = 'megaphone'")
    counted = {}
    for tenant, network_id, day, reason, _, _ in rows:
        counted[(tenant, network_id, day, reason)] = counted.get((tenant, network_id, day, reason), 0) + 1
    assert counted == dict(truth["quarantined"]) and len(rows) >= 4
    assert {r[3] for r in rows} <= {"not_json", "missing_episode_id", "invalid_number", "date_outside_day"}
    assert all(r[4].startswith("delivery-v2-day-") for r in rows)  # file:line of the record
    assert all("198." not in payload for *_, payload in rows)
    ledger = dict(query(fresh_db, "select export_date, sum(records_quarantined) from ops.megaphone_export_files group by 1"))
    assert sum(ledger.values()) == sum(truth["quarantined"].values())


def test_loading_the_same_day_twice_changes_nothing(fresh_db, network, tmp_path):
    root = str(tmp_path / "exports")
    write_megaphone_exports(network, root, [DAY_1])
    assert materialize(fresh_db, root, DAY_1).success
    before = versions(fresh_db)
    quarantine = query(fresh_db, "select xmin::text, record_key from quarantine.platform_records order by 2")
    again = materialize(fresh_db, root, DAY_1)
    assert again.success and versions(fresh_db) == before and len(before) > 20
    assert query(fresh_db, "select xmin::text, record_key from quarantine.platform_records order by 2") == quarantine
    meta = metadata(again)
    assert (meta["exports_unchanged"], meta["exports_loaded"], meta["rows_inserted_or_changed"]) == (3, 0, 0)


def test_a_day_without_its_marker_is_not_read_and_changed_files_are_loaded_again(fresh_db, network, tmp_path):
    root = str(tmp_path / "exports")
    write_megaphone_exports(network, root, [DAY_2], finalize=False)
    waiting = materialize(fresh_db, root, DAY_2)
    assert waiting.success and metadata(waiting)["exports_not_finalized"] == 3
    assert stored(fresh_db) == {} and query(fresh_db, "select count(*) from ops.megaphone_export_files") == [(0,)]

    first = write_megaphone_exports(network, root, [DAY_2])  # now finalized
    assert materialize(fresh_db, root, DAY_2).success and stored(fresh_db) == first["metrics"]
    ledger = query(fresh_db, "select file_path, sha256 from ops.megaphone_export_files order by 1")

    # Megaphone re-exports the day with late requests: the new files replace the day.
    restated = write_megaphone_exports(network, root, [DAY_2], revision=1)
    reload = materialize(fresh_db, root, DAY_2)
    changed = {k for k, v in restated["metrics"].items() if first["metrics"].get(k) != v}
    assert reload.success and stored(fresh_db) == restated["metrics"] and changed
    assert metadata(reload)["rows_inserted_or_changed"] == len(changed)
    new_ledger = query(fresh_db, "select file_path, sha256 from ops.megaphone_export_files order by 1")
    assert [p for p, _ in new_ledger] == [p for p, _ in ledger] and all(a != b for (_, a), (_, b) in zip(ledger, new_ledger))


def test_an_unreadable_export_fails_its_day_and_keeps_the_other_networks(fresh_db, network, tmp_path):
    root = str(tmp_path / "exports")
    truth = write_megaphone_exports(network, root, [DAY_1])
    show = megaphone_shows(network)[0]
    path = export_path(root, show.tenant_id, show.network_id, DAY_1)
    with open(path, "rb") as handle:
        whole = handle.read()
    with open(path, "wb") as handle:
        handle.write(whole[: len(whole) // 2])  # cut short after the marker was written
    result = materialize(fresh_db, root, DAY_1, raise_on_error=False)
    assert not result.success
    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    assert "could not be read" in str(failure.event_specific_data.error)
    assert stored(fresh_db) == {k: v for k, v in truth["metrics"].items() if k[1] != show.network_id}


def test_sensor_requests_finalized_days_the_ledger_lacks_and_again_when_their_files_change(
        fresh_db, sensor_root, network):
    def tick():
        context = dg.build_sensor_context(resources={"warehouse": WarehouseResource(database_url=fresh_db)})
        result = megaphone_export_sensor(context)
        assert context.cursor is None  # the ledger decides; the sensor keeps nothing
        return result

    write_megaphone_exports(network, sensor_root, [DAY_1])
    write_megaphone_exports(network, sensor_root, [DAY_2], finalize=False)
    requests = tick()
    assert [r.partition_key for r in requests] == ["2026-11-01"]  # 11-02 has no marker yet
    first_run_key = requests[0].run_key
    assert tick()[0].run_key == first_run_key  # asked again with the same key until it is loaded

    # Loaded by a run the sensor did not start (the demo's): nothing to ask.
    assert materialize(fresh_db, sensor_root, DAY_1).success
    assert isinstance(tick(), dg.SkipReason)

    show = megaphone_shows(network)[0]
    fs = fsspec.filesystem("file")
    fs.pipe_file(marker_path(sensor_root, show.tenant_id, show.network_id, DAY_2), b"")
    [request] = tick()
    assert request.partition_key == "2026-11-02" and request.tags["megaphone_exports"] == "1"
    assert materialize(fresh_db, sensor_root, DAY_2).success
    assert isinstance(tick(), dg.SkipReason)

    write_megaphone_exports(network, sensor_root, [DAY_1], revision=1)  # the day's files replaced
    requests = tick()
    assert [r.partition_key for r in requests] == ["2026-11-01"]
    assert requests[0].run_key != first_run_key and requests[0].run_key.startswith("megaphone:2026-11-01:")
    assert materialize(fresh_db, sensor_root, DAY_1).success
    assert isinstance(tick(), dg.SkipReason)
    with gzip.open(export_path(sensor_root, show.tenant_id, show.network_id, DAY_1), "rt") as handle:
        assert sum(1 for _ in handle) > 50


def test_records_after_the_load_time_plus_tolerance_are_quarantined_and_the_rest_stored(fresh_db, network, tmp_path):
    """A Megaphone day loaded at noon (as if the exporter's clock ran ahead): its afternoon records
    are `future_timestamp` in quarantine, its morning is counted."""
    import datetime as dt

    import psycopg

    from assets.ingestion.megaphone_export import export_filesystem, load_export_day, scan_exports

    root = str(tmp_path / "exports")
    truth = write_megaphone_exports(network, root, [DAY_1])
    fs, base = export_filesystem(root)
    noon = dt.datetime.combine(DAY_1, dt.time(12), dt.timezone.utc)
    with psycopg.connect(fresh_db, autocommit=True) as conn:
        loads = [load_export_day(conn, fs, export, "noon", latest=noon) for export in scan_exports(fs, base)]
    future = sum(load.quarantined["future_timestamp"] for load in loads)
    quarantined = sum(sum(load.quarantined.values()) for load in loads)
    records = sum(load.records for load in loads)
    assert 0 < future < records / 2 and quarantined - future <= sum(truth["quarantined"].values())
    counted = query(fresh_db, "select coalesce(sum(downloads + blacklisted_requests), 0) "
                              "from raw.megaphone_episode_metrics_daily")[0][0]
    assert counted + quarantined == records and counted > records / 3  # the morning is stored
    details = [d for (d,) in query(fresh_db, "select detail from quarantine.platform_records where platform = 'megaphone' "
                                           "and reason_code = 'future_timestamp'")]
    assert len(details) == future and all(d.split()[1] > "2026-11-01T12:00:00" for d in details)
