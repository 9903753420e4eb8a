"""Serve a simulated network over HTTP on 127.0.0.1, with each show's planted behaviour."""

from __future__ import annotations

import gzip
import hashlib
import threading
import time
from collections import Counter
from email.utils import format_datetime, parsedate_to_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from simulator.feeds import NO_SHAPES, render_feed
from simulator.network import Network, Show
from simulator.platforms import FAULT_KINDS, PlatformApis
from simulator.transcripts import DocumentStore

OVERSIZED_BYTES = 5_000_000
SLOW_SECONDS = 1.0
HANG_SECONDS = 6.0


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def get_request(self):
        import socket

        conn, addr = super().get_request()
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return conn, addr

    request_queue_size = 2048
    allow_reuse_address = True

    def handle_error(self, request, client_address) -> None:
        import sys

        if not isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            super().handle_error(request, client_address)


class SimulatorServer:
    """`with SimulatorServer(network, port=0) as sim: sim.base_url ...`"""

    def __init__(
        self, network: Network, host: str = "127.0.0.1", port: int = 0, hang_seconds: float = HANG_SECONDS,
        latency_seconds: float = 0.0, api_faults: float = 0.0, api_fault_seed: int = 0,
        api_retry_after: int = 1, api_hang_seconds: float | None = None,
        transistor_limit: tuple[int, float] = (10, 10.0), transistor_links: bool = True,
        podbean_bucket: tuple[int, float] | None = None, podbean_token_seconds: float | None = None,
        api_fault_kinds: tuple[str, ...] = FAULT_KINDS,
    ):
        self.network = network
        self.hang_seconds = hang_seconds
        # Added to every response: the round trip of a feed host across the internet.
        self.latency_seconds = latency_seconds
        self.requests: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._cache: dict[tuple[str, str, int], tuple[bytes, str, str]] = {}
        self._shows = {show.path: show for show in network.shows}
        self._flaky_seen: set[str] = set()
        self._httpd = _Server((host, port), self._handler())
        self.host, self.port = self._httpd.server_address[:2]
        self.base_url = f"http://{self.host}:{self.port}"
        # Platform APIs under their own path prefixes (`PlatformApis.routes`), with their own fault mode.
        self.apis = PlatformApis(
            network, self.base_url, faults=api_faults, fault_seed=api_fault_seed, retry_after=api_retry_after,
            hang_seconds=hang_seconds if api_hang_seconds is None else api_hang_seconds,
            transistor_limit=transistor_limit, transistor_links=transistor_links,
            podbean_bucket=podbean_bucket, podbean_token_seconds=podbean_token_seconds, fault_kinds=api_fault_kinds,
        )
        # Transcripts and chapters of the episodes (`simulator.transcripts`), rendered on request.
        self.documents = DocumentStore(network, self.base_url)
        self._thread: threading.Thread | None = None
        self.campaign_apis = None  # the sponsorship and shop APIs, once `attach_campaigns` is called
        # A 304 may carry no validators (RFC 9110 only says SHOULD; python's http.server and some
        # feed hosts send none): False makes every 304 bare.
        self.validators_on_304 = True
        # Real feed shapes (`simulator.feeds.FeedShapes`, truth in `shapes_truth`): none by default.
        self.shapes = NO_SHAPES

    def attach_campaigns(self, world):
        """Serve the sponsorship API and the sponsors' shops of a `simulator.campaigns.CampaignWorld`;
        the transcripts carry the reads of its baked-in placements from now on."""
        from simulator.campaign_sources import CampaignApis

        self.campaign_apis = CampaignApis(world, self.base_url)
        self.documents.attach(world)
        return self.campaign_apis

    # -- lifecycle --------------------------------------------------------------------------
    def start(self) -> SimulatorServer:
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def serve_forever(self) -> None:
        self._httpd.serve_forever(poll_interval=0.2)

    def __enter__(self) -> SimulatorServer:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    # -- content ----------------------------------------------------------------------------
    def change(self, shows: list[Show]) -> None:
        """Publish a new version of these feeds (new lastBuildDate, new ETag)."""
        with self._lock:
            for show in shows:
                show.version += 1

    def set_quality_defect(self, show: Show, kind: str | None) -> None:
        """Switch a data-quality defect (`simulator.feeds.QUALITY_DEFECTS`) on or off for a feed:
        the feed changes (new version), so conditional requests see it."""
        from simulator.feeds import QUALITY_DEFECTS

        if kind is not None and kind not in QUALITY_DEFECTS:
            raise ValueError(f"unknown quality defect {kind!r}; known: {', '.join(QUALITY_DEFECTS)}")
        with self._lock:
            show.quality_defect = kind
            show.version += 1

    def feed_body(self, show: Show) -> tuple[bytes, str, str]:
        """(body, etag, last_modified) of a show's current version, rendered once."""
        key = (show.path, show.feed_defect or "", show.version, show.quality_defect or "", self.shapes)
        cached = self._cache.get(key)
        if cached:
            return cached
        defect = show.feed_defect
        encoding = {"wrong_encoding": "utf-8", "latin1": "iso-8859-1"}.get(defect or "", "utf-8")
        text = render_feed(show, self.base_url, encoding=encoding,
                           padding_bytes=OVERSIZED_BYTES if defect == "oversized" else 0, shapes=self.shapes,
                           entity=show.path in self.shapes.entity_shows(self.network))
        if defect == "malformed_xml":
            text = text[: int(len(text) * 0.6)]
        if defect == "entity_bomb":
            bomb = '<!DOCTYPE rss [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;"><!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;">]>'
            text = text.replace("?>\n", "?>\n" + bomb + "\n", 1).replace("<title>", "<title>&c;", 1)
        if defect == "html_page":
            text = "<!DOCTYPE html><html><head><title>Maintenance</title></head><body><h1>We'll be back soon</h1></body></html>"
        if defect in ("wrong_encoding", "latin1"):
            body = text.encode("windows-1252" if defect == "wrong_encoding" else "iso-8859-1", errors="xmlcharrefreplace")
        else:
            body = text.encode("utf-8")
        etag = '"' + hashlib.sha256(body).hexdigest()[:24] + '"'
        newest = max((e.published for e in show.episodes if e.published), default=None)
        last_modified = format_datetime(newest, usegmt=True) if newest else "Thu, 01 Jan 2026 00:00:00 GMT"
        self._cache[key] = (body, etag, last_modified)
        return body, etag, last_modified

    def _handler(self):
        sim = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:  # quiet
                pass

            def _send(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
                self.send_response(status)
                for key, value in (headers or {}).items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(body)))
                # Headers and body in one write: two small writes meet delayed ACKs (~40 ms).
                self._headers_buffer.append(b"\r\n")
                if self.command != "HEAD" and body:
                    self._headers_buffer.append(body)
                self.flush_headers()

            def do_POST(self) -> None:
                """`POST /admin/change?every=10`: publish a new version of every 10th feed."""
                from urllib.parse import parse_qs, urlsplit

                parts = urlsplit(self.path)
                if parts.path.startswith(tuple(sim.apis.routes)):
                    # API calls that POST (OAuth token requests): form fields join the query.
                    length = int(self.headers.get("Content-Length") or 0)
                    form = self.rfile.read(length).decode("utf-8", "replace") if length else ""
                    query = "&".join(q for q in (parts.query, form) if q)
                    reply = sim.apis.handle(parts.path, query, self.headers, method="POST")
                    if reply.delay:
                        time.sleep(reply.delay)
                    return self._send(reply.status, reply.body, reply.headers)
                if parts.path != "/admin/change":
                    return self._send(404, b"not found")
                every = int(parse_qs(parts.query).get("every", ["10"])[0])
                changed = [show for i, show in enumerate(sim.network.shows) if i % every == 0]
                sim.change(changed)
                self._send(200, str(len(changed)).encode())

            def do_HEAD(self) -> None:
                self.do_GET()

            def do_GET(self) -> None:
                if sim.latency_seconds:
                    time.sleep(sim.latency_seconds)
                path = self.path.split("?", 1)[0]
                with sim._lock:
                    sim.requests[path] += 1
                if sim.campaign_apis is not None and path.startswith(tuple(sim.campaign_apis.routes)):
                    reply = sim.campaign_apis.handle(path, self.path.partition("?")[2], self.headers)
                    return self._send(reply.status, reply.body, reply.headers)
                if path.startswith(tuple(sim.apis.routes)):
                    reply = sim.apis.handle(path, self.path.partition("?")[2], self.headers)
                    if reply.delay:
                        time.sleep(reply.delay)
                    return self._send(reply.status, reply.body, reply.headers)
                if path.startswith(("/transcripts/", "/chapters/")):
                    return self._document(path)
                if path.startswith("/loop/"):
                    hop = int(path.rsplit("/", 1)[1]) + 1
                    return self._send(302, headers={"Location": f"/loop/x/{hop}"})
                if path.startswith("/moved/"):
                    show = sim._shows.get(path.replace("/moved/", "/feeds/", 1))
                    if show is None:
                        return self._send(404, b"not found")
                    return self._feed(show)
                show = sim._shows.get(path)
                if show is None:
                    return self._send(404, b"not found", {"Content-Type": "text/plain"})
                defect = show.feed_defect
                if defect == "redirect":
                    return self._send(301, headers={"Location": path.replace("/feeds/", "/moved/", 1)})
                if defect == "redirect_loop":
                    return self._send(302, headers={"Location": "/loop/x/1"})
                if defect == "not_found":
                    return self._send(404, b"<html>gone</html>", {"Content-Type": "text/html"})
                if defect == "server_error":
                    return self._send(500, b"internal error", {"Content-Type": "text/plain"})
                if defect == "flaky":
                    with sim._lock:
                        first = path not in sim._flaky_seen
                        sim._flaky_seen.add(path)
                    if first:
                        return self._send(503, b"busy", {"Retry-After": "1"})
                if defect == "slow":
                    time.sleep(SLOW_SECONDS)
                if defect == "timeout":
                    time.sleep(sim.hang_seconds)
                return self._feed(show)

            def _document(self, path: str) -> None:
                status, body, headers = sim.documents.get(path)
                etag = headers.get("ETag")
                if status == 200 and etag and self.headers.get("If-None-Match") == etag:
                    return self._send(304, headers={"ETag": etag, "Last-Modified": headers["Last-Modified"]})
                self._send(status, body, headers)

            def _feed(self, show: Show) -> None:
                body, etag, last_modified = sim.feed_body(show)
                not_modified = {"ETag": etag, "Last-Modified": last_modified} if sim.validators_on_304 else {}
                if self.headers.get("If-None-Match") == etag:
                    return self._send(304, headers=not_modified)
                since = self.headers.get("If-Modified-Since")
                if since and not self.headers.get("If-None-Match"):
                    try:
                        if parsedate_to_datetime(since) >= parsedate_to_datetime(last_modified):
                            return self._send(304, headers=not_modified)
                    except (TypeError, ValueError):
                        pass
                headers = {"ETag": etag, "Last-Modified": last_modified}
                if show.feed_defect == "html_page":
                    headers["Content-Type"] = "text/html; charset=utf-8"
                elif show.feed_defect == "latin1":
                    headers["Content-Type"] = "application/rss+xml; charset=iso-8859-1"
                elif show.feed_defect == "wrong_encoding":
                    headers["Content-Type"] = "application/rss+xml"
                else:
                    headers["Content-Type"] = "application/rss+xml; charset=utf-8"
                if show.feed_defect == "gzip":
                    body = gzip.compress(body, mtime=0)
                    headers["Content-Encoding"] = "gzip"
                self._send(200, body, headers)

        return Handler
