"""Key ranges of a day: where they are planned, how each page of one is checked, and the split
points a finished day leaves for the next. Pure: no I/O and no threads (``ranged_fetch`` runs them).

SendGrid's cursor is documented only as "items beginning from the first item after the item
specified", and every public example returns a ``user_id``. When a source's cursor is seen to be
the last record's ``user_id`` with the ids ascending strictly as integers, a day can be cut at
ids the exporter already knows: range ``i`` starts after ``start`` and stops at ``stop``
(inclusive; the last range is open-ended). Trust is checked on every page (``check_page``); a
violation raises ``UntrustedCursor`` and the day is fetched sequentially instead.

The split points are page-end ids sampled while a day is fetched (``SplitSampler``): no extra read
or scan, a bounded memory of at most ``2 * SPLIT_POINTS`` ids, carried by a checkpoint.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from seq_export.models import ScoreRecord

#: How many split points a finished day leaves (so at most this many plus one ranges). More ranges
#: than requests in flight keep every slot busy to the end when ranges differ in size.
SPLIT_POINTS = 64


class UntrustedCursor(Exception):
    """The answers do not fit key ranges (another cursor, order or overlap): fetch sequentially."""


#: The longest user id taken for a number: 20 digits hold any 64-bit id (and Python refuses to
#: read numbers of thousands of digits).
MAX_ID_DIGITS = 20


def user_id_number(user_id: str, *, where: str) -> int:
    """``user_id`` as the integer it must spell exactly (ASCII digits, no sign, no leading zero,
    at most ``MAX_ID_DIGITS``) for ranges."""
    plain = user_id.isascii() and user_id.isdigit() and len(user_id) <= MAX_ID_DIGITS
    if not plain or (len(user_id) > 1 and user_id[0] == "0"):
        raise UntrustedCursor(f"{where}: user_id {user_id[:40]!r} is not a plain integer")
    return int(user_id)


def resume_after(after_key: str) -> int | None:
    """The id a checkpoint's cursor stands for, when it is a plain integer (else None)."""
    try:
        return user_id_number(after_key, where="checkpoint")
    except UntrustedCursor:
        return None


def check_page(records: Sequence[ScoreRecord], *, after: int | None, cursor: str | None, where: str) -> list[int]:
    """The page's ids, once they are plain integers ascending strictly from past ``after`` and the
    next ``cursor`` (if any) is the last record's ``user_id``; ``UntrustedCursor`` otherwise."""
    ids = [user_id_number(record.user_id, where=where) for record in records]
    previous = after
    for number in ids:
        if previous is not None and number <= previous:
            raise UntrustedCursor(f"{where}: user_id {number} does not come after {previous}")
        previous = number
    if cursor is not None:
        if not ids:
            raise UntrustedCursor(f"{where}: an empty page with a cursor ({cursor!r})")
        if cursor != records[-1].user_id:
            raise UntrustedCursor(f"{where}: the cursor {cursor!r} is not the last user_id {records[-1].user_id}")
    return ids


@dataclass(frozen=True, slots=True)
class KeyRange:
    """One range of a day and how far it got: the ids after ``start`` up to ``stop`` (None: the
    day's first range, or its open-ended last).

    ``cursor`` is where its next page starts (None: at ``start``); ``chunks`` are its lines staged
    by earlier invocations, in order. A finished range keeps what it found past its stop
    (``overflow_bytes`` and ``overflow_sha256`` of those lines: they must be the next ranges'
    first lines) or that the day ended before it (``ended_day``: the next ranges must be empty).
    """

    index: int
    start: int | None
    stop: int | None
    cursor: str | None = None
    pages: int = 0
    done: bool = False
    ended_day: bool = False
    overflow_bytes: int = 0
    overflow_sha256: str = ""
    chunks: tuple[str, ...] = ()

    @property
    def after_key(self) -> str | None:
        """The ``after_key`` of this range's next page."""
        return self.cursor if self.cursor is not None else None if self.start is None else str(self.start)

    @property
    def after(self) -> int | None:
        """The id its next page must start after."""
        return self.start if self.cursor is None else int(self.cursor)

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "chunks": list(self.chunks)}

    @classmethod
    def from_dict(cls, data: Any) -> KeyRange:
        if not isinstance(data, dict):
            raise TypeError(f"a key range must be an object, got {data!r}")
        key_range = cls(**{**data, "chunks": tuple(str(chunk) for chunk in data.get("chunks", ()))})
        if not isinstance(key_range.index, int) or not all(
            bound is None or isinstance(bound, int) for bound in (key_range.start, key_range.stop)
        ):
            raise ValueError(f"a key range needs an integer index, start and stop, got {data!r}")
        return key_range


