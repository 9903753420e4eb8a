"""Hostile and faulty log files, generated here and run through the real `listener_logs` asset:
copies, renames and rotations of one content, gzip named as text and text named as gzip, gzip
cut short or corrupt, lines far over the length limit, files deleted, files rewritten while read,
and a load killed with SIGKILL. Each file has its expected outcome; the other files of the same
run are stored; a run on the same input changes nothing."""

import gzip
import hashlib
import os
import signal
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import dagster as dg
import psycopg
import pytest

import assets.ingestion.listener_logs_load as loader
from assets.ingestion.listener_logs import listener_logs
from assets.ingestion.listener_logs_load import LoadLimits, discover, file_sha256, load_file
from assets.ingestion.listener_logs_parse import IpHasher
from pipelines.sensors import listener_log_files_sensor
from resources.settings import get_settings
from resources.warehouse import WarehouseResource
from tests.conftest import REPO_ROOT, query

DAY = "2026-11-01"
SECRET = "hostile-test-secret"
HASHER = IpHasher.for_tenant(SECRET.encode(), "northwind")


def lines_of(tag: str, count: int, first: int = 0) -> bytes:
    """`count` good combined lines, each from its own IPv6 address, distinct per `tag`."""
    group = hashlib.sha256(tag.encode()).hexdigest()[:4]
    return "".join(
        f'cdn.x:443 2001:db8:{group}::{n:x} - - [01/Nov/2026:10:{n // 60 % 60:02}:{n % 60:02} '
        f'+0000] "GET /{tag}/ep-{n}.mp3 HTTP/1.1" 200 {n + 1} "-" "ua/1"\n'
        for n in range(first, first + count)
    ).encode()


def old(path: Path) -> None:
    os.utime(path, (time.time() - 3600,) * 2)


def write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    old(path)


