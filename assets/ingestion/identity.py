"""Keyed identities of people: a listener's or a shopper's address, e-mail, phone or customer id
is never stored in clear, only as a keyed hash with the tenant's salt (the same salt as client
addresses, `IpHasher.for_tenant`). The same person gives the same key within a tenant, so the
prior-customer rule, household matching and data-subject requests still find them; another
tenant, or anyone without the secret, cannot link or reverse it.

Values are normalised before hashing so that one person has one key: e-mail trimmed and
lower-cased; phone reduced to its digits (a leading `+` dropped, `00` international prefix
removed); customer ids trimmed.

Every key depends on the hash secret: the warehouse keeps a keyed check value of the secret it
was filled with (`ops.hash_key_check`), and a run with another secret is refused instead of
hashing the same people to new keys (`checked_hash_secret`).
"""

from __future__ import annotations

import hashlib
import hmac
import re
from typing import Any

from assets.ingestion.listener_logs_parse import IpHasher
from resources.settings import HashSecretError, Settings, get_settings
from resources.warehouse import WarehouseResource

IDENTITY_KINDS = ("email", "phone", "customer")
_NOT_DIGIT = re.compile(r"\D")


def normalise(kind: str, value: str) -> str | None:
    """The canonical form of one identity value; None when nothing is left of it."""
    if kind not in IDENTITY_KINDS:
        raise ValueError(f"unknown identity kind {kind!r}: one of {', '.join(IDENTITY_KINDS)}")
    text = str(value).strip()
    if kind == "email":
        text = text.lower()
    elif kind == "phone":
        text = _NOT_DIGIT.sub("", text)
        if text.startswith("00"):
            text = text[2:]
    return text or None


def identity_key(hasher: IpHasher, kind: str, value: str | None) -> str | None:
    """The keyed hash stored for `value` of `kind` (`customer:<id>` keeps the form customer keys
    have always had); None for a missing or empty value."""
    if value is None:
        return None
    text = normalise(kind, value)
    return hasher.digest(f"{kind}:{text}") if text is not None else None


def value_key(hasher: IpHasher, kind: str, value: Any) -> str | None:
    """`identity_key` of a value as a record carries it: text or a number; anything else (an
    object, a list) gives no key."""
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        return None
    return identity_key(hasher, kind, str(value))


_CHECK_LABEL = b"podcast-analytics hash secret check"


def key_check_value(secret: bytes) -> str:
    """A keyed check value of the secret: tells two secrets apart, reveals nothing of either."""
    return hmac.new(secret, _CHECK_LABEL, hashlib.sha256).hexdigest()


def checked_hash_secret(warehouse: WarehouseResource, settings: Settings | None = None) -> bytes:
    """The hash secret (`Settings.resolved_ip_hash_secret`), once the warehouse agrees it is the
    one its hashes were made with: the first run records its check value, a later run with
    another secret is refused with `HashSecretError`."""
    secret = (settings or get_settings()).resolved_ip_hash_secret()
    value = key_check_value(secret)
    with warehouse.connect(autocommit=True) as conn:
        conn.execute("insert into ops.hash_key_check (check_value) values (%s) on conflict do nothing", (value,))
        stored = conn.execute("select check_value from ops.hash_key_check").fetchone()[0]
    if not hmac.compare_digest(stored, value):
        raise HashSecretError("the hash secret is not the one this warehouse's hashes were made with "
                              "(ops.hash_key_check): set PODCAST_IP_HASH_SECRET to that secret")
    return secret
