"""Access logs as real hosts write them: every line of `../shared/realdata/logs/` stored or refused
for the right reason through the real loader into PostgreSQL, the formats detected, the batch
reader agreeing with the per-line parser, and a file the loader mostly refuses failing its check."""

import json
import os
import re
import time
from collections import Counter
from datetime import date, datetime, timezone
from pathlib import Path

import dagster as dg
import psycopg
import pytest

from assets.ingestion.listener_logs import listener_logs
from assets.ingestion.listener_logs_load import discover, load_file
from assets.ingestion.listener_logs_parse import BadLine, IpHasher, parse_combined_line, parse_lines
from assets.ingestion.log_formats import LogFormat, detect_format, load_log_sources
from pipelines.checks.log_files import judge
from pipelines.checks.quality import SUITES, evaluate
from resources.warehouse import WarehouseResource, warehouse_at
from simulator.logs import generate_logs
from tests.conftest import query

REALDATA = Path(__file__).resolve().parents[2] / "shared" / "realdata" / "logs"
HASHER = IpHasher.for_tenant(b"test-secret", "northwind")


def _data_lines(path: Path) -> list[str]:
    return [line.rstrip("\r") for line in path.read_text(encoding="utf-8").split("\n") if line.strip()]


def _s3_operation(line: str) -> str:
    # owner bucket [dd/Mon/yyyy:hh:mm:ss +0000] ip requester request-id OPERATION ...
    return line.split(" ")[7]


def _tsv_column(line: str, n: int) -> str:
    return line.split("\t")[n]


def _expect(path: Path) -> tuple[str, Counter]:
    """(format, outcome -> lines) for a realdata file, worked out from the lines themselves and
    the README's description, not by the loader's parsers. Outcome `stored` or a reason code."""
    lines = _data_lines(path)
    data = [line for line in lines if not line.startswith("#")]
    name = path.name
    if name.startswith("JSPirates") or name.startswith("oisin"):
        ops = Counter(_s3_operation(line) for line in data)
        downloads = ops["REST.GET.OBJECT"] + ops["REST.HEAD.OBJECT"]
        return "s3", Counter(stored=downloads, not_a_download=len(data) - downloads)
    if path.parent.name == "cloudfront":
        methods = Counter(_tsv_column(line, 5) for line in data)
        gets = methods["GET"] + methods["HEAD"]
        return "cloudfront", Counter(stored=gets, not_a_download=len(data) - gets)
    if path.parent.name == "cloudfront_realtime":
        return "cloudfront_realtime", Counter(stored=len(data))
    if name.startswith("Protonk"):  # the author masked the address as X.X.X.X
        return "combined", Counter(bad_ip=1)
    if name.startswith("radionewzealand__prpm-tools__spec"):
        return "combined", Counter(stored=3)
    if name.startswith("umputun"):  # every UA lacks its closing quote; one record split by a newline
        return "combined", Counter(unparseable_line=len(data))
    if path.parent.name == "akamai":
        return "akamai_lds", Counter(stored=len(data))
    if path.parent.name == "triton":
        return "triton", Counter(stored=len(data))
    if path.parent.name == "fastly":  # the last record's URL holds JSON with commas: its CSV is broken
        return "fastly_syslog_csv", Counter(stored=len(data) - 1, unparseable_line=1)
    if path.parent.name == "gcs":  # the header row is no request
        return "gcs", Counter(stored=len(data) - 1)
    if path.parent.name == "azure":  # one pretty-printed {"records": [...]} document: not JSON lines
        return "unknown", Counter(unknown_format=len(data))
    raise AssertionError(f"no expectation for {path}")


REALDATA_FILES = sorted(
    p for p in REALDATA.rglob("*")
    if p.is_file() and "licenses" not in p.parts and p.suffix != ".md" and not p.name.endswith(".sources.tsv")
)


def _land(tmp_path: Path, source: Path, tenant: str = "northwind", day: str = "2026-11-01") -> Path:
    """A landing folder whose one file is `source` (a link: the third-party file is read where it is)."""
    folder = tmp_path / tenant
    folder.mkdir(parents=True, exist_ok=True)
    link = folder / f"{source.stem}-{day}{source.suffix}"
    link.symlink_to(source)
    return link


def _load(url: str, landing: Path, batch: str, mappings=None):
    with psycopg.connect(url, autocommit=True) as conn:
        return [load_file(conn, log, HASHER, batch, mappings=mappings)
                for log in discover(landing, settle_seconds=0, now=time.time() + 60)]