@dataclass(frozen=True, slots=True)
class RangePage:
    """What one checked page of a range keeps, drops and leaves for the range."""

    kept: list[ScoreRecord]
    overflow: list[ScoreRecord]
    following: KeyRange


def take_page(key_range: KeyRange, records: list[ScoreRecord], cursor: str | None, *, where: str) -> RangePage:
    """Check a page of ``key_range`` and cut it at the stop: the records up to it are kept, the
    ones past it (``overflow``) end the range, as does reaching the stop or the day's end."""
    ids = check_page(records, after=key_range.after, cursor=cursor, where=where)
    stop = key_range.stop
    cut = len(ids) if stop is None else sum(1 for number in ids if number <= stop)
    kept, overflow = records[:cut], records[cut:]
    reached_stop = stop is not None and cut > 0 and ids[cut - 1] == stop
    done = cursor is None or bool(overflow) or reached_stop
    following = replace(
        key_range,
        cursor=cursor if not done else key_range.cursor,
        pages=key_range.pages + 1,
        done=done,
        ended_day=cursor is None and stop is not None,
    )
    return RangePage(kept, overflow, following)


def plan(split_ids: Sequence[int]) -> tuple[KeyRange, ...]:
    """Ranges cut at ``split_ids`` (ascending): the first from the day's start, the last open-ended."""
    bounds: list[int | None] = [None, *sorted(set(split_ids))]
    return tuple(
        KeyRange(index, start, bounds[index + 1] if index + 1 < len(bounds) else None)
        for index, start in enumerate(bounds)
    )


@dataclass(frozen=True, slots=True)
class SplitSampler:
    """Page-end ids of a day, sampled every ``stride`` pages as they pass, and whether the cursor
    earned trust on every page. Kept to at most ``2 * SPLIT_POINTS`` ids by doubling the stride,
    so a checkpoint carries it whatever the day's size."""

    trusted: bool = True
    distrust_reason: str = ""
    stride: int = 1
    pages: int = 0
    ids: tuple[int, ...] = field(default_factory=tuple)

    def observe(self, last_id: int | None) -> SplitSampler:
        """This sample after one more page (ending at ``last_id``; None for an empty page, or the
        day's last: the last range stays open from the page before it, so a day of one page has
        no split points and a day of n pages is n ranges, as many requests as in order)."""
        pages = self.pages + 1
        if last_id is None or pages % self.stride:
            return replace(self, pages=pages)
        ids, stride = (*self.ids, last_id), self.stride
        if len(ids) > 2 * SPLIT_POINTS:
            ids, stride = ids[1::2], stride * 2
        return replace(self, pages=pages, ids=ids, stride=stride)

    def distrust(self, reason: str) -> SplitSampler:
        return replace(self, trusted=False, distrust_reason=reason, ids=())

    def watch(
        self, records: Sequence[ScoreRecord], cursor: str | None, last_id: int | None, *, where: str
    ) -> tuple[SplitSampler, int | None]:
        """This sample after a page fetched in order, and the id the next page must come after:
        trust is earned page by page, and lost for the day at the first page that breaks it."""
        if not self.trusted:
            return self, None
        try:
            ids = check_page(records, after=last_id, cursor=cursor, where=where)
        except UntrustedCursor as exc:
            return self.distrust(str(exc)), None
        return self.observe(ids[-1] if ids and cursor is not None else None), ids[-1] if ids else last_id

    def split_points(self) -> tuple[int, ...]:
        """At most ``SPLIT_POINTS`` evenly spaced ids of the sample; none when it was not trusted."""
        ids = sorted(set(self.ids)) if self.trusted else []
        if len(ids) <= SPLIT_POINTS:
            return tuple(ids)
        step = len(ids) / SPLIT_POINTS
        return tuple(ids[int(i * step)] for i in range(SPLIT_POINTS))

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ids": list(self.ids)}

    @classmethod
    def from_dict(cls, data: Any) -> SplitSampler:
        if not isinstance(data, dict):
            raise TypeError(f"a split sample must be an object, got {data!r}")
        return cls(**{**data, "ids": tuple(int(number) for number in data.get("ids", ()))})