@pytest.fixture(scope="module")
def hostile_settings():
    """The loader's bounds made small (a line limit of 1 KiB, 10 cached addresses), set as an
    operator would: through the settings' environment."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PODCAST_LOG_MAX_LINE_BYTES", "1024")
        patch.setenv("PODCAST_LOG_ADDRESS_CACHE_SIZE", "10")
        patch.setenv("PODCAST_IP_HASH_SECRET", SECRET)
        get_settings.cache_clear()
        yield get_settings()
    get_settings.cache_clear()


def materialize(url: str, landing: Path) -> dict:
    result = dg.materialize(
        [listener_logs], partition_key=DAY, resources={"warehouse": WarehouseResource(database_url=url)},
        run_config={"ops": {"listener_logs": {"config": {"landing_dir": str(landing), "settle_seconds": 0,
                                                         "sources_file": str(landing / "none.yaml")}}}},
    )
    assert result.success
    [events] = [e for e in result.get_asset_materialization_events()
                if e.asset_key == dg.AssetKey(["raw", "listener_events"])]
    return {k: v.value for k, v in events.materialization.metadata.items()}


def ledger(url: str) -> dict[str, tuple]:
    rows = query(url, "select file_key, status, rows_loaded, rows_quarantined, duplicate_of "
                      "from ops.listener_log_files order by 1")
    return {key: tuple(rest) for key, *rest in rows}


def rows_by_file(url: str) -> dict[str, int]:
    return dict(query(url, "select file_key, count(*) from raw.listener_events group by 1"))


GOOD = lines_of("good", 40)
TEXTY = lines_of("texty", 30)
ZIPPED = lines_of("zipped", 20)
CUT = lines_of("cut", 3000)
MANY = lines_of("many", 200)
LONG = lines_of("long", 10) + b"x" * 1500 + b"\n" + b"y" * (3 << 20) + b"\n" + lines_of("long", 10, first=10)
LONG_GZ = lines_of("longgz", 5) + b"z" * (3 << 20) + b"\n" + lines_of("longgz", 5, first=5)


@pytest.fixture(scope="module")
def hostile_run(new_warehouse, tmp_path_factory, hostile_settings):
    """One asset run over every hostile file of the day, beside good ones."""
    url = new_warehouse("t_hostile")
    landing = tmp_path_factory.mktemp("hostile")
    north = landing / "northwind"
    write(north / f"good-{DAY}.log", GOOD)
    write(north / f"later-copy-{DAY}.log", GOOD)                                   # copied under another name
    write(north / f"good-{DAY}.log.gz", gzip.compress(GOOD))                 # rotated, the original kept
    write(north / f"texty-{DAY}.log.gz", TEXTY)                              # plain text named .gz
    write(north / f"zipped-{DAY}.log", gzip.compress(ZIPPED))                # gzip named .log
    write(north / f"cut-{DAY}.log.gz", gzip.compress(CUT)[:-400])            # gzip cut short
    write(north / f"corrupt-{DAY}.log.gz", gzip.compress(TEXTY)[:10] + b"\xff" * 200)  # a header, then garbage
    write(north / f"long-{DAY}.log", LONG)                                   # lines of 1.5 KiB and 3 MiB
    write(north / f"longgz-{DAY}.log.gz", gzip.compress(LONG_GZ))
    write(north / f"many-{DAY}.log", MANY)                                   # 200 addresses, 10 cached
    write(landing / "riverbend" / f"good-{DAY}.log", GOOD)                   # the same content, another tenant
    metadata = materialize(url, landing)
    return url, landing, metadata


def test_one_run_refuses_or_stores_each_hostile_file_and_stores_the_others(hostile_run):
    url, _, metadata = hostile_run
    n, r = "northwind/", "riverbend/"
    assert ledger(url) == {
        f"{n}later-copy-{DAY}.log": ("duplicate", 0, 0, f"{n}good-{DAY}.log"),
        f"{n}corrupt-{DAY}.log.gz": ("refused", 0, 1, None),
        f"{n}cut-{DAY}.log.gz": ("refused", 0, 1, None),
        f"{n}good-{DAY}.log": ("loaded", 40, 0, None),
        f"{n}good-{DAY}.log.gz": ("duplicate", 0, 0, f"{n}good-{DAY}.log"),
        f"{n}long-{DAY}.log": ("loaded", 20, 2, None),
        f"{n}longgz-{DAY}.log.gz": ("loaded", 10, 1, None),
        f"{n}many-{DAY}.log": ("loaded", 200, 0, None),
        f"{n}texty-{DAY}.log.gz": ("loaded", 30, 0, None),
        f"{n}zipped-{DAY}.log": ("loaded", 20, 0, None),
        f"{r}good-{DAY}.log": ("loaded", 40, 0, None),  # duplicates are per tenant
    }
    assert rows_by_file(url) == {f"{n}good-{DAY}.log": 40, f"{n}long-{DAY}.log": 20, f"{n}longgz-{DAY}.log.gz": 10,
                                 f"{n}many-{DAY}.log": 200, f"{n}texty-{DAY}.log.gz": 30, f"{n}zipped-{DAY}.log": 20,
                                 f"{r}good-{DAY}.log": 40}
    assert (metadata["files_loaded"], metadata["files_duplicate"], metadata["files_refused"]) == (7, 2, 2)
    # the checksum is of the content: the gzip copy and the plain one have one
    assert query(url, "select count(distinct sha256) from ops.listener_log_files where file_key like %s",
                 (f"{n}good-%",)) == [(1,)]
    sha = dict(query(url, "select file_key, sha256 from ops.listener_log_files"))
    assert sha[f"{n}zipped-{DAY}.log"] == hashlib.sha256(ZIPPED).hexdigest()


def test_unreadable_gzip_is_quarantined_with_its_reason(hostile_run):
    url, _, _ = hostile_run
    rows = query(url, "select file_key, line_no, reason_code, detail from quarantine.listener_events "
                      "where reason_code = 'unreadable_gzip' order by 1")
    assert [(key.split("/")[1], reason) for key, _, reason, _ in rows] == [
        (f"corrupt-{DAY}.log.gz", "unreadable_gzip"), (f"cut-{DAY}.log.gz", "unreadable_gzip")]
    cut_line = rows[1][1]
    assert 1 < cut_line <= 3000 and "the whole file is refused" in rows[1][3]


def test_lines_over_the_limit_are_quarantined_with_a_prefix(hostile_run):
    url, _, _ = hostile_run
    rows = query(url, "select file_key, line_no, detail, length(line), left(line, 3) from quarantine.listener_events "
                      "where reason_code = 'line_too_long' order by 1, 2")
    assert rows == [
        (f"northwind/long-{DAY}.log", 11, "a line of 1500 bytes, over the limit of 1024; its first 1024 bytes are kept",
         1024, "xxx"),
        (f"northwind/long-{DAY}.log", 12,
         f"a line of {3 << 20} bytes, over the limit of 1024; its first 1024 bytes are kept", 1024, "yyy"),
        (f"northwind/longgz-{DAY}.log.gz", 6,
         f"a line of {3 << 20} bytes, over the limit of 1024; its first 1024 bytes are kept", 1024, "zzz"),
    ]
    # the lines around them keep their numbers
    assert query(url, "select min(line_no), max(line_no) from raw.listener_events where file_key = %s",
                 (f"northwind/long-{DAY}.log",)) == [(1, 22)]


def test_addresses_are_hashed_alike_with_a_cache_of_ten(hostile_run):
    url, _, _ = hostile_run
    stored = query(url, "select line_no, ip_hash, ip_prefix_hash from raw.listener_events where file_key = %s "
                        "order by line_no", (f"northwind/many-{DAY}.log",))
    ips = [line.split()[1] for line in MANY.decode().splitlines()]
    assert stored == [(i, *HASHER.hash_ip(ip)[:2]) for i, ip in enumerate(ips, start=1)]


def test_requests_after_load_time_plus_tolerance_are_quarantined_and_the_rest_stored(fresh_db, tmp_path, monkeypatch):
    """Ten minutes of requests (one a second from 10:00:00) loaded at 10:00:00 with
    PODCAST_FUTURE_TOLERANCE=2min: the requests up to 10:02:00 are stored, the later ones are
    quarantined as `future_timestamp` in the same load."""
    monkeypatch.setenv("PODCAST_FUTURE_TOLERANCE", "2min")
    get_settings.cache_clear()
    write(tmp_path / "northwind" / f"clock-{DAY}.log", lines_of("clock", 600))
    try:
        with psycopg.connect(fresh_db, autocommit=True) as conn:
            [log] = discover(tmp_path, settle_seconds=0)
            result = load_file(conn, log, HASHER, "b1", now=datetime(2026, 11, 1, 10, tzinfo=timezone.utc))
    finally:
        get_settings.cache_clear()
    assert result.rows == 121 and result.quarantined == {"future_timestamp": 479}
    assert query(fresh_db, "select min(line_no), max(line_no), max(event_time) from raw.listener_events "
                           "where file_key = %s", (log.file_key,)) == [
        (1, 121, datetime(2026, 11, 1, 10, 2, tzinfo=timezone.utc))]
    assert query(fresh_db, "select reason_code, count(*), min(line_no) from quarantine.listener_events "
                           "where file_key = %s group by 1", (log.file_key,)) == [("future_timestamp", 479, 122)]


def test_address_cache_stays_within_its_bound(fresh_db, tmp_path, monkeypatch):
    monkeypatch.setattr(loader, "BLOCK_BYTES", 2048)  # about 15 lines a batch
    write(tmp_path / "northwind" / f"many-{DAY}.log", MANY)
    with psycopg.connect(fresh_db, autocommit=True) as conn:
        [log] = discover(tmp_path, settle_seconds=0)
        result = load_file(conn, log, HASHER, "b1", limits=LoadLimits(max_line_bytes=1024, address_cache=10))
    assert result.rows == 200 and 10 < result.address_cache_peak <= 25  # a batch's addresses, never all 200
    ips = [line.split()[1] for line in MANY.decode().splitlines()]
    assert query(fresh_db, "select ip_hash from raw.listener_events order by line_no") == [
        (HASHER.hash_ip(ip)[0],) for ip in ips]


def test_deleted_renamed_and_repaired_files_then_nothing_changes(hostile_run, monkeypatch):
    """The original of two copies is deleted (a copy takes its place, loaded once), a loaded file
    is deleted (its rows go), a duplicate is deleted, the cut gzip is completed; the sensor asks
    for the day, the run does the rest, and a further run changes nothing."""
    url, landing, _ = hostile_run
    north = landing / "northwind"
    (north / f"good-{DAY}.log").unlink()
    (north / f"later-copy-{DAY}.log").unlink()
    (north / f"texty-{DAY}.log.gz").unlink()
    write(north / f"cut-{DAY}.log.gz", gzip.compress(CUT))

    monkeypatch.setenv("PODCAST_LOG_LANDING_DIR", str(landing))
    get_settings.cache_clear()
    context = dg.build_sensor_context(resources={"warehouse": WarehouseResource(database_url=url)})
    [request] = listener_log_files_sensor(context)
    assert request.partition_key == DAY and request.tags["log_files"] == "4"  # three gone, one grown

    metadata = materialize(url, landing)
    assert (metadata["files_deleted"], metadata["files_loaded"], metadata["files_unchanged"]) == (3, 2, 6)
    n = "northwind/"
    assert ledger(url) == {
        f"{n}later-copy-{DAY}.log": ("deleted", 0, 0, None),
        f"{n}corrupt-{DAY}.log.gz": ("refused", 0, 1, None),
        f"{n}cut-{DAY}.log.gz": ("loaded", 3000, 0, None),
        f"{n}good-{DAY}.log": ("deleted", 0, 0, None),
        f"{n}good-{DAY}.log.gz": ("loaded", 40, 0, None),  # the copy left takes the original's place
        f"{n}long-{DAY}.log": ("loaded", 20, 2, None),
        f"{n}longgz-{DAY}.log.gz": ("loaded", 10, 1, None),
        f"{n}many-{DAY}.log": ("loaded", 200, 0, None),
        f"{n}texty-{DAY}.log.gz": ("deleted", 0, 0, None),
        f"{n}zipped-{DAY}.log": ("loaded", 20, 0, None),
        f"riverbend/good-{DAY}.log": ("loaded", 40, 0, None),
    }
    stored = rows_by_file(url)
    assert f"{n}good-{DAY}.log" not in stored and f"{n}texty-{DAY}.log.gz" not in stored
    assert stored[f"{n}good-{DAY}.log.gz"] == 40 and stored[f"{n}cut-{DAY}.log.gz"] == 3000
    # each content once per tenant; no line twice
    assert query(url, "select count(*) from (select tenant_id, sha256 from ops.listener_log_files "
                      "where status = 'loaded' group by 1, 2 having count(*) > 1) d") == [(0,)]
    assert query(url, "select count(*) = count(distinct (file_key, line_no)) from raw.listener_events") == [(True,)]
    assert query(url, "select count(*) from quarantine.listener_events where reason_code = 'unreadable_gzip'") == [(1,)]

    assert isinstance(listener_log_files_sensor(context), dg.SkipReason)
    snapshot = (ledger(url), rows_by_file(url), query(url, "select * from quarantine.listener_events order by 2, 3"))
    again = materialize(url, landing)
    assert (again["files_loaded"], again["files_deleted"], again["rows_loaded_this_run"]) == (0, 0, 0)
    assert (ledger(url), rows_by_file(url), query(url, "select * from quarantine.listener_events order by 2, 3")) == snapshot
    get_settings.cache_clear()


def _rewriting(monkeypatch, path: Path, versions: list[bytes]) -> None:
    """Make each read of `path` by the loader (each starts with its fingerprint) rewrite the file
    in place after its second batch with the next of `versions`: a writer at work while it is read."""
    monkeypatch.setattr(loader, "BLOCK_BYTES", 4096)
    real_parse, real_fingerprint = loader.parse_lines, loader.fingerprint
    batches = {"n": 0}

    def fingerprint(file):
        batches["n"] = 0
        return real_fingerprint(file)

    def parse(fmt, lines):
        batches["n"] += 1
        if batches["n"] == 2 and versions:
            path.write_bytes(versions.pop(0))
        return real_parse(fmt, lines)

    monkeypatch.setattr(loader, "fingerprint", fingerprint)
    monkeypatch.setattr(loader, "parse_lines", parse)


def test_a_file_rewritten_while_read_is_read_again_whole(fresh_db, tmp_path, monkeypatch):
    path = tmp_path / "northwind" / f"access-{DAY}.log"
    first, second = lines_of("a", 300), lines_of("b", 500)
    write(path, first)
    _rewriting(monkeypatch, path, [second])
    with psycopg.connect(fresh_db, autocommit=True) as conn:
        result = load_file(conn, discover(tmp_path, settle_seconds=0)[0], HASHER, "b1")
    assert (result.status, result.rows) == ("loaded", 500)
    assert query(fresh_db, "select sha256, rows_loaded from ops.listener_log_files") == [
        (hashlib.sha256(second).hexdigest(), 500)]
    assert query(fresh_db, "select count(*), count(distinct line_no), min(path) from raw.listener_events") == [
        (500, 500, "/b/ep-0.mp3")]


def test_a_file_changing_on_every_read_is_left_whole_for_a_later_run(fresh_db, tmp_path, monkeypatch):
    path = tmp_path / "northwind" / f"access-{DAY}.log"
    first = lines_of("a", 300)
    write(path, first)
    with psycopg.connect(fresh_db, autocommit=True) as conn:
        assert load_file(conn, discover(tmp_path, settle_seconds=0)[0], HASHER, "b1").status == "loaded"
        write(path, lines_of("b", 400))
        _rewriting(monkeypatch, path, [lines_of("c", 500), lines_of("d", 600)])
        result = load_file(conn, discover(tmp_path, settle_seconds=0)[0], HASHER, "b2")
        assert result.status == "changing"
        # the version loaded before stays, whole, under its own checksum
        assert query(fresh_db, "select sha256, rows_loaded, _batch_id from ops.listener_log_files") == [
            (hashlib.sha256(first).hexdigest(), 300, "b1")]
        assert query(fresh_db, "select count(*), min(path) from raw.listener_events") == [(300, "/a/ep-0.mp3")]
        monkeypatch.undo()  # the writer is done: the next run loads the last version entirely
        assert load_file(conn, discover(tmp_path, settle_seconds=0)[0], HASHER, "b3").rows == 600
    assert query(fresh_db, "select count(*), count(distinct line_no) from raw.listener_events") == [(600, 600)]
    assert query(fresh_db, "select sha256 from ops.listener_log_files") == [(file_sha256(path),)]


KILLED_LOAD = """
import sys
from pathlib import Path

