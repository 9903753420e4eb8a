"""The transport policy shared by the hosting/platform API clients.

Built on the feed fetcher's pieces (`resources.http`): the URL guard, the size-capped body
reader and the `Retry-After` parser. On top of them an `ApiClient` adds what JSON APIs need:
credentials sent as headers (read from the environment variable a source names, held in a
`Secret` whose repr hides it), a JSON body that must parse (a truncated body is retried like a
5xx), a client-side rate limit, and a semaphore bounding concurrent requests per client.

Retries go through `stamina` (backoff with jitter); a server's `Retry-After` decides the wait
when it sends one. Error details never contain request headers, so a credential cannot leak
into logs, exceptions or Dagster metadata.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
import time
from collections import deque
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx
import stamina

from resources.http import (
    RETRYABLE_STATUS, FetchError, FetchPolicy, GuardedTransport, _bounded, _read_capped, _Retryable, check_target, deadline,
    parse_retry_after,
)

USER_AGENT = "podcast-analytics/0.1 (+platform sync)"


class Secret:
    """A credential. `str()` and `repr()` never show it; `reveal()` does, for the header only."""

    __slots__ = ("_value",)

    def __init__(self, value: str):
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__


class MissingCredential(Exception):
    pass


def credential_from_env(variable: str, environ: Mapping[str, str] | None = None) -> Secret:
    """The credential held by environment variable `variable` (named in sources.yaml)."""
    value = (environ if environ is not None else os.environ).get(variable)
    if not value:
        raise MissingCredential(f"environment variable {variable} is not set")
    return Secret(value)


class ApiError(FetchError):
    """A platform request that failed for good. `code` is a stable reason code."""


@dataclass(frozen=True)
class ApiPolicy:
    timeout_seconds: float = 30.0
    connect_timeout_seconds: float = 5.0
    max_attempts: int = 8
    retry_budget_seconds: float = 300.0
    wait_initial_seconds: float = 0.5
    wait_max_seconds: float = 30.0
    max_retry_after_seconds: float = 120.0
    max_bytes: int = 32 * 1024 * 1024
    concurrency: int = 4
    rate_limit_requests: int | None = None  # at most this many requests ...
    rate_limit_seconds: float = 1.0          # ... per this many seconds (client-side pacing)
    allow_private_hosts: bool = False
    # One request (one attempt) ends within this, however slowly the server trickles its answer.
    deadline_seconds: float = 120.0

    def fetch_policy(self) -> FetchPolicy:
        return FetchPolicy(max_bytes=self.max_bytes, allow_private_hosts=self.allow_private_hosts,
                           deadline_seconds=self.deadline_seconds)


@dataclass
class ApiResponse:
    status_code: int
    data: Any
    headers: dict[str, str] = field(default_factory=dict)
    attempts: int = 1

    @property
    def not_modified(self) -> bool:
        return self.status_code == 304

    @property
    def etag(self) -> str | None:
        return self.headers.get("etag")


@dataclass
class ApiStats:
    """Counts and time of a client. `network_seconds` is the time spent inside HTTP exchanges
    (from sending a request to the last byte of its body, a concurrency slot held), summed over
    requests; `wait_seconds` the client-side pacing; `backoff_seconds` the waits between
    attempts of a retried request."""

    requests: int = 0
    retries: int = 0
    retry_reasons: dict[str, int] = field(default_factory=dict)
    wait_seconds: float = 0.0
    network_seconds: float = 0.0
    backoff_seconds: float = 0.0


class _RateLimiter:
    """A sliding window: at most `requests` starts within any `seconds`, plus a margin, since the
    server counts arrivals and a request can arrive later than it started here."""

    def __init__(self, requests: int, seconds: float, margin: float = 0.05):
        self.requests, self.seconds = requests, seconds * (1 + margin) + 0.02
        self._starts: deque[float] = deque()
        self._lock = threading.Lock()

    def acquire(self) -> float:
        waited = 0.0
        while True:
            with self._lock:
                now = time.monotonic()
                while self._starts and now - self._starts[0] >= self.seconds:
                    self._starts.popleft()
                if len(self._starts) < self.requests:
                    self._starts.append(now)
                    return waited
                pause = self.seconds - (now - self._starts[0])
            time.sleep(pause)
            waited += pause


def _error_excerpt(response: httpx.Response, limit: int = 300) -> str:
    """The start of an error body (bounded read), to say why a request was refused."""
    if response.status_code < 400:
        return ""
    try:
        # An auth flow may have read the body already (to see whether a token expired).
        body = response.content if response.is_stream_consumed else _read_capped(response, 65536)
    except FetchError:
        return ""
    text = body[:limit].decode("utf-8", "replace").strip()
    return f": {text}" if text else ""


class ApiClient:
    """JSON GETs against one API base URL under an `ApiPolicy`. Thread-safe.

    Credentials go in `auth_headers` (static) or `auth`, an httpx auth flow for credentials that
    change, such as expiring tokens (`resources.platform_oauth`)."""

    def __init__(self, base_url: str, policy: ApiPolicy, auth_headers: Mapping[str, Secret | str] | None = None,
                 auth: httpx.Auth | None = None):
        self.base_url = base_url.rstrip("/")
        self.policy = policy
        self._auth = dict(auth_headers or {})
        self.auth = auth
        self._slots = threading.BoundedSemaphore(policy.concurrency)
        self._limiter = (
            _RateLimiter(policy.rate_limit_requests, policy.rate_limit_seconds) if policy.rate_limit_requests else None
        )
        self.stats = ApiStats()
        self._stats_lock = threading.Lock()
        self.client = httpx.Client(
            timeout=httpx.Timeout(policy.timeout_seconds, connect=policy.connect_timeout_seconds),
            follow_redirects=False,
            headers={"User-Agent": USER_AGENT, "Accept": "application/json", "Accept-Encoding": "gzip, deflate"},
            # Connections go only to the addresses checked (one lookup per connection, no rebinding).
            transport=GuardedTransport(policy.fetch_policy(), httpx.Limits(
                max_connections=policy.concurrency, max_keepalive_connections=policy.concurrency)),
            auth=auth,
        )

    def close(self) -> None:
        self.client.close()
        if self.auth is not None and hasattr(self.auth, "close"):
            self.auth.close()

    def __enter__(self) -> ApiClient:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def _headers(self, extra: Mapping[str, str] | None) -> dict[str, str]:
        headers = {k: v.reveal() if isinstance(v, Secret) else v for k, v in self._auth.items()}
        headers.update(extra or {})
        return headers

    def _once(self, url: str, params: Mapping[str, Any] | None, headers: dict[str, str]) -> ApiResponse:
        check_target(url, self.policy.fetch_policy())
        if self._limiter is not None:
            waited = self._limiter.acquire()
            with self._stats_lock:
                self.stats.wait_seconds += waited
        with self._stats_lock:
            self.stats.requests += 1
        with self._slots, deadline(self.policy.deadline_seconds):
            body, status, response_headers = self._read(url, params, headers)
        if status == 304 or body is None:
            return ApiResponse(status, None, response_headers)
        try:
            data = json.loads(body)
        except ValueError as exc:  # a body cut short in transit, or an error page
            raise _Retryable("invalid_json", f"{len(body)} bytes that are not JSON ({exc.msg})", status) from exc
        return ApiResponse(status, data, response_headers)

    def _read(self, url: str, params: Mapping[str, Any] | None, headers: dict[str, str]
              ) -> tuple[bytes | None, int, dict[str, str]]:
        """One exchange within the request's deadline: the body (None for a 304), status, headers."""
        try:
            with self._exchange(url, params, headers) as response:
                status = response.status_code
                if status in RETRYABLE_STATUS:
                    raise _Retryable(f"http_{status}", f"server answered {status}", status,
                                     parse_retry_after(response.headers.get("retry-after")))
                if status == 304:
                    return None, status, dict(response.headers)
                if status >= 300:
                    raise ApiError(f"http_{status}", f"server answered {status}{_error_excerpt(response)}", status)
                return _read_capped(response, self.policy.max_bytes), status, dict(response.headers)
        except FetchError as exc:
            raise ApiError(exc.code, exc.detail, exc.status_code) from exc
        except httpx.TimeoutException as exc:
            try:
                _bounded(None)  # past the deadline: deadline_exceeded, not a timeout to retry
            except FetchError as late:
                raise ApiError(late.code, late.detail) from exc
            raise _Retryable("timeout", f"{type(exc).__name__} after {self.policy.timeout_seconds}s") from exc
        except httpx.TransportError as exc:
            raise _Retryable("connection_error", type(exc).__name__) from exc

    @contextlib.contextmanager
    def _exchange(self, url: str, params: Mapping[str, Any] | None, headers: dict[str, str]) -> Iterator[httpx.Response]:
        """`client.stream` GET, timed into `stats.network_seconds` (what the caller does with the
        response inside the block, reading the body included, counts as network time too)."""
        started = time.perf_counter()
        try:
            with self.client.stream("GET", url, params=params, headers=headers) as response:
                yield response
        finally:
            elapsed = time.perf_counter() - started
            with self._stats_lock:
                self.stats.network_seconds += elapsed

    def _backoff(self, exc: Exception) -> bool | float:
        if not isinstance(exc, _Retryable):
            return False
        with self._stats_lock:
            self.stats.retries += 1
            self.stats.retry_reasons[exc.code] = self.stats.retry_reasons.get(exc.code, 0) + 1
        if exc.retry_after is not None:
            return min(exc.retry_after, self.policy.max_retry_after_seconds)
        return True

    def get(self, path: str, params: Mapping[str, Any] | None = None, headers: Mapping[str, str] | None = None) -> ApiResponse:
        """GET `path` (relative to the base URL, or absolute) and parse its JSON body.

        Retries 408/425/429/5xx, timeouts, connection errors and unparseable bodies; raises
        `ApiError` when a request fails for good."""
        url = path if path.startswith(("http://", "https://")) else self.base_url + path
        sent = self._headers(headers)
        attempts = 0
        failed_at: float | None = None
        try:
            for attempt in stamina.retry_context(
                on=self._backoff,
                attempts=self.policy.max_attempts,
                timeout=self.policy.retry_budget_seconds,
                wait_initial=self.policy.wait_initial_seconds,
                wait_max=self.policy.wait_max_seconds,
                wait_jitter=self.policy.wait_initial_seconds,
            ):
                with attempt:
                    if failed_at is not None:
                        with self._stats_lock:
                            self.stats.backoff_seconds += time.perf_counter() - failed_at
                    attempts += 1
                    try:
                        response = self._once(url, params, sent)
                    except _Retryable:
                        failed_at = time.perf_counter()
                        raise
        except _Retryable as exc:
            raise ApiError(exc.code, f"gave up after {attempts} attempts: {exc}", exc.status_code) from None
        response.attempts = attempts
        return response