def test_realdata_files_are_all_there():
    assert len(REALDATA_FILES) == 14  # every log file of the README table


@pytest.mark.parametrize("path", REALDATA_FILES, ids=lambda p: p.name[:40])
def test_every_realdata_line_is_stored_or_refused_for_its_reason(fresh_db, tmp_path, path):
    fmt, expected = _expect(path)
    _land(tmp_path, path)
    [result] = _load(fresh_db, tmp_path, "b1")
    stored = query(fresh_db, "select count(*) from raw.listener_events")[0][0]
    reasons = Counter(dict(query(fresh_db, "select reason_code, count(*) from quarantine.listener_events group by 1")))
    assert Counter(stored=stored, **reasons) == +expected
    assert query(fresh_db, "select format, rows_loaded, rows_quarantined from ops.listener_log_files") == [
        (fmt, expected["stored"], sum(expected.values()) - expected["stored"])]
    assert result.format == fmt
    again = _load(fresh_db, tmp_path, "b2")  # the same file again: nothing changes
    assert [r.status for r in again] == ["unchanged"]
    assert query(fresh_db, "select count(*) from raw.listener_events")[0][0] == stored


def test_s3_fields_host_path_and_object_size(fresh_db, tmp_path):
    path = REALDATA / "s3" / "JSPirates__s3logs__test_logs_selection.log"
    _land(tmp_path, path)
    _load(fresh_db, tmp_path, "b1")
    lines = path.read_text().split("\n")
    expected_206 = []
    for line_no, line in enumerate(lines, start=1):
        if line and _s3_operation(line) == "REST.GET.OBJECT":
            status, _error, sent, size = re.search(r'HTTP/1\.[01]" (\d{3}) (\S+) (\S+) (\S+) ', line).groups()
            if status == "206":
                expected_206.append((line_no, 0 if sent == "-" else int(sent), None if size == "-" else int(size)))
    stored_206 = query(fresh_db, "select line_no, bytes_sent, object_size from raw.listener_events "
                                 "where status = 206 order by line_no")
    assert stored_206 == expected_206 and len(expected_206) == 22
    assert sum(1 for _, _, size in stored_206 if size) == 22  # every 206 states its object's size
    heads = sum(1 for line in lines if line and _s3_operation(line) == "REST.HEAD.OBJECT")
    assert query(fresh_db, "select count(*) from raw.listener_events where method = 'HEAD'") == [(heads,)]
    # the 18-field layout has no Host Header: no host (the bucket `jspirates` is not one)
    assert query(fresh_db, "select count(*) from raw.listener_events where host is not null") == [(0,)]
    paths = {p for (p,) in query(fresh_db, "select distinct path from raw.listener_events")}
    assert "/jspirates/jsp_005.mp3" in paths  # a path-style request keeps the bucket of the URL asked for


def test_s3_current_layout_reads_the_host_header_and_ignores_new_fields():
    s3 = detect_format([
        '79a5 media [06/Feb/2019:00:00:38 +0000] 192.0.2.3 - 3E57427F3EXAMPLE REST.GET.OBJECT ep/1.mp3 '
        '"GET /ep/1.mp3?x-id=1 HTTP/1.1" 206 - 1048576 52428800 70 10 "-" "Overcast/3.0" - s9lzHYrFp76Z= SigV4 '
        'ECDHE-RSA-AES128-GCM-SHA256 - Media.Example.COM TLSv1.2 - - us-east-1 SomeFutureField "and another"'])
    line = ('79a5 media [06/Feb/2019:00:00:38 +0000] 192.0.2.3 - 3E57427F3EXAMPLE REST.GET.OBJECT ep/1.mp3 '
            '"GET /ep/1.mp3?x-id=1 HTTP/1.1" 206 - 1048576 52428800 70 10 "-" "Overcast/3.0" - s9lzHYrFp76Z= SigV4 '
            'ECDHE-RSA-AES128-GCM-SHA256 - Media.Example.COM TLSv1.2 - - us-east-1 SomeFutureField "and another"')
    event = s3.parse_line(line)
    assert s3.name == "s3"
    assert (event["host"], event["path"], event["query"], event["status"]) == ("media.example.com", "/ep/1.mp3", "x-id=1", 206)
    assert (event["bytes_sent"], event["object_size"], event["range_start"]) == (1048576, 52428800, None)
    events, bad = s3.parse_batch([line] * 3)
    assert not bad and events["host"].to_list() == ["media.example.com"] * 3


