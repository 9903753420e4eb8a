"""The fetcher against misbehaving servers (real HTTP on loopback)."""

import gzip
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from resources.http import FetchPolicy, Fetcher, parse_retry_after


class Misbehaving(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    hits: dict[str, int] = {}

    def log_message(self, *args):
        pass

    def _reply(self, status, body=b"", headers=None, chunked=False):
        self.send_response(status)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        if chunked:
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for start in range(0, len(body), 65536):
                part = body[start:start + 65536]
                self.wfile.write(f"{len(part):x}\r\n".encode() + part + b"\r\n")
            self.wfile.write(b"0\r\n\r\n")
            return
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        Misbehaving.hits[self.path] = Misbehaving.hits.get(self.path, 0) + 1
        n = Misbehaving.hits[self.path]
        if self.path == "/ok":
            if self.headers.get("If-None-Match") == '"v1"':
                return self._reply(304, headers={"ETag": '"v1"'})
            return self._reply(200, b"<rss/>", {"ETag": '"v1"', "Last-Modified": "Mon, 02 Nov 2026 10:00:00 GMT"})
        if self.path == "/set-cookie":
            return self._reply(200, b"<rss/>", {"Set-Cookie": "session=tenant-a; Path=/"})
        if self.path == "/echo-cookie":
            return self._reply(200, (self.headers.get("Cookie") or "").encode())
        if self.path == "/rate-limited":
            if n == 1:
                return self._reply(429, b"slow down", {"Retry-After": "1"})
            return self._reply(200, b"<rss/>")
        if self.path == "/always-503":
            return self._reply(503, b"busy")
        if self.path == "/huge-chunked":
            return self._reply(200, b"x" * 3_000_000, chunked=True)
        if self.path == "/huge-declared":
            return self._reply(200, b"x" * 2_000_000)
        if self.path == "/gzip-bomb":
            return self._reply(200, gzip.compress(b"\0" * 50_000_000), {"Content-Encoding": "gzip"})
        if self.path == "/gzip-ok":
            return self._reply(200, gzip.compress(b"<rss>fine</rss>"), {"Content-Encoding": "gzip"})
        if self.path == "/hang":
            time.sleep(3)
            return self._reply(200, b"late")
        if self.path == "/to-private":
            return self._reply(302, headers={"Location": "http://10.0.0.1/feed"})
        if self.path == "/to-file":
            return self._reply(302, headers={"Location": "file:///etc/passwd"})
        if self.path == "/trickle":  # a declared body sent one byte at a time, never all of it
            self.send_response(200)
            self.send_header("Content-Length", "1000")
            self.end_headers()
            for _ in range(100):
                time.sleep(0.1)
                self.wfile.write(b"x")
                self.wfile.flush()
            return None
        if self.path == "/trickle-headers":  # the header block itself, one line at a time
            self.wfile.write(b"HTTP/1.1 200 OK\r\n")
            for n in range(100):
                time.sleep(0.1)
                self.wfile.write(f"X-Slow-{n}: 1\r\n".encode())
                self.wfile.flush()
            return None
        if self.path == "/echo-host":
            return self._reply(200, (self.headers.get("Host") or "").encode())
        if self.path.startswith("/to-scheme/"):
            return self._reply(302, headers={"Location": self.path.removeprefix("/to-scheme/") + ":alert(1)"})
        if self.path == "/to-unprintable":
            return self._reply(302, headers={"Location": "http://example.com/\x7ffeed"})
        if self.path == "/to-broken-ipv6":
            return self._reply(302, headers={"Location": "http://[::1/feed"})
        if self.path.startswith("/loop"):
            return self._reply(302, headers={"Location": f"/loop{n}"})
        return self._reply(404, b"no")


@pytest.fixture(scope="module")
def server():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Misbehaving)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


def fetch(url, etag=None, **policy):
    base = dict(allow_private_hosts=True, timeout_seconds=1.0, max_attempts=3, wait_initial_seconds=0.05,
                wait_max_seconds=0.2, max_bytes=1_000_000)
    base.update(policy)

    with Fetcher(FetchPolicy(**base)) as fetcher:
        return fetcher.fetch(url, etag)


def test_conditional_get(server):
    first = fetch(server + "/ok")
    assert first.ok and first.status_code == 200 and first.etag == '"v1"'
    again = fetch(server + "/ok", etag=first.etag)
    assert again.not_modified and again.body is None and again.error_code is None


def test_no_cookie_is_kept_between_polls(server):
    with Fetcher(FetchPolicy(allow_private_hosts=True, timeout_seconds=1.0)) as fetcher:
        assert fetcher.fetch(server + "/set-cookie").ok
        echoed = fetcher.fetch(server + "/echo-cookie")
    assert echoed.ok and echoed.body == b""  # the cookie the host set is not sent back