import psycopg

import assets.ingestion.listener_logs_load as loader
from assets.ingestion.listener_logs_parse import IpHasher

url, landing, secret = sys.argv[1], Path(sys.argv[2]), sys.argv[3].encode()
loader.BLOCK_BYTES = 4096
real, calls = loader.parse_lines, [0]


def parse(fmt, lines):
    calls[0] += 1
    if calls[0] == 4:  # three batches are in the COPY: say so, and wait to be killed
        print("copying", flush=True)
        sys.stdin.read()
    return real(fmt, lines)


loader.parse_lines = parse
with psycopg.connect(url, autocommit=True) as conn:
    for log in loader.discover(landing, settle_seconds=0):
        loader.load_file(conn, log, IpHasher.for_tenant(secret, log.tenant_id), "killed")
"""


def test_a_load_killed_with_sigkill_keeps_the_version_before_and_the_rerun_loads_every_line(
        new_warehouse, tmp_path, hostile_settings):
    url = new_warehouse("t_killed")
    path = tmp_path / "northwind" / f"access-{DAY}.log"
    damaged = b"not a log line\n"
    first = lines_of("a", 200) + damaged + lines_of("a", 100, first=200)
    write(path, first)
    materialize(url, tmp_path)
    write(path, first + lines_of("b", 600) + damaged * 3 + lines_of("b", 100, first=600))  # the host appended
    child = subprocess.Popen([sys.executable, "-c", KILLED_LOAD, url, str(tmp_path), SECRET], cwd=REPO_ROOT,
                             env={**os.environ, "PYTHONPATH": str(REPO_ROOT)}, stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "copying"
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    assert child.returncode == -signal.SIGKILL
    assert query(url, "select sha256, rows_loaded, rows_quarantined from ops.listener_log_files") == [
        (hashlib.sha256(first).hexdigest(), 300, 1)]
    assert query(url, "select count(*) from raw.listener_events") == [(300,)]

    metadata = materialize(url, tmp_path)
    assert metadata["files_loaded"] == 1
    loaded = query(url, "select count(*), count(distinct line_no) from raw.listener_events")[0]
    quarantined = query(url, "select count(*), count(distinct line_no) from quarantine.listener_events")[0]
    assert loaded == (1000, 1000) and quarantined == (4, 4)
    assert loaded[0] + quarantined[0] == len(path.read_bytes().splitlines())
    assert query(url, "select sha256 from ops.listener_log_files") == [(hashlib.sha256(path.read_bytes()).hexdigest(),)]


def test_a_tenant_folder_that_is_not_an_identifier_is_refused_and_the_others_stored(
        new_warehouse, tmp_path, hostile_settings):
    """The folder names the tenant, and a tenant id becomes part of paths and partition keys
    downstream: a folder that is not an identifier has its files refused whole, with the reason,
    once; the other tenants' files of the same run are stored."""
    url = new_warehouse("t_hostile_tenant")
    write(tmp_path / "north wind" / f"good-{DAY}.log", GOOD)
    write(tmp_path / "northwind" / f"good-{DAY}.log", GOOD)
    metadata = materialize(url, tmp_path)
    assert (metadata["files_loaded"], metadata["files_refused"]) == (1, 1)
    assert ledger(url) == {f"north wind/good-{DAY}.log": ("refused", 0, 1, None),
                           f"northwind/good-{DAY}.log": ("loaded", 40, 0, None)}
    [(reason, detail)] = query(url, "select reason_code, detail from quarantine.listener_events")
    assert reason == "invalid_identifier" and "the tenant folder 'north wind' is not an identifier" in detail
    assert rows_by_file(url) == {f"northwind/good-{DAY}.log": 40}
    metadata = materialize(url, tmp_path)  # that version of the file is not tried again
    assert (metadata["files_loaded"], metadata["files_refused"]) == (0, 0)
    assert query(url, "select count(*) from quarantine.listener_events") == [(1,)]