def test_cloudfront_reads_columns_by_name_decodes_agents_and_stores_body_bytes(fresh_db, tmp_path):
    for path in sorted((REALDATA / "cloudfront").iterdir()):
        _land(tmp_path, path)
    _load(fresh_db, tmp_path, "b1")

    def rows(name: str) -> list[tuple]:
        return query(fresh_db, "select host, path, query, status, bytes_sent, user_agent from raw.listener_events "
                               "where file_key like %s order by line_no", (f"%{name}-2026-11-01%",))

    old = rows("web-1-0")
    # 24 fields, no sc-content-len: sc-bytes as logged; the agent was double-encoded (%2520)
    assert old[1][:5] == ("d111111abcdef8.cloudfront.net", "/soundtrack/happy.mp3", "a=b&c=d", 304, 2390282)
    assert old[1][5].startswith("Mozilla/5.0 (iPhone; CPU iPhone OS 10_2_1 like Mac OS X)")
    new = rows("web-1-0-2019-12")
    assert [r[4] for r in new] == [78, 78, 78]  # sc-content-len, not sc-bytes (392, with the headers)
    code_org = rows("docs_log-formats.md")
    assert code_org[0][0] == "studio.code.org"  # x-host-header: the viewer's Host, not the distribution
    assert "%" not in code_org[0][5]


def test_triton_ranges_and_object_sizes(fresh_db, tmp_path):
    _land(tmp_path, REALDATA / "triton" / "radionewzealand__prpm-tools__triton_lines.log")
    _load(fresh_db, tmp_path, "b1")
    assert query(fresh_db, "select status, bytes_sent, range_start, range_end, object_size, event_time "
                           "from raw.listener_events order by line_no") == [
        (200, 94120, 0, 23053547, 23053548, datetime(2016, 2, 1, 5, 4, 43, tzinfo=timezone.utc)),
        (200, 908640, None, None, 31912148, datetime(2016, 2, 1, 5, 4, 28, tzinfo=timezone.utc)),
        (206, 447, 0, 1, 50507442, datetime(2016, 2, 1, 5, 4, 40, tzinfo=timezone.utc)),
    ]


def test_plain_combined_has_no_host_and_reads_the_offset(fresh_db, tmp_path):
    _land(tmp_path, REALDATA / "combined" / "radionewzealand__prpm-tools__spec_log_line_parsers_nginx_spec.rb.log")
    _load(fresh_db, tmp_path, "b1")
    assert query(fresh_db, "select host, method, status, event_time from raw.listener_events order by line_no") == [
        (None, "GET", 200, datetime(2016, 2, 8, 17, 59, 37, tzinfo=timezone.utc)),
        (None, "GET", 206, datetime(2016, 2, 8, 17, 59, 37, tzinfo=timezone.utc)),
        (None, "HEAD", 200, datetime(2016, 2, 8, 17, 59, 37, tzinfo=timezone.utc)),
    ]


# --- the batch reader is the per-line parser, faster ----------------------------------------------

def _per_line(fmt: LogFormat, lines: list[str]):
    return LogFormat.parse_batch(fmt, lines)


def _compare(lines: list[str]) -> tuple[int, int]:
    """Batch reader and per-line parser on the same lines: same events, same refusals. Returns
    (lines, lines the per-line parser was asked about by the batch reader)."""
    fast_fmt, slow_fmt = detect_format(lines), detect_format(lines)
    calls = {"n": 0}
    per_line = fast_fmt._line

    def counting(line):
        calls["n"] += 1
        return per_line(line)

    fast_fmt._line = counting
    fast, fast_bad = fast_fmt.parse_batch(lines)
    slow, slow_bad = _per_line(slow_fmt, lines)
    assert fast.sort("index").to_dicts() == slow.sort("index").to_dicts()
    assert [(i, b.reason_code, b.detail) for i, b in sorted(fast_bad, key=lambda x: x[0])] == \
        [(i, b.reason_code, b.detail) for i, b in slow_bad]
    return len(lines), calls["n"]


@pytest.mark.parametrize("path", REALDATA_FILES, ids=lambda p: p.name[:40])
def test_batch_reader_agrees_with_the_per_line_parser_on_realdata(path):
    _compare(_data_lines(path))