def test_retry_after_is_honoured(server):
    started = time.perf_counter()
    result = fetch(server + "/rate-limited")
    assert result.ok and result.attempts == 2
    assert time.perf_counter() - started >= 0.95  # waited what the server asked, not the 0.05 s backoff


def test_persistent_5xx_gives_up_after_max_attempts(server):
    result = fetch(server + "/always-503", max_attempts=3)
    assert result.error_code == "http_503" and result.attempts == 3


@pytest.mark.parametrize("path", ["/huge-chunked", "/huge-declared", "/gzip-bomb"])
def test_size_cap_bounds_body_and_decompressed_size(server, path):
    result = fetch(server + path)
    assert result.error_code == "response_too_large" and result.body is None


def test_gzip_is_decoded(server):
    assert fetch(server + "/gzip-ok").body == b"<rss>fine</rss>"


def test_timeout_is_reported(server):
    result = fetch(server + "/hang", max_attempts=2, timeout_seconds=0.5)
    assert result.error_code == "timeout" and result.attempts == 2


def test_redirect_limit(server):
    assert fetch(server + "/loop", max_redirects=3).error_code == "too_many_redirects"


def test_private_and_loopback_hosts_refused_unless_allowed(server):
    assert fetch(server + "/ok", allow_private_hosts=False).error_code == "private_address"
    assert fetch("http://localhost:9/feed", allow_private_hosts=False).error_code == "private_address"


def test_redirect_to_private_address_refused(server):
    # Loopback is exempted by name for this test server only; the guard runs again on every
    # hop, so the redirect to a private address is refused before any connection is made.
    result = fetch(server + "/to-private", allow_private_hosts=False, allowed_hosts=("127.0.0.1",))
    assert result.error_code == "private_address" and "10.0.0.1" in result.error


def test_address_classification():
    from resources.http import _is_public

    assert not any(_is_public(a) for a in ("10.0.0.1", "192.168.1.1", "::1", "::ffff:127.0.0.1", "169.254.169.254", "fd00::1"))
    assert _is_public("93.184.216.34") and _is_public("2606:4700::1111")


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://example.com/feed.xml", "gopher://x/", "feed.xml"])
def test_non_http_schemes_refused(url):
    assert fetch(url).error_code in {"scheme_not_allowed", "invalid_url"}


def test_redirect_to_file_scheme_refused(server):
    assert fetch(server + "/to-file").error_code == "scheme_not_allowed"


def test_retry_after_parsing():
    assert parse_retry_after("7") == 7.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412480 - 10) == pytest.approx(10.0)
    assert parse_retry_after("soon") is None and parse_retry_after(None) is None


@pytest.mark.parametrize("path", ["/trickle", "/trickle-headers"])
def test_a_trickling_server_is_cut_off_at_the_deadline(server, path):
    """Every read completes well within its timeout; the fetch's deadline ends it all the same,
    without a retry (another attempt would trickle again)."""
    result = fetch(server + path, timeout_seconds=0.5, deadline_seconds=0.8, max_attempts=3)
    assert (result.error_code, result.attempts, result.body) == ("deadline_exceeded", 1, None)
    assert result.error == "no complete answer within 0.8s"


def test_the_deadline_covers_retries(server):
    # Two attempts of 0.5 s each fit in the retry budget but not in a 0.8 s deadline.
    result = fetch(server + "/hang", timeout_seconds=0.5, deadline_seconds=0.8, max_attempts=5)
    assert result.error_code == "deadline_exceeded" and result.attempts == 2


@pytest.mark.parametrize(("path", "code"), [
    ("/to-scheme/javascript", "scheme_not_allowed"), ("/to-scheme/data", "scheme_not_allowed"),
    ("/to-scheme/vbscript", "scheme_not_allowed"), ("/to-unprintable", "invalid_url"),
    ("/to-broken-ipv6", "invalid_url"),
])
def test_redirects_to_unusable_urls_are_refused_with_a_reason(server, path, code):
    result = fetch(server + path)
    assert result.error_code == code and result.attempts == 1


@pytest.mark.parametrize("url", ["http://example.com:99999/feed", "http://xn--/feed", "http://[::1/feed"])
def test_malformed_feed_urls_are_invalid_not_crashes(url):
    assert fetch(url, allow_private_hosts=False).error_code == "invalid_url"


