"""Reading a paged list that may grow while it is read.

Offset and page-number paging assume the list holds still. When a host publishes during a sync
(a new episode, a late download) the record lands at the head of a newest-first list, every
later record moves down by one, and the next page repeats the last record of the page before
while the new record is never seen. Repeats are harmless here (rows are stored on their natural
key); the misses are what `read_pages` repairs:

- a pass reads the pages in order and remembers the key of the list's first record (`head`)
  and, when the API reports one, the list's total;
- when a later page reports another total (or, for APIs without totals, whenever the pass took
  more than one page) the list may have moved: a check re-reads from page 1 up to the old
  head, and everything in front of it is what the pass missed;
- a check that needed more than one page may itself have been overtaken, so it is repeated
  with the head it saw; when the old head is gone, or the totals do not add up (a record
  removed or inserted elsewhere than at the head), the whole list is read again.

The position (`ListCursor`) is plain JSON and goes into the stream's cursor with every page,
so an interrupted read resumes where it stopped, the check included.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, replace
from typing import Any

from resources.platform_http import ApiError

MAX_ROUNDS = 12  # checks and re-reads of one list before it is declared unstable


@dataclass(frozen=True)
class Page:
    records: list[Any]
    next_page: int | None          # None: this is the last page
    total: int | None = None       # the list's length as this page reports it (None: not reported)


@dataclass(frozen=True)
class ListCursor:
    """Where the reading of one list stands."""

    page: int = 1                  # the next page to read
    pages: int = 0                 # pages read in this pass
    head: str | None = None        # key of the first record when this pass (or check) began
    total: int | None = None       # the list's total when this pass began
    moved: bool = False            # a page of this pass reported another total
    check: str | None = None       # checking: the head to read up to (None: in a pass)
    check_pages: int = 0           # pages read in this check
    found: int = 0                 # records found in front of `check` so far
    rounds: int = 0                # checks and full re-reads done

    def as_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, saved: dict[str, Any] | None) -> ListCursor:
        return cls(**saved) if saved else cls()


def id_key(record: Any) -> str | None:
    """The usual key of a listed record: its `id`, as text (None when it has none)."""
    return str(record["id"]) if isinstance(record, dict) and record.get("id") else None


def _first_key(keys: list[str | None]) -> str | None:
    return next((k for k in keys if k is not None), None)


def read_pages(
    fetch: Callable[[int], Page], key: Callable[[Any], str | None], start: ListCursor | None = None,
    max_rounds: int = MAX_ROUNDS,
) -> Iterator[tuple[list[Any], ListCursor | None]]:
    """Yield (records to store, position after them) for each page read, the last position
    being None: the list has been read whole and nothing it gained meanwhile was missed.

    `fetch(n)` reads page n; `key(record)` is the record's stable id (None for a record that
    has none: it is stored or quarantined like the others but cannot mark the head)."""
    at = start or ListCursor()
    while True:
        if at.rounds > max_rounds:
            raise ApiError("list_unstable", f"the list kept changing through {max_rounds} re-reads")
        page = fetch(at.page)
        keys = [key(r) for r in page.records]
        if at.check is None:
            # A pass: every page in order.
            if at.pages == 0:
                at = replace(at, head=_first_key(keys), total=page.total)
            elif page.total is not None and page.total != at.total:
                at = replace(at, moved=True)
            at = replace(at, pages=at.pages + 1)
            if page.next_page is not None:
                at = replace(at, page=page.next_page)
                yield page.records, at
                continue
            may_have_moved = at.moved if at.total is not None else at.pages > 1
            if not may_have_moved or at.head is None:
                yield page.records, None
                return
            at = ListCursor(check=at.head, head=None, total=at.total, rounds=at.rounds + 1)
            yield page.records, at
            continue
        # A check: from page 1 up to the head the pass (or the previous check) began with.
        if at.check_pages == 0:
            at = replace(at, head=_first_key(keys))
        at = replace(at, check_pages=at.check_pages + 1)
        if at.check in keys:
            ahead = page.records[:keys.index(at.check)]
            found = at.found + len(ahead)
            if at.check_pages > 1:
                # The check took several pages: the list may have grown again meanwhile.
                at = ListCursor(check=at.head, total=None if at.total is None else at.total + found,
                                rounds=at.rounds + 1)
                yield ahead, at
                continue
            if at.total is not None and page.total is not None and page.total != at.total + found:
                # Not only growth at the head (a record removed, or inserted further down): read it all again.
                at = ListCursor(rounds=at.rounds + 1)
                yield ahead, at
                continue
            yield ahead, None
            return
        if page.next_page is None:
            # The old head is gone: the list changed in another way. Read it all again.
            at = ListCursor(rounds=at.rounds + 1)
            yield page.records, at
            continue
        at = replace(at, page=page.next_page, found=at.found + len(page.records))
        yield page.records, at