@pytest.fixture(scope="module")
def generated_formats(truth, tmp_path_factory):
    landing = tmp_path_factory.mktemp("formats")
    tenants = sorted({e["tenant_id"] for e in truth["episodes"] if e["valid"]})
    formats = dict(zip(tenants, ("s3", "cloudfront", "combined")))
    generated = generate_logs(truth, landing, [date(2026, 11, 1), date(2026, 11, 2)], seed=11,
                              listeners_per_tenant=25, formats=formats)
    old = time.time() - 3600
    for path in landing.rglob("*"):
        os.utime(path, (old, old))
    return landing, generated, formats


def test_batch_reader_agrees_on_generated_lines_and_reads_most_of_them(generated_formats):
    from assets.ingestion.listener_logs_load import read_batches

    landing, _, formats = generated_formats
    seen = Counter()
    for path in sorted(p for p in landing.rglob("*") if p.is_file()):
        for _, lines, _ in read_batches(path):
            fmt = detect_format(lines)
            total, per_line = _compare(lines)
            seen[fmt.name] += 1
            if fmt.name in ("s3", "cloudfront") and total > 500:
                assert per_line < 0.06 * total  # polars read the rest
    assert set(seen) == set(formats.values())


@pytest.mark.parametrize("line", [
    '2026-11-01\t10:00:00\tFRA56-P1\t0\t198.51.100.7\tGET\td1.cloudfront.net\t/a.mp3\t000\t-\tua\t-\t-\tError\tid==\t'
    'media.x\thttps\t180\t0.1\t-\tTLSv1.3\tc\tError\tHTTP/2.0\t-\t-\t443\t0.0\tClientHungUpRequest\taudio/mpeg\t-\t-\t-',
    '2026-11-01\t10:00:00\tFRA56-P1\t9\t198.51.100.7\tGET\td1.cloudfront.net\t/a.mp3\t099\t-\tua\t-\t-\tError\tid==\t'
    'media.x\thttps\t180\t0.1\t-\tTLSv1.3\tc\tError\tHTTP/2.0\t-\t-\t443\t0.0\tHit\taudio/mpeg\t9\t0\t8',
    '2026-11-01\t10:00:00\tFRA56-P1\t500\t198.51.100.7\tHEAD\td1.cloudfront.net\t/a.mp3\t200\t-\tua\t-\t-\tHit\tid==\t'
    '-\thttps\t180\t0.1\t-\tTLSv1.3\tc\tHit\tHTTP/2.0\t-\t-\t443\t0.0\tHit\taudio/mpeg\t1000\t-\t-\t',
    '2026-11-01\t10:00:00\tFRA56-P1\t500\t198.51.100.7\tGET\td1.cloudfront.net\t/a.mp3\t206\t-\tua\t-\t-\tHit\tid==\t'
    'media.x\thttps\t180\t0.1\t-\tTLSv1.3\tc\tHit\tHTTP/2.0\t-\t-\t443\t0.0\tHit\taudio/mpeg\t100\t-\t99',
])
def test_cloudfront_edge_lines_agree(line):
    from simulator.logs import CLOUDFRONT_FIELDS

    header = ["#Version: 1.0", "#Fields: " + " ".join(CLOUDFRONT_FIELDS)]
    fmt = detect_format(header)
    fmt.parse_batch(header)  # the header, read: now the data lines alone take the batch reader
    slow = detect_format(header)
    slow.parse_batch(header)
    fast_events, fast_bad = fmt.parse_batch([line] * 2)
    slow_events, slow_bad = _per_line(slow, [line] * 2)
    assert fast_events.to_dicts() == slow_events.to_dicts()
    assert [(i, b.reason_code) for i, b in fast_bad] == [(i, b.reason_code) for i, b in slow_bad]


def test_status_000_is_status_0_in_both_parsers():
    """Akamai and CloudFront log `000` (the viewer left before any response; for Akamai a 206 cut
    short). It is stored as 0, with its bytes, by the per-line parser and by the batch reader
    alike; a status 1-99 is refused by both."""
    line = 'cdn.x:443 198.51.100.7 - - [01/Nov/2026:10:00:01 +0000] "GET /a.mp3 HTTP/1.1" {} 0 "-" "ua" "-"'
    assert parse_combined_line(line.format("000"))["status"] == 0
    events, bad = parse_lines("combined", [line.format("000")] * 3 + [line.format("042")])
    assert events.sort("index")["status"].to_list() == [0, 0, 0]
    assert [(i, b.reason_code) for i, b in bad] == [(3, "bad_value")]


