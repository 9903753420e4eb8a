"""HTTP fetching for hostile sources: timeouts, a total deadline per fetch, retries that honour
Retry-After, size caps, manual redirects with a limit, and a guard against non-http(s) schemes
and private hosts.

httpx only retries connection set-up; retries here go through `stamina`, whose backoff hook
lets a server's `Retry-After` decide the wait.

httpx's timeouts bound each network operation, not a request: a server sending one byte every
few seconds never trips them. The fetcher's connections go through `GuardedBackend`, an httpcore
network backend that gives every read, write and connect at most the time left before the
fetch's deadline. The same backend resolves the host once, refuses it if any address it
resolves to is private, and connects to those checked addresses: a second lookup (DNS
rebinding) cannot send the connection elsewhere. TLS still names the host (SNI and certificate
checks), and the Host header is the URL's.
"""

from __future__ import annotations

import email.utils
import contextlib
import ipaddress
import socket
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from urllib.parse import SplitResult, urljoin, urlsplit

import dagster as dg
import httpcore
import httpx
import stamina

RETRYABLE_STATUS = {408, 425, 429, 500, 502, 503, 504}
REDIRECT_STATUS = {301, 302, 303, 307, 308}
USER_AGENT = "podcast-analytics/0.1 (+feed poller)"


class FetchError(Exception):
    """A fetch that failed for good. `code` is the stable reason code stored with the failure."""

    def __init__(self, code: str, detail: str, status_code: int | None = None):
        super().__init__(f"{code}: {detail}")
        self.code = code
        self.detail = detail
        self.status_code = status_code
        self.attempts: int | None = None  # set when it ends a series of retries


class _Retryable(Exception):
    def __init__(self, code: str, detail: str, status_code: int | None = None, retry_after: float | None = None):
        super().__init__(f"{code}: {detail}")
        self.code = code
        self.detail = detail
        self.status_code = status_code
        self.retry_after = retry_after
        self.attempts: int | None = None


@dataclass(frozen=True)
class FetchPolicy:
    timeout_seconds: float = 10.0
    connect_timeout_seconds: float = 5.0
    max_attempts: int = 3
    retry_budget_seconds: float = 60.0
    wait_initial_seconds: float = 0.2
    wait_max_seconds: float = 10.0
    max_retry_after_seconds: float = 30.0
    max_bytes: int = 10 * 1024 * 1024
    max_redirects: int = 5
    # The most one fetch may take, redirects and retries included: a server that trickles its
    # answer is cut off (`deadline_exceeded`) however often it sends a byte.
    deadline_seconds: float = 60.0
    allow_private_hosts: bool = False
    allowed_hosts: tuple[str, ...] = ()  # exact host names exempt from the private-address rule
    allowed_schemes: tuple[str, ...] = ("http", "https")


@dataclass
class FetchResult:
    url: str
    final_url: str
    status_code: int | None
    body: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)
    etag: str | None = None
    last_modified: str | None = None
    attempts: int = 0
    duration_ms: float = 0.0
    fetched_at: datetime = field(default_factory=lambda: datetime.now(timezone.utc))
    error_code: str | None = None
    error: str | None = None

    @property
    def not_modified(self) -> bool:
        return self.status_code == 304 and self.error_code is None

    @property
    def ok(self) -> bool:
        return self.error_code is None and self.body is not None


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, when.timestamp() - (now if now is not None else time.time()))


