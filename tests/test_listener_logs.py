"""Access logs: parsing, hashing, and loads that never duplicate or lose a line."""

import gzip
import json
import os
import time
from datetime import date, datetime, timezone

import dagster as dg
import pytest

from assets.ingestion.listener_logs import listener_logs
from assets.ingestion.listener_logs_load import discover, load_file
from assets.ingestion.listener_logs_parse import (
    BadLine,
    IpHasher,
    parse_cdn_json_line,
    parse_combined_line,
)
from pipelines.sensors import listener_log_files_sensor
from resources.warehouse import WarehouseResource
from simulator.logs import generate_logs
from tests.conftest import query

HASHER = IpHasher.for_tenant(b"test-secret", "northwind")
DAYS = [date(2026, 11, 1), date(2026, 11, 2)]


def test_combined_line_with_range_and_offset():
    line = ('cdn.example.com:443 203.0.113.9 - - [02/Nov/2026:00:00:03 -0500] "GET /a/ep-1.mp3?aid=rss HTTP/1.1" '
            '206 524288 "-" "AntennaPod/3.4.0" "bytes=0-524287"')
    event = parse_combined_line(line)
    assert event["event_time"] == datetime(2026, 11, 2, 5, 0, 3, tzinfo=timezone.utc)
    assert (event["host"], event["path"], event["query"]) == ("cdn.example.com", "/a/ep-1.mp3", "aid=rss")
    assert (event["status"], event["bytes_sent"], event["range_start"], event["range_end"]) == (206, 524288, 0, 524287)
    plain = parse_combined_line('2a02:1::5 - - [01/Nov/2026:10:00:00 +0000] "HEAD /x.mp3 HTTP/1.1" 200 - "-" "curl/8"')
    assert (plain["host"], plain["method"], plain["bytes_sent"], plain["range_start"]) == (None, "HEAD", 0, None)


def test_cdn_json_line():
    event = parse_cdn_json_line(json.dumps({
        "ts": "2026-11-01T10:00:00.250Z", "c_ip": "2a02:1::5", "cs_method": "get", "cs_host": "CDN.example.com",
        "cs_uri": "/x.mp3", "sc_status": 200, "sc_bytes": 10, "cs_range": None, "cs_user_agent": "Overcast/3.0",
        "geo_country": "DE"}))
    assert (event["method"], event["host"], event["country"]) == ("GET", "cdn.example.com", "DE")


@pytest.mark.parametrize(("line", "reason"), [
    ("-", "unparseable_line"),
    ('cdn:443 1.2.3.4 - - [02/Nov/2026:00:00:03 +0000] "GET /a.mp3 HTTP/1.1" 200 12', "unparseable_line"),
    ('cdn:443 1.2.3.4 - - [32/Foo/2026:00:00:03 +0000] "GET /a.mp3 HTTP/1.1" 200 1 "-" "ua"', "bad_timestamp"),
    ('cdn:443 1.2.3.999 - - [02/Nov/2026:00:00:03 +0000] "GET /a.mp3 HTTP/1.1" 200 1 "-" "ua"', "bad_ip"),
    ('cdn:443 1.2.3.4 - - [31/Feb/2026:00:00:03 +0000] "GET /a.mp3 HTTP/1.1" 200 1 "-" "ua"', "bad_timestamp"),
    ('cdn:443 1.2.3.4 - - [02/Nov/2026:24:00:60 +0000] "GET /a.mp3 HTTP/1.1" 200 1 "-" "ua"', "bad_timestamp"),
    ('cdn:443 1.2.3.4 - - [02/Nov/2026:00:00:03 +0000] "GET /a.mp3 HTTP/1.1" 200 99999999999999999999 "-" "ua"', "bad_value"),
    ('cdn:443 1.2.3.4 - - [02/Nov/2026:00:00:03 +0000] "GET /a.mp3 HTTP/1.1" 200 1 "-" "ua" "bytes=0-99999999999999999999"', "bad_value"),
])
def test_bad_combined_lines(line, reason):
    with pytest.raises(BadLine) as err:
        parse_combined_line(line)
    assert err.value.reason_code == reason