def test_non_download_methods_are_refused_as_such_by_both_parsers():
    line = 'cdn.x:443 198.51.100.7 - - [01/Nov/2026:10:00:01 +0000] "{} /a.mp3 HTTP/1.1" 200 10 "-" "ua" "-"'
    events, bad = parse_lines("combined", [line.format("POST")] * 300 + [line.format("GET")])
    assert events.height == 1 and Counter(b.reason_code for _, b in bad) == {"not_a_download": 300}


# --- loud failure -----------------------------------------------------------------------------------

def test_a_fully_refused_file_fails_the_check_naming_file_and_format_and_a_clean_batch_passes(fresh_db, tmp_path):
    damaged = _land(tmp_path / "one", REALDATA / "combined" / "umputun__dkll__app_agent_demo_mode.go.log")
    _load(fresh_db, tmp_path / "one", "bad-batch")
    with psycopg.connect(fresh_db) as conn:
        result = judge(conn, 0.01)
    assert not result.passed
    assert f"northwind/{damaged.name}" in result.description and "format combined" in result.description
    assert "26 of 26 lines refused" in result.description and "s3, cloudfront" in result.description

    _land(tmp_path / "two", next((REALDATA / "azure").iterdir()), day="2026-11-02")
    _load(fresh_db, tmp_path / "two", "unknown-batch")
    with psycopg.connect(fresh_db) as conn:
        unknown = judge(conn, 0.01)
    assert not unknown.passed and "format unknown" in unknown.description
    assert "listener_logs: json_mappings:" in unknown.description  # which config adds a mapping

    _land(tmp_path / "three", REALDATA / "s3" / "JSPirates__s3logs__test_logs_selection.log", day="2026-11-03")
    _load(fresh_db, tmp_path / "three", "clean-batch")
    with psycopg.connect(fresh_db) as conn:
        clean = judge(conn, 0.01)          # the newest batch: 19 non-download lines are no refusals
        again = judge(conn, 0.01, "bad-batch")
    assert clean.passed, clean.description
    assert not again.passed               # the bad batch itself still fails when it is judged


def test_the_limit_is_a_share_with_a_floor_of_lines(fresh_db, tmp_path):
    """The fastly sample refuses 1 line of 6: above 1 %, within 20 %; one torn line in a small
    file is under the floor of refused lines."""
    _land(tmp_path, next((REALDATA / "fastly").iterdir()))
    _load(fresh_db, tmp_path, "b1")
    with psycopg.connect(fresh_db) as conn:
        assert not judge(conn, 0.01, min_lines=1).passed
        assert judge(conn, 0.2, min_lines=1).passed
        assert judge(conn, 0.01, min_lines=3).passed


def test_a_file_of_one_refused_line_fails_whatever_the_floor(fresh_db, tmp_path):
    _land(tmp_path, REALDATA / "combined" / "Protonk__Show-Analytics__README.md.log")
    _load(fresh_db, tmp_path, "b1")
    with psycopg.connect(fresh_db) as conn:
        result = judge(conn, 0.01, min_lines=3)
    assert not result.passed and "bad_ip 1" in result.description


def test_request_table_suite_judges_the_batch_it_loads(fresh_db, tmp_path):
    """A row the suite refuses (status 700) fails the run that loaded it, not every later one."""
    folder = tmp_path / "northwind"
    folder.mkdir()
    line = 'cdn.x:443 198.51.100.7 - - [0{d}/Nov/2026:10:00:01 +0000] "GET /a.mp3 HTTP/1.1" {s} 10 "-" "ua" "-"\n'
    (folder / "access-2026-11-01.log").write_text(line.format(d=1, s=200) + line.format(d=1, s=700))
    _load(fresh_db, tmp_path, "bad")
    suite = SUITES["listener_events"]
    success, outcomes, _ = evaluate(warehouse_at(fresh_db), suite)
    assert not success and not outcomes["between(status)"]["success"]
    (folder / "access-2026-11-02.log").write_text(line.format(d=2, s=206) + line.format(d=2, s=0))
    _load(fresh_db, tmp_path, "clean")
    success, outcomes, _ = evaluate(warehouse_at(fresh_db), suite)
    assert success, outcomes
    assert not evaluate(warehouse_at(fresh_db), suite, run_id="bad")[0]


# --- configuration: media hosts and JSON field mappings ---------------------------------------------