class Resolver:
    """A name server for one host name: each lookup gets the next answer (the last repeats)."""

    def __init__(self, *answers: list[str]):
        self.answers = list(answers)
        self.lookups = 0

    def __call__(self, host, port, type=0):
        import socket

        self.lookups += 1
        addresses = self.answers[min(self.lookups, len(self.answers)) - 1]
        return [(socket.AF_INET6 if ":" in a else socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, port)) for a in addresses]


def test_the_connection_goes_to_the_address_that_was_resolved_once(server):
    """DNS rebinding: the host answers loopback (where the feed is) first and another address
    after. The fetch resolves once and connects to that answer; the Host header keeps the name."""
    port = int(server.rsplit(":", 1)[1])
    resolver = Resolver(["127.0.0.1"], ["127.0.0.2"])
    with Fetcher(FetchPolicy(allow_private_hosts=True, timeout_seconds=1.0), resolve=resolver) as fetcher:
        result = fetcher.fetch(f"http://feed.rebind.test:{port}/echo-host")
    assert result.ok and result.body == f"feed.rebind.test:{port}".encode()
    assert resolver.lookups == 1


def test_every_resolved_address_is_checked_before_connecting(server):
    """A public first answer does not hide a private second one; nothing is connected to."""
    port = int(server.rsplit(":", 1)[1])
    before = Misbehaving.hits.get("/ok", 0)
    resolver = Resolver(["93.184.216.34", "127.0.0.1"])
    with Fetcher(FetchPolicy(timeout_seconds=1.0, max_attempts=1), resolve=resolver) as fetcher:
        result = fetcher.fetch(f"http://feed.rebind.test:{port}/ok")
    assert result.error_code == "private_address" and "127.0.0.1" in result.error
    assert resolver.lookups == 1 and Misbehaving.hits.get("/ok", 0) == before


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory):
    """HTTPS on loopback with a self-signed certificate for `feed.rebind.test` (trusted through
    SSL_CERT_FILE by the test using it); records the server name each handshake asked for."""
    import ssl
    import subprocess

    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=feed.rebind.test",
                    "-addext", "subjectAltName=DNS:feed.rebind.test", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True)
    names: list[str | None] = []
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    context.sni_callback = lambda sock, name, ctx: names.append(name)
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Misbehaving)
    httpd.socket = context.wrap_socket(httpd.socket, server_side=True)
    httpd.daemon_threads = True
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield httpd.server_address[1], cert, names
    httpd.shutdown()


def test_a_pinned_https_connection_still_names_and_verifies_the_host(tls_server, monkeypatch):
    """Connecting to the resolved address keeps TLS about the name: SNI carries it and the
    certificate is checked against it (a name the certificate does not hold is refused)."""
    port, cert, names = tls_server
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))
    resolver = Resolver(["127.0.0.1"])
    policy = FetchPolicy(allow_private_hosts=True, timeout_seconds=2.0, max_attempts=1)
    with Fetcher(policy, resolve=resolver) as fetcher:
        ok = fetcher.fetch(f"https://feed.rebind.test:{port}/echo-host")
        wrong = fetcher.fetch(f"https://other.rebind.test:{port}/echo-host")
    assert ok.ok and ok.body == f"feed.rebind.test:{port}".encode()
    assert names[:2] == ["feed.rebind.test", "other.rebind.test"]
    assert wrong.error_code == "connection_error" and "CERTIFICATE_VERIFY_FAILED" in wrong.error


def test_platform_api_requests_have_a_deadline_and_checked_addresses(server):
    """The hosting-platform clients share the feed fetcher's transport: a trickling API answer
    ends at the request's deadline (not retried), and a private address is refused unless the
    policy allows it, before anything is sent."""
    from resources.platform_http import ApiClient, ApiError, ApiPolicy

    policy = ApiPolicy(allow_private_hosts=True, timeout_seconds=0.5, deadline_seconds=0.8, max_attempts=3,
                       wait_initial_seconds=0.05, wait_max_seconds=0.1)
    before = Misbehaving.hits.get("/trickle", 0)
    with ApiClient(server, policy) as client, pytest.raises(ApiError) as cut:
        client.get("/trickle")
    assert (cut.value.code, cut.value.detail) == ("deadline_exceeded", "no complete answer within 0.8s")
    assert Misbehaving.hits.get("/trickle", 0) == before + 1

    before = Misbehaving.hits.get("/ok", 0)
    with ApiClient(server, ApiPolicy(timeout_seconds=0.5, max_attempts=1)) as client, pytest.raises(ApiError) as refused:
        client.get("/ok")
    assert refused.value.code == "private_address" and "127.0.0.1" in refused.value.detail
    assert Misbehaving.hits.get("/ok", 0) == before