def _is_public(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return not (
        ip.is_private or ip.is_loopback or ip.is_link_local or ip.is_multicast
        or ip.is_reserved or ip.is_unspecified
    )


def check_target(url: str, policy: FetchPolicy) -> SplitResult:
    """Refuse schemes other than http(s) and URLs without a usable host (no network access)."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 (raises on a port that is not a number in range)
        httpx.URL(url).host  # noqa: B018 (raises on a host IDNA refuses)
    except (ValueError, httpx.InvalidURL) as exc:  # IDNA errors are ValueErrors too
        raise FetchError("invalid_url", f"{url[:200]!r} is not a valid URL: {exc}") from exc
    if parts.scheme.lower() not in policy.allowed_schemes:
        raise FetchError("scheme_not_allowed", f"scheme {parts.scheme or '(none)'!r} is not allowed")
    if not parts.hostname:
        raise FetchError("invalid_url", f"no host in {url[:200]!r}")
    return parts


def resolve_checked(host: str, port: int, policy: FetchPolicy,
                    resolve: Callable[..., list] = socket.getaddrinfo) -> list[str]:
    """The addresses `host` resolves to, in resolver order, once every one of them is allowed:
    public, unless the policy allows private hosts or exempts this host by name."""
    guarded = not (policy.allow_private_hosts or host.lower() in policy.allowed_hosts)
    try:
        infos = resolve(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        if guarded:
            raise FetchError("dns_error", f"cannot resolve {host}: {exc}") from exc
        raise httpcore.ConnectError(f"cannot resolve {host}: {exc}") from exc
    addresses = list(dict.fromkeys(info[4][0] for info in infos))
    if guarded:
        for address in addresses:
            if not _is_public(address):
                raise FetchError("private_address", f"{host} resolves to non-public address {address}")
    return addresses


def check_url(url: str, policy: FetchPolicy) -> None:
    """Refuse schemes other than http(s) and, unless allowed, hosts resolving to private ranges.

    For clients that connect by name afterwards; the feed fetcher checks the addresses it
    connects to instead (`GuardedBackend`)."""
    parts = check_target(url, policy)
    resolve_checked(parts.hostname, parts.port or (443 if parts.scheme.lower() == "https" else 80), policy)


# The monotonic time by which the fetch running in this thread must end (`Fetcher.fetch` sets
# it; the fetcher's requests are blocking calls, each in one thread).
_deadline = threading.local()


@contextlib.contextmanager
def deadline(seconds: float) -> Iterator[None]:
    """Every network operation of this thread inside the block ends within `seconds` in total
    (`deadline_exceeded` past it), whatever each read's own timeout (a server that sends a byte
    every few seconds never trips a read timeout)."""
    _deadline.at, _deadline.seconds = time.monotonic() + seconds, seconds
    try:
        yield
    finally:
        _deadline.at = None


def _bounded(timeout: float | None) -> float | None:
    """`timeout` shortened to the time left before this thread's deadline; past it, the fetch
    ends with `deadline_exceeded`."""
    at = getattr(_deadline, "at", None)
    if at is None:
        return timeout
    remaining = at - time.monotonic()
    if remaining <= 0:
        raise FetchError("deadline_exceeded", f"no complete answer within {_deadline.seconds:g}s")
    return remaining if timeout is None else min(timeout, remaining)


class _GuardedStream(httpcore.NetworkStream):
    def __init__(self, inner: httpcore.NetworkStream):
        self._inner = inner

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._inner.read(max_bytes, _bounded(timeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._inner.write(buffer, _bounded(timeout))

    def close(self) -> None:
        self._inner.close()

    def start_tls(self, ssl_context, server_hostname: str | None = None, timeout: float | None = None
                  ) -> httpcore.NetworkStream:
        return _GuardedStream(self._inner.start_tls(ssl_context, server_hostname, _bounded(timeout)))

    def get_extra_info(self, info: str):
        return self._inner.get_extra_info(info)


class GuardedBackend(httpcore.NetworkBackend):
    """httpcore's blocking backend, connecting only to addresses `resolve_checked` allowed and
    keeping every network operation within the fetch's deadline (see the module docstring)."""

    def __init__(self, policy: FetchPolicy, resolve: Callable[..., list] = socket.getaddrinfo):
        self.policy = policy
        self.resolve = resolve
        self._inner = httpcore.SyncBackend()

    def connect_tcp(self, host: str, port: int, timeout: float | None = None, local_address: str | None = None,
                    socket_options=None) -> httpcore.NetworkStream:
        failure: Exception | None = None
        for address in resolve_checked(host, port, self.policy, self.resolve):
            try:
                return _GuardedStream(self._inner.connect_tcp(address, port, _bounded(timeout), local_address,
                                                              socket_options))
            except httpcore.ConnectError as exc:
                failure = exc
        raise failure or httpcore.ConnectError(f"{host} resolves to no address")

    def connect_unix_socket(self, path: str, timeout: float | None = None, socket_options=None):
        raise httpcore.ConnectError("unix sockets are not used for feeds")

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


class GuardedTransport(httpx.HTTPTransport):
    """httpx's transport over a `GuardedBackend` (no proxy: connections go to checked addresses)."""

    def __init__(self, policy: FetchPolicy, limits: httpx.Limits, resolve: Callable[..., list] = socket.getaddrinfo):
        # HTTPTransport's own __init__ only builds `_pool`, from options this pool does not need.
        self._pool = httpcore.ConnectionPool(
            ssl_context=httpx.create_ssl_context(),
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=GuardedBackend(policy, resolve),
        )


