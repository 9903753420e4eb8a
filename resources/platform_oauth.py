"""Bearer tokens that expire, as httpx auth flows an `ApiClient` can use (`ApiClient(..., auth=)`).

A `RenewableTokenAuth` sends `Authorization: Bearer <token>` and renews the token:
- proactively, when the lifetime the token came with (`expires_in`) is about to run out;
- reactively, when the server answers that the token expired (401, or Podbean's 400, with an
  `invalid_token` error whose description says "expired", or an `expired_token`/`token_expired`
  error, in the body or in `WWW-Authenticate`). The same request is then sent once more with a
  new token. A renewal is not a failure: it uses none of the request's retry attempts.

Where tokens come from:
- `OAuthClientCredentials`: the OAuth 2.0 client-credentials grant (RFC 6749 §4.4), client id
  and secret sent with HTTP Basic or as form fields;
- `EnvironmentToken`: a long-lived bearer token held in an environment variable; renewing it
  reads the variable again, so a rotated token is picked up without a restart.

Tokens, client ids and secrets are held in `Secret`s and travel only in headers or form bodies;
error texts are scrubbed of them. The flows are for the synchronous `httpx.Client` only.
"""

from __future__ import annotations

import json
import math
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import httpx

from resources.http import (
    RETRYABLE_STATUS, FetchError, GuardedTransport, _read_capped, _Retryable, check_target, deadline, parse_retry_after,
)
from resources.platform_http import USER_AGENT, ApiError, ApiPolicy, Secret, credential_from_env

MAX_AUTH_BODY_BYTES = 65536
EXPIRED_ERRORS = frozenset({"expired_token", "token_expired"})


@dataclass(frozen=True)
class Token:
    value: Secret
    expires_at: float | None = None  # time.monotonic() after which it must not be sent; None: unknown

    def usable(self, now: float) -> bool:
        return self.expires_at is None or now < self.expires_at


def _expiry_words(error: Any, description: Any) -> bool:
    error, description = str(error or "").lower(), str(description or "").lower()
    return error in EXPIRED_ERRORS or (error == "invalid_token" and "expired" in description)


def token_expired(response: httpx.Response, max_bytes: int = MAX_AUTH_BODY_BYTES) -> bool:
    """Whether an answer says the bearer token expired (rather than being wrong or missing).

    Only a 400/401 whose declared length is within `max_bytes` can say so (its body is read
    here; a renewal makes httpx read the refused answer, so one of undeclared or large size is
    never renewed on)."""
    if response.status_code not in (400, 401):
        return False
    declared = response.headers.get("content-length", "")
    if not declared.isdigit() or int(declared) > max_bytes:
        return False
    body = response.read()
    challenge = response.headers.get("www-authenticate", "").lower()
    if "expired_token" in challenge or "token_expired" in challenge or (
            "invalid_token" in challenge and "expired" in challenge):
        return True
    try:
        document = json.loads(body or b"null")
    except ValueError:
        return False
    if not isinstance(document, dict):
        return False
    errors = document.get("errors")
    if isinstance(errors, list):  # {"errors": [{"code"/"title": ..., "detail": ...}]}
        return any(isinstance(e, dict) and _expiry_words(e.get("code") or e.get("title"), e.get("detail"))
                   for e in errors)
    return _expiry_words(document.get("error"), document.get("error_description") or document.get("message"))


class RenewableTokenAuth(httpx.Auth):
    """Bearer auth with renewal; subclasses say how a token is obtained (`_obtain`). Thread-safe:
    the threads sharing a client share its token, and one renewal serves them all."""

    def __init__(self, max_renewals: int = 3, expiry_margin_seconds: float = 60.0):
        self.max_renewals = max_renewals
        self.expiry_margin_seconds = expiry_margin_seconds
        self.renewals = 0  # tokens discarded because the server said they expired
        self._token: Token | None = None
        self._lock = threading.Lock()

    def _obtain(self) -> Token:
        raise NotImplementedError

    def token(self) -> Token:
        """The current token, obtained first when there is none or it is about to expire."""
        with self._lock:
            if self._token is None or not self._token.usable(time.monotonic()):
                self._token = self._obtain()
            return self._token

    def _discard(self, token: Token) -> None:
        with self._lock:
            self.renewals += 1
            if self._token is token:  # another thread may have renewed it already
                self._token = None

    def sync_auth_flow(self, request: httpx.Request):
        token = self.token()
        request.headers["Authorization"] = f"Bearer {token.value.reveal()}"
        response = yield request
        for _ in range(self.max_renewals):
            if not token_expired(response):
                return
            self._discard(token)
            token = self.token()
            request.headers["Authorization"] = f"Bearer {token.value.reveal()}"
            response = yield request

    async def async_auth_flow(self, request: httpx.Request):  # pragma: no cover
        raise NotImplementedError("token renewal is implemented for the synchronous httpx.Client only")
        yield request

    def close(self) -> None:
        return None

    def __repr__(self) -> str:
        return f"{type(self).__name__}(token={'***' if self._token else None})"


