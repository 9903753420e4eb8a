"""Identifiers that become file names, folder names and partition keys: tenant, sponsor and
campaign ids (from insertion orders, the sponsorship API, platform syncs, configuration) and the
keys of dynamic partitions built from them.

An identifier is 1 to 128 characters: ASCII letters, digits, `.`, `_` and `-`, starting with a
letter or a digit (`^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$`). So it is never empty, `.` or `..`,
never holds a path separator, a colon (the partition key's separator), whitespace, a control
character or a quote, and is the same file name on every filesystem. An id that does not match
is refused at the door with `InvalidIdentifier`, never repaired: a repaired id would name
another campaign.

Every path built from identifiers goes through `safe_path`, which also checks that the result
stays under its root once resolved (a symlink inside the root pointing out of it is refused too).
"""

from __future__ import annotations

import re
from functools import partial
from pathlib import Path
from typing import Annotated

from pydantic import AfterValidator

IDENTIFIER_PATTERN = r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}"
_IDENTIFIER = re.compile(IDENTIFIER_PATTERN)


class InvalidIdentifier(ValueError):
    """An id or partition key that does not match `IDENTIFIER_PATTERN`, or a path that would
    leave its root."""


def is_valid_identifier(value) -> bool:
    return isinstance(value, str) and _IDENTIFIER.fullmatch(value) is not None


def validate_identifier(kind: str, value: str) -> str:
    """`value` when it is a valid identifier; otherwise raises `InvalidIdentifier` with a
    one-line message naming `kind` (tenant id, campaign id, ...) and the value's repr."""
    if is_valid_identifier(value):
        return value
    shown = repr(value)
    if len(shown) > 80:
        shown = shown[:77] + "..."
    raise InvalidIdentifier(f"invalid {kind} {shown}: an id is 1 to 128 letters, digits, '.', '_' or '-', "
                            "starting with a letter or digit")


def safe_path(root, *parts) -> Path:
    """`root / part / part ...`, refused (`InvalidIdentifier`) when a part is empty, absolute,
    `.`/`..` or holds a separator or NUL, or when the resolved path is not under the resolved
    root. Parts may be file names with a suffix (`<report id>.pdf`); ids in them are expected
    to have been validated with `validate_identifier` already."""
    base = Path(root)
    for part in parts:
        text = str(part)
        if (not text or text in (".", "..") or "/" in text or "\\" in text or "\x00" in text
                or Path(text).is_absolute()):
            raise InvalidIdentifier(f"path part {text!r} under {str(root)!r} is not a plain file or folder name")
    resolved_root = base.resolve()
    path = base.joinpath(*map(str, parts))
    if not path.resolve().is_relative_to(resolved_root):
        raise InvalidIdentifier(f"path {str(path)!r} leaves its root {str(root)!r}")
    return path


# Ids in configuration (sources.yaml): one that is not a plain identifier is a config error.
TenantId = Annotated[str, AfterValidator(partial(validate_identifier, "tenant id"))]
SponsorId = Annotated[str, AfterValidator(partial(validate_identifier, "sponsor id"))]