def test_media_hosts_are_stored_per_tenant_and_replaced(fresh_db, tmp_path):
    sources = tmp_path / "sources.yaml"
    landing = tmp_path / "landing"
    landing.mkdir()

    def run(hosts: dict) -> None:
        sources.write_text(json.dumps({"listener_logs": {"sources": [
            {"tenant_id": t, "media_hosts": h} for t, h in hosts.items()]}}))
        result = dg.materialize(
            [listener_logs], partition_key="2026-11-01",
            resources={"warehouse": WarehouseResource(database_url=fresh_db)},
            run_config={"ops": {"listener_logs": {"config": {"landing_dir": str(landing), "settle_seconds": 0,
                                                             "sources_file": str(sources)}}}},
        )
        assert result.success

    run({"northwind": ["Media.Northwind.example", "cdn.northwind.example"], "riverbend": ["s3.amazonaws.com"]})
    run({"northwind": ["media.northwind.example"]})
    assert query(fresh_db, "select tenant_id, media_host from raw.listener_log_sources order by 1, 2") == [
        ("northwind", "media.northwind.example"), ("riverbend", "s3.amazonaws.com")]


CLOUDFLARE = {"EdgeStartTimestamp": 1730455200123456789, "ClientIP": "2a02:1::5", "ClientRequestMethod": "GET",
              "ClientRequestHost": "media.example.com", "ClientRequestURI": "/ep/1.mp3?x=1",
              "EdgeResponseStatus": 206, "EdgeResponseBodyBytes": 2, "ClientRequestUserAgent": "Overcast/3.0",
              "ClientRequestReferer": "", "ClientCountry": "de", "ClientRequestSource": "eyeball",
              "RequestHeaders": {"range": "bytes=0-1"}}


def test_json_lines_through_built_in_and_configured_mappings(fresh_db, tmp_path):
    folder = tmp_path / "northwind"
    folder.mkdir()
    purge = {**CLOUDFLARE, "ClientRequestSource": "purge"}
    (folder / "cloudflare-2026-11-01.json").write_text("\n".join(json.dumps(r) for r in (CLOUDFLARE, purge)) + "\n")
    mine = {"when": "2026-11-01T10:00:00+0000", "addr": "198.51.100.7", "code": 200, "url": "https://m.example/e.mp3",
            "ua": "AntennaPod/3.4.0", "size": 1234}
    (folder / "mine-2026-11-02.json").write_text(json.dumps(mine) + "\n")
    sources = tmp_path / "sources.yaml"
    sources.write_text("listener_logs:\n  json_mappings:\n    my_cdn: {time: when, ip: addr, status: code, uri: url, "
                       "user_agent: ua, bytes: size}\n")
    _load(fresh_db, tmp_path, "b1", mappings=load_log_sources(sources).mappings())
    assert query(fresh_db, "select file_key, format, rows_loaded, rows_quarantined from ops.listener_log_files "
                           "order by 1") == [("northwind/cloudflare-2026-11-01.json", "json:cloudflare_http_requests", 1, 1),
                                             ("northwind/mine-2026-11-02.json", "json:my_cdn", 1, 0)]
    assert query(fresh_db, "select host, path, query, status, bytes_sent, range_start, range_end, country, event_time "
                           "from raw.listener_events order by file_key") == [
        ("media.example.com", "/ep/1.mp3", "x=1", 206, 2, 0, 1, "de",
         datetime(2024, 11, 1, 10, 0, 0, 123457, tzinfo=timezone.utc)),
        (None, "/e.mp3", None, 200, 1234, None, None, None, datetime(2026, 11, 1, 10, 0, tzinfo=timezone.utc)),
    ]
    assert query(fresh_db, "select reason_code from quarantine.listener_events") == [("not_a_download",)]
    # without the mapping the second file is in no known format, and says what to configure
    unknown = detect_format([json.dumps(mine)])
    assert unknown.name == "unknown" and "json_mappings" in unknown.detail and "addr" in unknown.detail


# --- the simulator's real shapes, through the loader --------------------------------------------------

