"""Webhook URLs carry credentials: `https://user:pass@host/…`, tokens in the path (Slack's
`/services/T…/B…/…`), query values (`?token=`, `?sig=`, `?key=`). The real URL lives in
configuration and the environment only; whatever is stored (reports.deliveries, ops tables),
logged (Dagster events, compute logs) or posted in an alert carries `redact_url`'s form:

    https://user:pass@hooks.example:8443/services/T0001/B0002/XyZ?token=abc#x
    -> https://hooks.example:8443/services/***/***/***?token=***

userinfo and fragment dropped, every query value replaced by `***` (names kept), and every path
segment replaced by `***` unless it is a plain lowercase word of up to 20 letters, `-` or `_`
(`hooks`, `services`, `report-webhook`) or an API version (`v1`). Keeping too little is safe;
keeping a secret is not."""

from __future__ import annotations

import re
from urllib.parse import SplitResult, parse_qsl, urlsplit

MASK = "***"
_PLAIN_SEGMENT = re.compile(r"[a-z][a-z_-]{0,19}|v[0-9]{1,2}")
_URL_IN_TEXT = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"<>]+")


def redact_url(url: str) -> str:
    """The URL as it may be stored and shown (see the module's docstring); a text that does not
    parse as a URL with a host is replaced by `***` as a whole."""
    try:
        parts = urlsplit(url.strip())
        host = parts.hostname
        port = parts.port
    except ValueError:
        return MASK
    if not parts.scheme or not host:
        return MASK
    netloc = f"[{host}]" if ":" in host else host
    if port is not None:
        netloc += f":{port}"
    path = "/".join(segment if not segment or _PLAIN_SEGMENT.fullmatch(segment) else MASK
                    for segment in parts.path.split("/"))
    query = "&".join(f"{name}={MASK}" for name, _ in parse_qsl(parts.query, keep_blank_values=True))
    return SplitResult(parts.scheme.lower(), netloc, path, query, "").geturl()


def redact_text(text: str, *urls: str) -> str:
    """`text` (an error message, an alert line) with every URL in it redacted, and with each of
    `urls` (the real ones used) and their secret-looking pieces (userinfo, query values, path
    segments of 6 characters or more) removed even where the text quotes them apart."""
    for url in urls:
        if not url:
            continue
        text = text.replace(url, redact_url(url))
        try:
            parts = urlsplit(url)
        except ValueError:
            continue
        pieces = [parts.password, parts.username, *(value for _, value in parse_qsl(parts.query))]
        pieces += [segment for segment in parts.path.split("/") if segment and not _PLAIN_SEGMENT.fullmatch(segment)]
        for secret in pieces:
            if secret and len(secret) >= 6:
                text = text.replace(secret, MASK)
    return _URL_IN_TEXT.sub(lambda match: redact_url(match.group(0)), text)