@pytest.mark.parametrize(("line", "reason"), [
    ('{"ts": "2026-11-01T10:00:00Z", "c_ip": "1.2.3.4"', "unparseable_line"),
    ('{"ts": "2026-11-01T10:00:00Z", "c_ip": "1.2.3.4", "cs_method": "GET", "sc_status": 200}', "missing_field"),
    ('{"ts": "yesterday", "c_ip": "1.2.3.4", "cs_method": "GET", "cs_uri": "/", "sc_status": 200}', "bad_value"),
    ('[1, 2]', "unparseable_line"),
    ('{"ts": "2026-11-01T10:00:00Z", "c_ip": "1.2.3.4", "cs_method": "GET", "cs_uri": "/", "sc_status": 20000000000}', "bad_value"),
    ('{"ts": "2026-11-01T10:00:00Z", "c_ip": "1.2.3.4", "cs_method": "GET", "cs_uri": "/", "sc_status": 200, "sc_bytes": 99999999999999999999}', "bad_value"),
    ('{"ts": "2026-11-01T10:00:00Z", "c_ip": "1.2.3.4", "cs_method": "GET", "cs_uri": "/", "sc_status": 200, "cs_user_agent": "a\\u0000b"}', "nul_bytes"),
])
def test_bad_json_lines(line, reason):
    with pytest.raises(BadLine) as err:
        parse_cdn_json_line(line)
    assert err.value.reason_code == reason


def test_hashing_is_keyed_per_tenant_and_groups_ipv6_by_64():
    a, prefix_a, v = HASHER.hash_ip("2a02:1:2:3:aaaa::1")
    b, prefix_b, _ = HASHER.hash_ip("2a02:1:2:3:bbbb::2")
    assert v == 6 and a != b and prefix_a == prefix_b
    other_tenant = IpHasher.for_tenant(b"test-secret", "riverbend")
    assert other_tenant.hash_ip("198.51.100.7")[0] != HASHER.hash_ip("198.51.100.7")[0]
    assert HASHER.hash_ip("::ffff:198.51.100.7") == HASHER.hash_ip("198.51.100.7")
    redacted = HASHER.redact('cdn:443 198.51.100.7 - - [x] "GET /" 2a02:1:2:3::9 "ua/1.0"')
    assert "198.51.100.7" not in redacted and "2a02:1:2:3::9" not in redacted and "ua/1.0" in redacted


@pytest.fixture(scope="module")
def log_truth(truth, tmp_path_factory):
    landing = tmp_path_factory.mktemp("landing")
    generated = generate_logs(truth, landing, DAYS, seed=5, listeners_per_tenant=25)
    old = time.time() - 3600
    for path in landing.rglob("*"):
        os.utime(path, (old, old))
    return landing, generated


def _addresses(text: str) -> list[str]:
    import ipaddress
    import re

    found = []
    for token in re.findall(r"(?<![\w.:])[0-9A-Fa-f:.]{7,}(?![\w.:])", text):
        try:
            found.append(str(ipaddress.ip_address(token.strip(".:"))))
        except ValueError:
            pass
    return found


def _load_all(url, landing, batch="b1"):
    import psycopg

    results = []
    with psycopg.connect(url, autocommit=True) as conn:
        for log in discover(landing, settle_seconds=60):
            results.append(load_file(conn, log, IpHasher.for_tenant(b"k", log.tenant_id), batch))
    return results