def _read_capped(response: httpx.Response, max_bytes: int) -> bytes:
    declared = response.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > max_bytes:
        raise FetchError("response_too_large", f"Content-Length {declared} exceeds cap {max_bytes}", response.status_code)
    chunks: list[bytes] = []
    size = 0
    for chunk in response.iter_raw():
        size += len(chunk)
        if size > max_bytes:
            raise FetchError("response_too_large", f"body exceeds cap {max_bytes} bytes", response.status_code)
        chunks.append(chunk)
    raw = b"".join(chunks)
    encoding = response.headers.get("content-encoding", "").strip().lower()
    if encoding in ("gzip", "x-gzip", "deflate"):
        return _inflate(raw, max_bytes, response.status_code)
    return raw


def _drain(response: httpx.Response, limit: int = 65536) -> None:
    """Read a short non-200 body (304, redirect, error page) so the connection is kept alive;
    a long or unsized one is left unread and the connection is closed instead."""
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) <= limit:
        response.read()


def _inflate(raw: bytes, max_bytes: int, status_code: int | None = None) -> bytes:
    """Decompress gzip/zlib/raw deflate without ever holding more than `max_bytes` of output."""
    for wbits in (47, -zlib.MAX_WBITS):  # 47: gzip or zlib header, auto-detected; then raw deflate
        decoder = zlib.decompressobj(wbits)
        try:
            out = decoder.decompress(raw, max_bytes + 1)
        except zlib.error:
            continue
        if len(out) > max_bytes or decoder.unconsumed_tail:
            raise FetchError("response_too_large", f"decompressed body exceeds cap {max_bytes} bytes", status_code)
        return out + decoder.flush()
    raise FetchError("bad_content_encoding", "body is not valid gzip/deflate data", status_code)


class _NoCookies(httpx.Cookies):
    """A jar that keeps nothing: a feed host's cookie never rides along with a later poll (of
    this or another tenant's feed), and reading Set-Cookie through http.cookiejar on every
    response costs more CPU than the rest of a 304."""

    def extract_cookies(self, response: httpx.Response) -> None:
        pass

    def set_cookie_header(self, request: httpx.Request) -> None:
        pass


class FeedClient(httpx.Client):
    """httpx.Client without cookie persistence (see `_NoCookies`)."""

    _no_cookies = _NoCookies()

    @property
    def cookies(self) -> httpx.Cookies:  # type: ignore[override]
        return self._no_cookies