class EnvironmentToken(RenewableTokenAuth):
    """A bearer token read from environment variable `variable` (of `environ`, default the
    process environment), read again whenever the server says it expired."""

    def __init__(self, variable: str, environ: Mapping[str, str] | None = None, max_renewals: int = 3):
        super().__init__(max_renewals=max_renewals)
        self.variable = variable
        self._environ = environ
        self.token()  # a missing variable is a configuration error: say so now

    def _obtain(self) -> Token:
        return Token(credential_from_env(self.variable, self._environ))


class OAuthClientCredentials(RenewableTokenAuth):
    """Tokens from an OAuth 2.0 token endpoint (client-credentials grant).

    The client authenticates with HTTP Basic (`client_auth="basic"`, RFC 6749 §2.3.1) or with
    `client_id`/`client_secret` form fields (`"form"`). A token is renewed `expiry_margin_seconds`
    (at most a tenth of its lifetime) before `expires_in` runs out, counted from when it was
    requested. Token requests use the API's policy (timeouts, URL guard, size cap); a failed one
    raises what `ApiClient` retries (timeouts, 429, 5xx, a body that is not JSON) or an
    `ApiError` (refused credentials, a token missing from the answer)."""

    def __init__(
        self, token_url: str, client_id: Secret, client_secret: Secret, policy: ApiPolicy,
        client_auth: Literal["basic", "form"] = "basic", extra_fields: Mapping[str, str] | None = None,
        expiry_margin_seconds: float = 60.0, max_renewals: int = 3,
    ):
        super().__init__(max_renewals=max_renewals, expiry_margin_seconds=expiry_margin_seconds)
        self.token_url = token_url
        self.policy = policy
        self.client_auth = client_auth
        self.extra_fields = dict(extra_fields or {})
        self.token_requests = 0
        self._client_id, self._client_secret = client_id, client_secret
        self._http = httpx.Client(
            timeout=httpx.Timeout(policy.timeout_seconds, connect=policy.connect_timeout_seconds),
            follow_redirects=False, headers={"User-Agent": USER_AGENT, "Accept": "application/json"},
            transport=GuardedTransport(policy.fetch_policy(), httpx.Limits(max_connections=2)),
        )

    def close(self) -> None:
        self._http.close()

    def _scrub(self, text: str) -> str:
        for secret in (self._client_id, self._client_secret):
            if secret.reveal():
                text = text.replace(secret.reveal(), "***")
        return text

    def _obtain(self) -> Token:
        check_target(self.token_url, self.policy.fetch_policy())
        fields = {"grant_type": "client_credentials", **self.extra_fields}
        auth: httpx.Auth | None = None
        if self.client_auth == "basic":
            auth = httpx.BasicAuth(self._client_id.reveal(), self._client_secret.reveal())
        else:
            fields.update(client_id=self._client_id.reveal(), client_secret=self._client_secret.reveal())
        self.token_requests += 1
        requested = time.monotonic()
        try:
            with deadline(self.policy.deadline_seconds), self._http.stream("POST", self.token_url, data=fields,
                                                                            auth=auth) as response:
                status = response.status_code
                if status in RETRYABLE_STATUS:
                    raise _Retryable(f"token_http_{status}", f"token endpoint answered {status}", status,
                                     parse_retry_after(response.headers.get("retry-after")))
                body = _read_capped(response, MAX_AUTH_BODY_BYTES)
        except FetchError as exc:
            raise ApiError(f"token_{exc.code}", self._scrub(exc.detail), exc.status_code) from None
        except httpx.TimeoutException as exc:
            raise _Retryable("token_timeout", f"{type(exc).__name__} after {self.policy.timeout_seconds}s") from None
        except httpx.TransportError as exc:
            raise _Retryable("token_connection_error", type(exc).__name__) from None
        if status != 200:
            excerpt = self._scrub(body[:300].decode("utf-8", "replace").strip())
            raise ApiError("token_refused", f"token endpoint answered {status}: {excerpt}", status)
        try:
            document = json.loads(body)
        except ValueError:
            raise _Retryable("token_invalid_json", f"{len(body)} bytes that are not JSON", status) from None
        value = document.get("access_token") if isinstance(document, dict) else None
        if not isinstance(value, str) or not value:
            raise ApiError("token_missing", "the token endpoint's answer has no access_token", status)
        expires_at = None
        try:  # a number of seconds (some servers send it as a string)
            lifetime = float(document.get("expires_in"))
        except (TypeError, ValueError):
            lifetime = -1.0
        if lifetime >= 0 and math.isfinite(lifetime):
            expires_at = requested + lifetime - min(self.expiry_margin_seconds, lifetime / 10)
        return Token(Secret(value), expires_at)