def test_load_keeps_every_line_once_and_never_stores_a_clear_address(fresh_db, log_truth):
    landing, generated = log_truth
    results = _load_all(fresh_db, landing)
    assert results and all(r.status == "loaded" for r in results)
    loaded = query(fresh_db, "select count(*) from raw.listener_events")[0][0]
    quarantined = query(fresh_db, "select count(*) from quarantine.listener_events")[0][0]
    assert quarantined == generated.damaged_lines > 0
    assert loaded + quarantined == generated.lines
    leaks = query(fresh_db, r"""select count(*) from raw.listener_events
                               where ip_hash ~ '\d+\.\d+\.\d+\.\d+' or ip_hash like '%:%' or length(ip_hash) <> 32""")[0][0]
    assert leaks == 0
    stored_lines = [r[0] for r in query(fresh_db, "select line from quarantine.listener_events")]
    assert not [line for line in stored_lines if _addresses(line)]  # every address was hashed

    again = _load_all(fresh_db, landing, batch="b2")
    assert {r.status for r in again} == {"unchanged"}
    assert query(fresh_db, "select count(*) from raw.listener_events")[0][0] == loaded


def test_rewritten_file_replaces_its_rows(fresh_db, tmp_path):
    folder = tmp_path / "northwind"
    folder.mkdir()
    line = 'cdn.x:443 198.51.100.7 - - [01/Nov/2026:10:00:0{} +0000] "GET /a.mp3 HTTP/1.1" 200 10 "-" "ua"\n'
    path = folder / "access-northwind-2026-11-01.log"
    path.write_text(line.format(1) + line.format(2))
    os.utime(path, (time.time() - 3600,) * 2)
    _load_all(fresh_db, tmp_path)
    path.write_text(line.format(1) + line.format(2) + line.format(3))  # the host appended to the day's file
    os.utime(path, (time.time() - 3600,) * 2)
    _load_all(fresh_db, tmp_path)
    assert query(fresh_db, "select count(*), count(distinct line_no) from raw.listener_events") == [(3, 3)]


def test_a_load_killed_half_way_leaves_nothing_and_reruns_cleanly(fresh_db, log_truth, monkeypatch):
    import psycopg

    import assets.ingestion.listener_logs_load as loader

    landing, _ = log_truth
    log = discover(landing, settle_seconds=60)[0]
    real = loader.parse_lines
    calls = {"n": 0}

    def dying(fmt, lines):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt("killed")
        return real(fmt, lines)

    monkeypatch.setattr(loader, "BLOCK_BYTES", 4096)  # small batches: two are copied before the kill
    monkeypatch.setattr(loader, "parse_lines", dying)
    with psycopg.connect(fresh_db, autocommit=True) as conn, pytest.raises(KeyboardInterrupt):
        load_file(conn, log, HASHER, "killed")
    assert calls["n"] == 3
    assert query(fresh_db, "select count(*) from raw.listener_events") == [(0,)]
    assert query(fresh_db, "select count(*) from ops.listener_log_files") == [(0,)]
    monkeypatch.undo()
    with psycopg.connect(fresh_db, autocommit=True) as conn:
        result = load_file(conn, log, HASHER, "rerun")
    assert result.status == "loaded"
    assert query(fresh_db, "select count(*), count(distinct (file_key, line_no)) from raw.listener_events") == [(result.rows, result.rows)]