class Fetcher:
    """Conditional GETs under one policy, sharing one httpx.Client (a thread-safe connection pool).

    Fetches are blocking calls meant to run in a thread pool (`fetch_all`): on small responses
    httpx's synchronous client costs a third of its asyncio client per request, and the pool
    gives the same bounded concurrency.
    """

    def __init__(self, policy: FetchPolicy, client: httpx.Client | None = None, pool_size: int = 64,
                 resolve: Callable[..., list] = socket.getaddrinfo):
        self.policy = policy
        self._own_client = client is None
        # A client from outside connects by name: its URLs are checked by a lookup of their own.
        self._check = check_url if client is not None else check_target
        limits = httpx.Limits(max_connections=pool_size, max_keepalive_connections=pool_size)
        self.client = client or FeedClient(
            timeout=httpx.Timeout(policy.timeout_seconds, connect=policy.connect_timeout_seconds),
            follow_redirects=False,
            headers={"User-Agent": USER_AGENT, "Accept-Encoding": "gzip, deflate"},
            transport=GuardedTransport(policy, limits, resolve),
            event_hooks={"response": [self._check_location]},
        )

    def _check_location(self, response: httpx.Response) -> None:
        """Refuse a redirect to an unusable URL with its reason, before httpx reads the Location
        itself (it builds the next request even when not following, and fails on such URLs)."""
        location = response.headers.get("location")
        if response.status_code not in REDIRECT_STATUS or not location:
            return
        try:
            target = urljoin(str(response.request.url), location)
        except ValueError as exc:
            raise FetchError("invalid_url", f"redirect to {location[:200]!r}: {exc}", response.status_code) from exc
        check_target(target, self.policy)

    def close(self) -> None:
        if self._own_client:
            self.client.close()

    def __enter__(self) -> Fetcher:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _once(self, url: str, headers: dict[str, str]) -> FetchResult:
        current = url
        for _ in range(self.policy.max_redirects + 1):
            self._check(current, self.policy)
            try:
                with self.client.stream("GET", current, headers=headers) as response:
                    status = response.status_code
                    if status != 200:
                        _drain(response)
                    if status in REDIRECT_STATUS:
                        location = response.headers.get("location")
                        if not location:
                            raise FetchError("bad_redirect", f"{status} without Location", status)
                        try:
                            current = urljoin(current, location)
                        except ValueError as exc:
                            raise FetchError("invalid_url", f"redirect to {location[:200]!r}: {exc}", status) from exc
                        continue
                    if status in RETRYABLE_STATUS:
                        raise _Retryable(
                            f"http_{status}", f"server answered {status}", status,
                            parse_retry_after(response.headers.get("retry-after")),
                        )
                    result = FetchResult(
                        url=url, final_url=current, status_code=status,
                        headers=dict(response.headers),
                        etag=response.headers.get("etag"),
                        last_modified=response.headers.get("last-modified"),
                    )
                    if status == 304:
                        return result
                    if status >= 400:
                        raise FetchError(f"http_{status}", f"server answered {status}", status)
                    result.body = _read_capped(response, self.policy.max_bytes)
                    return result
            except httpx.TimeoutException as exc:
                _bounded(None)  # past the deadline: deadline_exceeded, not a timeout to retry
                raise _Retryable("timeout", f"{type(exc).__name__} after {self.policy.timeout_seconds}s") from exc
            except httpx.InvalidURL as exc:
                raise FetchError("invalid_url", f"{current[:200]!r} is not a valid URL: {exc}") from exc
            except httpx.TransportError as exc:
                raise _Retryable("connection_error", f"{type(exc).__name__}: {exc}") from exc
        raise FetchError("too_many_redirects", f"more than {self.policy.max_redirects} redirects")

    def _backoff(self, exc: Exception) -> bool | float:
        if not isinstance(exc, _Retryable):
            return False
        if exc.retry_after is not None:
            wait = min(exc.retry_after, self.policy.max_retry_after_seconds)
            return wait if wait < _deadline.at - time.monotonic() else False
        return True

    def _retry(self, url: str, headers: dict[str, str], first: _Retryable) -> tuple[FetchResult, int]:
        """The attempts after a retryable failure, under stamina: its backoff, the server's
        Retry-After, the attempt limit and the time budget all apply as if stamina had made the
        first attempt (it is made outside: entering stamina costs more than a 304 on loopback)."""
        attempts = 1
        pending: _Retryable | None = first
        try:
            for attempt in stamina.retry_context(
                on=self._backoff,
                attempts=self.policy.max_attempts,
                timeout=min(self.policy.retry_budget_seconds, max(0.0, _deadline.at - time.monotonic())),
                wait_initial=self.policy.wait_initial_seconds,
                wait_max=self.policy.wait_max_seconds,
                wait_jitter=self.policy.wait_initial_seconds,
            ):
                with attempt:
                    if pending is not None:
                        failed, pending = pending, None
                        raise failed
                    _bounded(None)
                    attempts += 1
                    return self._once(url, headers), attempts
        except (FetchError, _Retryable) as exc:
            exc.attempts = attempts
            raise
        raise AssertionError("stamina ended without an outcome")  # unreachable: the last failure propagates

    def fetch(self, url: str, etag: str | None = None, last_modified: str | None = None) -> FetchResult:
        """Fetch `url`; never raises for HTTP-level problems: they come back as `error_code`."""
        headers: dict[str, str] = {}
        if etag:
            headers["If-None-Match"] = etag
        if last_modified:
            headers["If-Modified-Since"] = last_modified
        started = time.perf_counter()
        attempts = 1
        result: FetchResult
        with deadline(self.policy.deadline_seconds):
            try:
                try:
                    result = self._once(url, headers)
                except _Retryable as first:
                    result, attempts = self._retry(url, headers, first)
            except (FetchError, _Retryable) as exc:
                attempts = exc.attempts or attempts
                result = FetchResult(
                    url=url, final_url=url, status_code=exc.status_code,
                    error_code=exc.code, error=exc.detail,
                )
        result.attempts = attempts
        result.duration_ms = (time.perf_counter() - started) * 1000
        return result


class HttpResource(dg.ConfigurableResource):
    """The shared transport policy for HTTP sources."""

    timeout_seconds: float = 10.0
    max_attempts: int = 3
    max_bytes: int = 10 * 1024 * 1024
    max_redirects: int = 5
    deadline_seconds: float = 60.0  # PODCAST_HTTP_DEADLINE_SECONDS in the deployed definitions
    concurrency: int = 32
    allow_private_hosts: bool = False

    def policy(self, **overrides) -> FetchPolicy:
        base = dict(
            timeout_seconds=self.timeout_seconds,
            max_attempts=self.max_attempts,
            max_bytes=self.max_bytes,
            max_redirects=self.max_redirects,
            deadline_seconds=self.deadline_seconds,
            allow_private_hosts=self.allow_private_hosts,
        )
        base.update({k: v for k, v in overrides.items() if v is not None})
        return FetchPolicy(**base)