def test_simulated_real_formats_load_every_request_once(fresh_db, generated_formats):
    landing, generated, formats = generated_formats
    with psycopg.connect(fresh_db, autocommit=True) as conn:
        for log in discover(landing, settle_seconds=60):
            load_file(conn, log, IpHasher.for_tenant(b"k", log.tenant_id), "b1")
    by_tenant = dict(query(fresh_db, "select tenant_id, format from ops.listener_log_files group by 1, 2"))
    assert by_tenant == formats
    loaded = query(fresh_db, "select count(*) from raw.listener_events")[0][0]
    reasons = dict(query(fresh_db, "select reason_code, count(*) from quarantine.listener_events group by 1"))
    assert reasons.pop("not_a_download") == generated.non_download_lines > 0
    assert sum(reasons.values()) == generated.damaged_lines > 0
    assert loaded + generated.non_download_lines + generated.damaged_lines == generated.lines
    assert query(fresh_db, "select count(*) from raw.listener_events where status = 0") == [(generated.closed_lines,)]
    s3, cloudfront, combined = (t for t, f in sorted(formats.items(), key=lambda kv: ("s3", "cloudfront", "combined").index(kv[1])))
    assert query(fresh_db, "select count(*) filter (where object_size is null), count(*) filter (where host is null) "
                           "from raw.listener_events where tenant_id = %s and status < 400", (s3,)) == [(0, 0)]
    assert query(fresh_db, "select count(*) from raw.listener_events where tenant_id = %s and status = 206 "
                           "and range_start is null", (cloudfront,)) == [(0,)]
    assert query(fresh_db, "select count(*) filter (where host is not null), count(*) filter (where range_start is not null) "
                           "from raw.listener_events where tenant_id = %s", (combined,)) == [(0, 0)]


def test_dbt_screens_status_0_as_a_206_cut_short(fresh_db, tmp_path):
    """A `000` stored as status 0 reaches the real dbt screening as IAB v2.3 §5.5.2 step 1.3 reads
    Akamai's `000`: a 206 that ended prematurely, counted only if it passes every other filter. It
    is not `bad_status`: one that sent no byte is `no_bytes`, one that sent bytes goes on to the
    media match (here none: `unmatched_media`, as for the 200 beside it); a 4xx stays `bad_status`."""
    from tests.test_downloads_incremental import dbt_build

    folder = tmp_path / "northwind"
    folder.mkdir()
    line = 'media.x:443 198.51.100.7 - - [01/Nov/2026:10:00:0{n} +0000] "GET /a.mp3 HTTP/1.1" {s} {b} "-" "Overcast/3.0" "-"'
    lines = [line.format(n=1, s="000", b=0), line.format(n=2, s="000", b=5000), line.format(n=3, s=200, b=9),
             line.format(n=4, s=404, b=9)]
    (folder / "access-2026-11-01.log").write_text("\n".join(lines) + "\n")
    _load(fresh_db, tmp_path, "b1")
    dbt_build(fresh_db, str(tmp_path / "target"), "--select", "+int_listener_requests_screened", command="run")
    assert query(fresh_db, "select status, unplaced_bytes, screen_reason from intermediate.int_listener_requests_screened "
                           "order by line_no") == [(0, 0, "no_bytes"), (0, 5000, "unmatched_media"),
                                                   (200, 0, "unmatched_media"), (404, 0, "bad_status")]


def test_demo_log_files_can_switch_a_tenant_and_name_its_media_hosts(truth, tmp_path):
    from simulator.__main__ import write_log_files

    tenant = sorted({e["tenant_id"] for e in truth["episodes"]})[0]
    (tmp_path / "sources.yaml").write_text("rss: {feeds: []}\n")
    default = write_log_files(truth, tmp_path / "a", tmp_path, seed=3, days=[date(2026, 11, 1)], log_formats={})
    switched = write_log_files(truth, tmp_path / "b", tmp_path, seed=3, days=[date(2026, 11, 1)],
                               log_formats={tenant: "combined"})
    assert switched["downloads"] == default["downloads"]  # the same requests, the same truth
    assert {p.name.split("-")[0] for p in (tmp_path / "b" / tenant).iterdir()} == {"access"}
    config = load_log_sources(tmp_path / "sources.yaml")
    hosts = {e["enclosure_url_normalized"].split("/")[2] for e in truth["episodes"]
             if e["tenant_id"] == tenant and e.get("enclosure_url_normalized")}
    assert [(s.tenant_id, sorted(s.media_hosts)) for s in config.sources] == [(tenant, sorted(hosts))]


S3_LINE = ('79a5 media [06/Feb/2019:00:00:38 +0000] 192.0.2.3 - 3E57 {op} ep/1.mp3 "GET /ep/1.mp3 HTTP/1.1" {status} - '
           '{sent} 52428800 70 10 "-" "{agent}" - s9lz= SigV4 ECDHE - media.example.com TLSv1.2 - -{tail}')