def test_half_written_files_are_not_read(fresh_db, tmp_path):
    folder = tmp_path / "northwind"
    folder.mkdir()
    line = 'cdn.x:443 198.51.100.7 - - [01/Nov/2026:10:00:01 +0000] "GET /a.mp3 HTTP/1.1" 200 10 "-" "ua"\n'
    (folder / "access-northwind-2026-11-01.log.part").write_text(line)          # still downloading
    fresh = folder / "access-northwind-2026-11-02.log"
    fresh.write_text(line)                                                       # modified just now
    cut = folder / "access-northwind-2026-11-03.log.gz"
    cut.write_bytes(gzip.compress((line * 2000).encode())[:-200])                # gzip cut short
    os.utime(cut, (time.time() - 3600,) * 2)
    ready = discover(tmp_path, settle_seconds=30)
    assert [f.file_key for f in ready] == ["northwind/access-northwind-2026-11-03.log.gz"]
    results = _load_all(fresh_db, tmp_path)  # settled yet cut short: refused whole, saying why
    assert [r.status for r in results] == ["refused"]
    assert query(fresh_db, "select count(*) from raw.listener_events") == [(0,)]
    assert query(fresh_db, "select reason_code from quarantine.listener_events") == [("unreadable_gzip",)]
    assert [r.status for r in _load_all(fresh_db, tmp_path)] == ["unchanged"]  # that version is not tried again
    cut.write_bytes(gzip.compress((line * 2000).encode()))                       # the writer finished
    os.utime(cut, (time.time() - 3600,) * 2)
    assert [r.status for r in _load_all(fresh_db, tmp_path)] == ["loaded"]
    assert query(fresh_db, "select count(*) from raw.listener_events") == [(2000,)]
    assert query(fresh_db, "select count(*) from quarantine.listener_events") == [(0,)]


def test_sensor_requests_what_the_ledger_lacks_and_keeps_no_cursor(fresh_db, log_truth, monkeypatch, tmp_path):
    """'New' comes from the loader's ledger, not from the sensor: files loaded by any run (the
    demo's, a manual one) are not requested again, a sensor with no state asks nothing twice, and
    a new or rewritten file asks for its own day only."""
    landing, _ = log_truth
    monkeypatch.setenv("PODCAST_LOG_LANDING_DIR", str(landing))
    from resources.settings import get_settings
    from resources.warehouse import WarehouseResource

    def tick():
        context = dg.build_sensor_context(resources={"warehouse": WarehouseResource(database_url=fresh_db)})
        result = listener_log_files_sensor(context)
        assert context.cursor is None
        return result

    get_settings.cache_clear()
    try:
        first = tick()
        keys = sorted({r.partition_key for r in first})
        assert keys[:2] == [d.isoformat() for d in DAYS]
        assert tick()[0].run_key == first[0].run_key  # the same files ask with the same run key
        _load_all(fresh_db, landing)                  # loaded by a run the sensor did not start
        assert isinstance(tick(), dg.SkipReason)
        new = landing / "northwind" / "access-northwind-2026-11-09.log"
        new.write_text('cdn.x:443 198.51.100.7 - - [09/Nov/2026:10:00:01 +0000] "GET /a.mp3 HTTP/1.1" 200 10 "-" "ua"\n')
        os.utime(new, (time.time() - 3600,) * 2)
        assert [r.partition_key for r in tick()] == ["2026-11-09"]
        _load_all(fresh_db, landing, batch="b2")
        assert isinstance(tick(), dg.SkipReason)
        with new.open("a") as handle:              # the same file grows: its day again, nothing else
            handle.write('cdn.x:443 198.51.100.8 - - [09/Nov/2026:11:00:01 +0000] "GET /a.mp3 HTTP/1.1" 200 10 "-" "ua"\n')
        os.utime(new, (time.time() - 3600,) * 2)
        assert [r.partition_key for r in tick()] == ["2026-11-09"]
        new.unlink()
    finally:
        get_settings.cache_clear()


def test_partitioned_asset_materializes_a_day(fresh_db, log_truth):
    landing, _ = log_truth
    result = dg.materialize(
        [listener_logs], partition_key="2026-11-01",
        resources={"warehouse": WarehouseResource(database_url=fresh_db)},
        run_config={"ops": {"listener_logs": {"config": {"landing_dir": str(landing), "settle_seconds": 0}}}},
    )
    assert result.success
    counts = {e.asset_key.to_user_string(): e.materialization.metadata["dagster/row_count"].value
              for e in result.get_asset_materialization_events()}
    stored = query(fresh_db, "select count(*) from raw.listener_events where log_date = '2026-11-01'")[0][0]
    assert counts["raw/listener_events"] == stored > 0
    assert query(fresh_db, "select count(distinct log_date) from raw.listener_events") == [(1,)]


