"""Keyed identities of people: a listener's or a shopper's address, e-mail, phone or customer id
is never stored in clear, only as a keyed hash with the tenant's salt (the same salt as client
addresses, `IpHasher.for_tenant`). The same person gives the same key within a tenant, so the
prior-customer rule, household matching and data-subject requests still find them; another
tenant, or anyone without the secret, cannot link or reverse it.

Values are normalised before hashing so that one person has one key: e-mail trimmed and
lower-cased; phone reduced to its digits (a leading `+` dropped, `00` international prefix
removed); customer ids trimmed.
"""

from __future__ import annotations

import re

from assets.ingestion.listener_logs_parse import IpHasher

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