@pytest.mark.parametrize("line", [
    S3_LINE.format(op="REST.GET.OBJECT", status=206, sent=2, agent="Überpod/1.0", tail=""),
    S3_LINE.format(op="REST.GET.OBJECT", status=200, sent=9, agent="ua", tail=" us-east-1 \x00"),
    S3_LINE.format(op="REST.GET.OBJECT", status=200, sent=9, agent="ua", tail=' "a b" [c d]'),
    S3_LINE.format(op="REST.GET.OBJECT", status="000", sent="-", agent="ua", tail=""),
    S3_LINE.format(op="REST.HEAD.OBJECT", status=200, sent="-", agent='a \\"quoted\\" ua', tail=""),
    S3_LINE.format(op="REST.COPY.OBJECT_GET", status=200, sent=9, agent="ua", tail=""),
    S3_LINE.format(op="WEBSITE.GET.OBJECT", status=206, sent=99999999999999999999, agent="ua", tail=""),
    S3_LINE.format(op="REST.GET.OBJECT", status=200, sent=9, agent="ua", tail="").replace(" - s9lz= SigV4 ECDHE - media.example.com TLSv1.2 - -", ' "x y" s9lz= SigV4 ECDHE - media.example.com'),
])
def test_s3_edge_lines_agree(line):
    fmt, slow = detect_format([line]), detect_format([line])
    fast_events, fast_bad = fmt.parse_batch([line] * 2)
    slow_events, slow_bad = _per_line(slow, [line] * 2)
    assert fmt.name == "s3"
    assert fast_events.sort("index").to_dicts() == slow_events.to_dicts()
    assert [(i, b.reason_code) for i, b in sorted(fast_bad, key=lambda x: x[0])] == [(i, b.reason_code) for i, b in slow_bad]


def test_bunny_fastly_json_and_akamai_ds2_lines():
    bunny_line = ("HIT|206|1730455200123|2|412|198.51.100.0|-|https://media.example.b-cdn.net/ep/1.mp3?aid=x|DE|"
                  "Podcasts/1680.5 |x| CFNetwork|322b688bd63fb63f2babe9de30a5d262|DE")
    bunny = detect_format([bunny_line])
    event = bunny.parse_line(bunny_line)
    assert bunny.name == "bunny"
    assert (event["host"], event["path"], event["query"], event["status"], event["bytes_sent"]) == (
        "media.example.b-cdn.net", "/ep/1.mp3", "aid=x", 206, 2)
    assert event["user_agent"] == "Podcasts/1680.5 |x| CFNetwork"  # a `|` inside the agent is kept
    assert event["event_time"] == datetime(2024, 11, 1, 10, 0, 0, 123000, tzinfo=timezone.utc)

    fastly = json.dumps({"timestamp": "2024-08-09T18:22:17+0000", "client_ip": "2a02:1::5", "geo_country": "germany",
                         "host": "op3.example", "url": "/e/ep.mp3?x=1", "request_method": "GET",
                         "request_user_agent": "Overcast/3.0", "response_status": 200, "response_body_size": 5000})
    fmt = detect_format([fastly])
    event = fmt.parse_line(fastly)
    assert fmt.name == "json:fastly_json"
    assert (event["host"], event["path"], event["query"], event["bytes_sent"], event["event_time"]) == (
        "op3.example", "/e/ep.mp3", "x=1", 5000, datetime(2024, 8, 9, 18, 22, 17, tzinfo=timezone.utc))

    ds2 = json.dumps({"reqTimeSec": "1730455200.250", "cliIP": "198.51.100.9", "reqMethod": "GET", "reqHost": "dl.example",
                      "reqPath": "/ep/2.mp3", "queryStr": "-", "statusCode": "206", "bytes": "5023",
                      "range": "37334-42356", "objSize": "9000000", "UA": "AntennaPod/3.4.0"})
    fmt = detect_format([ds2])
    event = fmt.parse_line(ds2)
    assert fmt.name == "json:akamai_ds2_json"
    assert (event["path"], event["query"], event["range_start"], event["range_end"], event["object_size"]) == (
        "/ep/2.mp3", None, 37334, 42356, 9_000_000)

    worker = json.dumps({**CLOUDFLARE, "WorkerSubrequest": True})
    with pytest.raises(BadLine) as refused:
        detect_format([worker]).parse_line(worker)
    assert refused.value.reason_code == "not_a_download"