COMBINED_LINES = [
    'cdn.example.com:443 203.0.113.9 - - [02/Nov/2026:00:00:03 -0500] "GET /a/ep-1.mp3?aid=rss HTTP/1.1" 206 524288 "-" "AntennaPod/3.4.0" "bytes=0-524287"',
    'cdn.example.com 2a02:0:1234:5678:9abc:def0:1:2 - - [01/Nov/2026:10:00:00 +0530] "GET /b.mp3 HTTP/1.1" 200 10 "https://x.example/" "Overcast/3.0" "-"',
    '2A02:1::5 - - [01/Nov/2026:10:00:00 +0000] "HEAD /x.mp3 HTTP/1.1" 200 - "-" "curl/8"',
    '::ffff:198.51.100.7 - - [01/Nov/2026:10:00:00 +0000] "GET /x.mp3 HTTP/1.0" 304 0 "" ""',
    'cdn.x:443 198.51.100.7 - - [01/Nov/2026:10:00:01 +0000] "GET /a.mp3?x?y HTTP/1.1" 206 2 "-" "ua" "bytes=0-"   ',
    'cdn.x:443 198.51.100.7 - - [01/Nov/2026:10:00:01 +0000] "GET ?only-query HTTP/1.1" 206 2 "-" "ua" "bytes=0-1,5-6"',
    'cdn.x:443 198.51.100.7 - - [01/Nov/2026:10:00:01 +0000] "GET /a\\"b.mp3 HTTP/1.1" 206 2 "-" "ua" " bytes=3-4 "',
    'cdn.x:443\t198.51.100.7  -  - [01/Nov/2026:10:00:01 +0000] "GET /a.mp3 HTTP/1.1" 206 2 "-" "ua" "bytes=-500"',
    'cdn.x:443 198.51.100.7 - - [01/Nov/2026:10:00:01 +0000] "GET /ü.mp3 HTTP/1.1" 200 ٣ "-" "Überpod/1.0 ☃"',
    'cdn.x:443 198.51.100.8 - - [01/Nov/2026:10:00:01 +0000] "GET /a.mp3 HTTP/1.1" 200 1 "-" "ua\rx" ""\r',
    'CDN.X 198.51.100.9 - - [29/Feb/2028:23:59:59 -2359] "GET /a.mp3 HTTP/1.1" 200 1 "-" "ua"',
    "",
    "   ",
    "-",
    'cdn:443 1.2.3.4 - - [02/Nov/2026:00:00:03 +0000] "GET /a.mp3 HTTP/1.1" 200 12',
    'cdn:443 1.2.3.4 - - [02/nov/2026:00:00:03 +0000] "GET /a.mp3 HTTP/1.1" 200 1 "-" "ua"',
    'cdn:443 1.2.3.999 - - [02/Nov/2026:00:00:03 +0000] "GET /a.mp3 HTTP/1.1" 200 1 "-" "ua"',
    'cdn:443 1.2.3.4 - - [02/Nov/2026:00:00:03 +0000] "GET /a.mp3 HTTP/1.1" 200 1 "-" "ua" "bytes=0-1" x',
    '\x00\x00\x00:443 1.2.3.4 - - [02/Nov/2026:00:00:03 +0000] "GET /a.mp3 HTTP/1.1" 200 1 "-" "ua"',
    'cdn:443 1.2.3.4 - - [31/Feb/2026:00:00:03 +0000] "GET /a.mp3 HTTP/1.1" 200 1 "-" "ua"',
    'cdn:443 1.2.3.4 - - [02/Nov/2026:23:59:60 +0000] "GET /a.mp3 HTTP/1.1" 200 1 "-" "ua"',
    'cdn:443 1.2.3.4 - - [02/Nov/2026:00:00:03 +0000] "GET /a.mp3 HTTP/1.1" 200 99999999999999999999 "-" "ua"',
    'cdn:443 1.2.3.4 - - [02/Nov/2026:00:00:03 +0000] "GET /a.mp3 HTTP/1.1" 200 1 "-" "ua" "bytes=5-99999999999999999999"',
]
CDN_JSON_LINES = [
    '{"ts":"2026-11-01T10:00:00.250Z","c_ip":"2a02:0:1234:5678:9abc:def0:1:2","cs_method":"GET","cs_host":"CDN.example.com","cs_uri":"/x.mp3?a=1","sc_status":206,"sc_bytes":2,"cs_range":"bytes=0-1","cs_user_agent":"Overcast/3.0","cs_referer":null,"geo_country":"DE"}',
    '{"ts": "2026-11-01T10:00:00.123456+02:00", "c_ip": "198.51.100.7", "cs_method": "get", "cs_host": null, "cs_uri": "/x.mp3", "sc_status": 200, "sc_bytes": null, "cs_range": null, "cs_user_agent": "", "cs_referer": "-", "geo_country": ""}',
    '{"c_ip":"198.51.100.7","ts":"2026-11-01T10:00:00","cs_method":"GET","cs_uri":"/x.mp3","sc_status":"200","sc_bytes":0,"cs_user_agent":"\\u00dcberpod \\"1\\""}',
    '{"ts":"2026-11-01T10:00:00Z","c_ip":"198.51.100.7","cs_method":"HEAD","cs_host":"","cs_uri":"/x.mp3","sc_status":200,"sc_bytes":5,"cs_range":"bytes=0-1, 3-4","cs_user_agent":null,"cs_referer":"","geo_country":null}',
    '{"ts":"2026-11-01T10:00:00Z","c_ip":"198.51.100.7","cs_method":"GET","cs_host":"h","cs_uri":"/ü.mp3","sc_status":200,"sc_bytes":5,"cs_range":"-","cs_user_agent":"ü","cs_referer":"r","geo_country":"FR"}',
    '{"ts": "2026-11-01T10:00:00Z", "c_ip": "1.2.3.4"',
    '{"ts": "2026-11-01T10:00:00Z", "c_ip": "1.2.3.4", "cs_method": "GET", "sc_status": 200}',
    '{"ts": "yesterday", "c_ip": "1.2.3.4", "cs_method": "GET", "cs_uri": "/", "sc_status": 200}',
    '{"ts":"2026-11-01T10:00:00Z","c_ip":"1.2.3.999","cs_method":"GET","cs_host":"h","cs_uri":"/","sc_status":200,"sc_bytes":1,"cs_range":null,"cs_user_agent":null,"cs_referer":null,"geo_country":null}',
    "[1, 2]",
    "",
    '{"ts":"\x00"}',
    '{"ts":"2026-11-01T10:00:00Z","c_ip":"198.51.100.7","cs_method":"GET","cs_host":"h","cs_uri":"/","sc_status":20000000000,"sc_bytes":1,"cs_range":null,"cs_user_agent":null,"cs_referer":null,"geo_country":null}',
    '{"ts":"2026-11-01T10:00:00Z","c_ip":"198.51.100.7","cs_method":"GET","cs_host":"h","cs_uri":"/","sc_status":200,"sc_bytes":99999999999999999999,"cs_range":null,"cs_user_agent":null,"cs_referer":null,"geo_country":null}',
    '{"ts":"2026-11-01T10:00:00Z","c_ip":"198.51.100.7","cs_method":"GET","cs_host":"h","cs_uri":"/","sc_status":200,"sc_bytes":1,"cs_range":null,"cs_user_agent":"a\\u0000b","cs_referer":null,"geo_country":null}',
    '{"ts":"2026-11-32T10:00:00Z","c_ip":"198.51.100.7","cs_method":"GET","cs_host":"h","cs_uri":"/","sc_status":200,"sc_bytes":1,"cs_range":null,"cs_user_agent":null,"cs_referer":null,"geo_country":null}',
]


def _expected_rows(lines: list[str], fmt: str) -> tuple[list[tuple], list[tuple]]:
    """What the per-line parser makes of each line: the reference for the batch reader."""
    from assets.ingestion.listener_logs_parse import parse_line

    rows, quarantined = [], []
    for line_no, line in enumerate(lines, start=1):
        line = line.rstrip("\r")
        if not line.strip():
            continue
        try:
            event = parse_line(fmt, line)
        except BadLine as bad:
            quarantined.append((line_no, bad.reason_code, bad.detail))
            continue
        ip_hash, prefix_hash, version = HASHER.hash_ip(event["ip"])
        rows.append((line_no, event["event_time"], event["host"], event["path"], event["query"], event["method"],
                     event["status"], event["bytes_sent"], event["range_start"], event["range_end"], ip_hash,
                     prefix_hash, version, event["user_agent"], event["referer"], event["country"]))
    return rows, quarantined


@pytest.mark.parametrize(("fmt", "lines"), [("combined", COMBINED_LINES), ("cdn_json", CDN_JSON_LINES)])
def test_batch_reader_loads_exactly_what_the_per_line_parser_reads(fresh_db, tmp_path, fmt, lines):
    import psycopg

    folder = tmp_path / "northwind"
    folder.mkdir()
    path = folder / "access-northwind-2026-11-01.log"
    good = lines[:2] * 300  # enough lines for the vectorised reader to carry most of the file
    path.write_text("\n".join(good + lines + good) + "\n", encoding="utf-8", newline="")
    later = datetime(2030, 1, 1, tzinfo=timezone.utc)  # loaded after every line's time (one is in 2028)
    with psycopg.connect(fresh_db, autocommit=True) as conn:
        result = load_file(conn, discover(tmp_path, settle_seconds=0, now=time.time() + 60)[0], HASHER, "b1", now=later)
    stored = query(fresh_db, """select line_no, event_time, host, path, query, method, status, bytes_sent, range_start,
                                       range_end, ip_hash, ip_prefix_hash, ip_version, user_agent, referer, country
                                from raw.listener_events order by line_no""")
    rejected = query(fresh_db, "select line_no, reason_code, detail from quarantine.listener_events order by line_no")
    expected_rows, expected_rejects = _expected_rows(path.read_bytes().decode().split("\n")[:-1], fmt)
    assert (stored, rejected) == (expected_rows, expected_rejects)
    assert result.rows == len(expected_rows) and sum(result.quarantined.values()) == len(expected_rejects) > 0


def test_a_file_of_damaged_lines_is_quarantined_whole(fresh_db, tmp_path):
    """Quarantined lines spill to disk past a few MiB; every one of them still lands, once."""
    import psycopg

    folder = tmp_path / "northwind"
    folder.mkdir()
    path = folder / "access-northwind-2026-11-01.log"
    path.write_text("".join(f"damaged line {n} {'x' * 80}\n" for n in range(120_000)))
    with psycopg.connect(fresh_db, autocommit=True) as conn:
        result = load_file(conn, discover(tmp_path, settle_seconds=0, now=time.time() + 60)[0], HASHER, "b1")
    # no line has a known shape: the file is refused whole, each line saying so
    assert (result.rows, dict(result.quarantined), result.format) == (0, {"unknown_format": 120_000}, "unknown")
    assert query(fresh_db, "select count(*), count(distinct line_no), min(line_no), max(line_no) "
                           "from quarantine.listener_events") == [(120_000, 120_000, 1, 120_000)]
    assert query(fresh_db, "select rows_loaded, rows_quarantined from ops.listener_log_files") == [(0, 120_000)]
