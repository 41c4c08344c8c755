"""A day fetched as key ranges at once: what one invocation stages, how the ranges are joined into
the day's lines and checked against each other, and the fetch itself over a fake client that
answers a small synthetic day (30 subusers, 5 a page, cut into 3 ranges)."""

from __future__ import annotations

import hashlib
import io
import threading
from dataclasses import replace
from pathlib import Path
from typing import IO, Any, cast

import pytest

from seq_export import record_codec
from seq_export.errors import ScoresNotReady
from seq_export.job_message import Job, JobId
from seq_export.key_ranges import KeyRange, UntrustedCursor, plan
from seq_export.layout import DEFAULT_SOURCE
from seq_export.models import METRIC_NAMES, SUBUSERS, Page, ScoreRecord, validate_record
from seq_export.ranged_fetch import RangedDay, RangedFetch
from seq_export.s3_sink import S3Sink
from seq_export.seq_client import SeqClient

DAY = "2024-05-01"
EXPORTED_AT = "2024-05-02T02:00:00Z"
JOB = Job(JobId(DEFAULT_SOURCE, SUBUSERS, DAY), attempt=1)
#: The day's subusers (ascending, as SendGrid's cursor orders them), its page size and where it is cut.
IDS = [10 * n for n in range(1, 31)]
PAGE_SIZE = 5
SPLITS = (95, 200)  # not on page boundaries: ranges 0 and 1 find records past their stops
#: Only a safeguard against a hanging test: every wait returns as soon as it is met.
PATIENCE = 10.0


class MemorySink:
    """The staging part of ``S3Sink`` in memory: what was staged, under which key, for which day."""

    def __init__(self) -> None:
        self.staged: dict[str, bytes] = {}
        self.staged_for: dict[str, str] = {}

    def stage(self, day: str, body: IO[bytes], size: int) -> str:
        data = body.read()
        assert len(data) == size
        key = f"_staging/dt={day}/{len(self.staged)}.jsonl"
        self.staged[key] = data
        self.staged_for[key] = day
        return key

    def read_staged(self, key: str, into: IO[bytes]) -> None:
        into.write(self.staged[key])

    def delete_staged(self, key: str) -> None:
        del self.staged[key]

    def holding(self, **staged: bytes) -> S3Sink:
        """This sink with ``staged`` (key: lines) already staged, typed as the production sink."""
        self.staged.update(staged)
        return cast(S3Sink, self)


def api_record(user_id: int) -> dict[str, Any]:
    return {
        "user_id": str(user_id),
        "username": f"u{user_id}",
        "date": DAY,
        "score": 3,
        "metrics": dict.fromkeys(METRIC_NAMES, 2),
    }


def score_record(user_id: int) -> ScoreRecord:
    return validate_record(api_record(user_id), source=DEFAULT_SOURCE, day=DAY, where="expected")


def lines(*user_ids: int) -> bytes:
    return record_codec.encode([score_record(user_id) for user_id in user_ids], EXPORTED_AT)


def day_pages() -> dict[str | None, Page]:
    """The page SendGrid answers after each key a range can ask from (none, any id, a split point):
    the next ``PAGE_SIZE`` ids, with the last one as cursor unless the day ends there."""
    pages: dict[str | None, Page] = {}
    for key in [None, *IDS, *SPLITS]:
        following = [user_id for user_id in IDS if key is None or user_id > key]
        taken = following[:PAGE_SIZE]
        cursor = str(taken[-1]) if len(following) > PAGE_SIZE else None
        pages[None if key is None else str(key)] = Page(0, [api_record(user_id) for user_id in taken], cursor)
    return pages


class FakeClient:
    """Answers ``page`` from ``pages`` by ``after_key`` (or raises ``fail``'s error for it);
    with ``meet``, every call waits there for the others first."""

    def __init__(
        self,
        pages: dict[str | None, Page],
        *,
        fail: dict[str | None, Exception] | None = None,
        meet: threading.Barrier | None = None,
    ) -> None:
        self.pages = pages
        self.fail = fail or {}
        self.meet = meet
        self.calls: list[tuple[str | None, int, str | None]] = []
        self._lock = threading.Lock()

    def page(self, day: str, *, after_key: str | None, number: int, where: str | None = None) -> Page:
        assert day == DAY
        with self._lock:
            self.calls.append((after_key, number, where))
        if self.meet is not None:
            self.meet.wait()
        if after_key in self.fail:
            raise self.fail[after_key]
        return replace(self.pages[after_key], number=number)

    def asked(self) -> list[tuple[str | None, int]]:
        return sorted(((key, number) for key, number, _ in self.calls), key=lambda call: (call[1], call[0] or ""))


class Pages:
    """What ``on_page`` was told, from whichever thread."""

    def __init__(self) -> None:
        self.kept: list[ScoreRecord] = []
        self.day_ended = 0  # pages that said the day ended (no cursor)
        self._lock = threading.Lock()

    def __call__(self, kept: list[ScoreRecord], seconds: float, day_ended: bool) -> None:
        assert seconds >= 0
        with self._lock:
            self.kept.extend(kept)
            self.day_ended += day_ended


def fetch(
    client: FakeClient,
    ranges: tuple[KeyRange, ...],
    tmp_path: Path,
    *,
    workers: int = 3,
    on_page: Pages | None = None,
    out_of_time: bool = False,
) -> RangedDay:
    fetcher = RangedFetch(cast(SeqClient, client), workers=workers, spool_dir=str(tmp_path))
    return fetcher.fetch(
        JOB, ranges, exported_at=EXPORTED_AT, on_page=on_page or Pages(), out_of_time=lambda: out_of_time
    )


def joined(day: RangedDay, sink: S3Sink) -> bytes:
    into = io.BytesIO()
    day.join(sink, into)
    assert into.tell() == len(into.getvalue())  # left at the end, for whatever follows
    return into.getvalue()


def past_stop(data: bytes) -> dict[str, Any]:
    """The overflow fields of a range that found ``data`` past its stop."""
    return {"overflow_bytes": len(data), "overflow_sha256": hashlib.sha256(data).hexdigest()}


def spool(data: bytes) -> IO[bytes]:
    body = io.BytesIO(data)
    body.seek(0, 2)  # as a fetch leaves it: at the end of what it wrote
    return body


# -- RangedDay.save ----------------------------------------------------------------------------


def test_save_stages_each_ranges_new_lines_as_its_next_chunk() -> None:
    sink = MemorySink()
    day = RangedDay(
        (KeyRange(0, None, 10, chunks=("earlier.jsonl",)), KeyRange(1, 10, 20), KeyRange(2, 20, None)),
        {0: spool(b"zero\n"), 2: spool(b"two\n")},
    )

    saved = day.save(sink.holding(), DAY)

    first, second, third = saved
    assert first.chunks[0] == "earlier.jsonl"
    assert [sink.staged[key] for key in (first.chunks[1], third.chunks[0])] == [b"zero\n", b"two\n"]
    assert second.chunks == ()
    assert set(sink.staged_for.values()) == {DAY}
    assert [replace(key_range, chunks=()) for key_range in saved] == [
        replace(key_range, chunks=()) for key_range in day.ranges
    ]


def test_save_stages_nothing_for_a_range_without_new_lines() -> None:
    sink = MemorySink()
    key_range = KeyRange(1, 10, 20, cursor="15", pages=2, chunks=("earlier.jsonl",))
    day = RangedDay((key_range,), {1: spool(b"")})

    assert day.save(sink.holding(), DAY) == (key_range,)
    assert sink.staged == {}


def test_finished_only_when_every_range_is_done() -> None:
    done = KeyRange(0, None, 10, done=True)

    assert RangedDay((done, replace(done, index=1))).finished
    assert not RangedDay((done, KeyRange(1, 10, None))).finished


# -- RangedDay.join ----------------------------------------------------------------------------


def test_join_writes_the_ranges_in_index_order_chunks_before_this_invocations_lines() -> None:
    day = RangedDay(
        (KeyRange(0, None, 10, chunks=("a1", "a2")), KeyRange(1, 10, 20), KeyRange(2, 20, None, chunks=("c1",))),
        {0: spool(b"a3\n"), 1: spool(b"b1\n")},
    )

    data = joined(day, MemorySink().holding(a1=b"a1\n", a2=b"a2\n", c1=b"c1\n"))

    assert data == b"a1\na2\na3\nb1\nc1\n"


def test_join_passes_when_what_each_range_found_past_its_stop_starts_the_next() -> None:
    day = RangedDay(
        (
            KeyRange(0, None, 10, done=True, **past_stop(b"b1\n")),
            KeyRange(1, 10, 20, done=True, **past_stop(b"c1\nc2\n")),
            KeyRange(2, 20, None, done=True),
        ),
        {0: spool(b"a1\n"), 1: spool(b"b1\nb2\n"), 2: spool(b"c1\nc2\nc3\n")},
    )

    assert joined(day, MemorySink().holding()) == b"a1\nb1\nb2\nc1\nc2\nc3\n"


def test_what_a_range_found_past_its_stop_may_reach_over_an_empty_next_range() -> None:
    day = RangedDay(
        (KeyRange(0, None, 10, **past_stop(b"c1\n")), KeyRange(1, 10, 20), KeyRange(2, 20, None)),
        {0: spool(b"a1\n"), 2: spool(b"c1\nc2\n")},
    )

    assert joined(day, MemorySink().holding()) == b"a1\nc1\nc2\n"


@pytest.mark.parametrize("next_lines", [b"x1\nb2\n", b"", b"b1"], ids=["other", "missing", "shorter"])
def test_join_is_untrusted_when_what_a_range_found_past_its_stop_is_not_the_next_start(next_lines: bytes) -> None:
    day = RangedDay(
        (KeyRange(0, None, 10, **past_stop(b"b1\n")), KeyRange(1, 10, None)),
        {0: spool(b"a1\n"), 1: spool(next_lines)},
    )

    with pytest.raises(UntrustedCursor, match="range 0: the records past its stop"):
        joined(day, MemorySink().holding())


def day_ending_in_the_first_range(overflow: bytes, later: dict[int, bytes]) -> RangedDay:
    """Three ranges; the day ended in the first, past whose stop were ``overflow``'s lines."""
    return RangedDay(
        (
            KeyRange(0, None, 10, done=True, ended_day=True, **past_stop(overflow)),
            KeyRange(1, 10, 20),
            KeyRange(2, 20, None),
        ),
        {0: spool(b"a1\n"), **{index: spool(data) for index, data in later.items()}},
    )


@pytest.mark.parametrize(
    ("overflow", "later"),
    [(b"", {}), (b"b1\n", {1: b"b1\n"}), (b"b1\nc1\n", {1: b"b1\n", 2: b"c1\n"})],
    ids=["nothing-past", "next-range", "two-ranges"],
)
def test_a_day_ending_in_a_range_passes_when_later_ranges_hold_only_its_overflow(
    overflow: bytes, later: dict[int, bytes]
) -> None:
    day = day_ending_in_the_first_range(overflow, later)

    assert joined(day, MemorySink().holding()) == b"a1\n" + overflow


@pytest.mark.parametrize(
    ("overflow", "later"),
    [(b"", {2: b"c1\n"}), (b"b1\n", {1: b"b1\nb2\n"}), (b"b1\n", {1: b"b1\n", 2: b"c1\n"})],
    ids=["nothing-past", "more-in-next", "more-in-last"],
)
def test_a_day_ending_in_a_range_is_untrusted_when_later_ranges_hold_more(
    overflow: bytes, later: dict[int, bytes]
) -> None:
    day = day_ending_in_the_first_range(overflow, later)

    with pytest.raises(UntrustedCursor, match="range 0: the day ended in it"):
        joined(day, MemorySink().holding())


# -- RangedFetch.fetch -------------------------------------------------------------------------


def test_the_synthetic_day_is_cut_where_the_tests_expect() -> None:
    ranges = plan(SPLITS)

    assert [(r.start, r.stop) for r in ranges] == [(None, 95), (95, 200), (200, None)]
    assert len(IDS) == 30


@pytest.mark.parametrize("workers", [1, 2, 3, 8])
def test_fetching_every_range_and_joining_them_gives_the_days_lines_in_order(tmp_path: Path, workers: int) -> None:
    client = FakeClient(day_pages())
    told = Pages()

    day = fetch(client, plan(SPLITS), tmp_path, workers=workers, on_page=told)

    assert day.finished
    assert joined(day, MemorySink().holding()) == lines(*IDS)
    assert sorted(int(r.user_id) for r in told.kept) == IDS
    day.close()


def test_each_range_keeps_what_it_found_past_its_stop(tmp_path: Path) -> None:
    day = fetch(FakeClient(day_pages()), plan(SPLITS), tmp_path)

    first, second, last = day.ranges
    assert (first.pages, second.pages, last.pages) == (2, 3, 2)
    assert (first.overflow_bytes, first.overflow_sha256) == tuple(past_stop(lines(100)).values())
    assert (second.overflow_bytes, second.overflow_sha256) == tuple(past_stop(lines(210, 220, 230, 240)).values())
    assert (last.overflow_bytes, last.ended_day) == (0, False)
    day.close()


def test_each_range_asks_from_its_start_then_its_cursor_numbering_its_own_pages(tmp_path: Path) -> None:
    client = FakeClient(day_pages())

    fetch(client, plan(SPLITS), tmp_path).close()

    assert client.asked() == [
        (None, 1),
        ("200", 1),
        ("95", 1),
        ("140", 2),
        ("250", 2),
        ("50", 2),
        ("190", 3),
    ]
    assert {where for _, _, where in client.calls} >= {f"{JOB.id} range 1 page 3"}


def test_an_error_of_one_range_is_raised_by_fetch(tmp_path: Path) -> None:
    client = FakeClient(day_pages(), fail={"95": ScoresNotReady("range 1 page 1: 202")})

    with pytest.raises(ScoresNotReady, match="range 1 page 1"):
        fetch(client, plan(SPLITS), tmp_path)


def test_an_untrusted_page_of_one_range_is_raised_by_fetch(tmp_path: Path) -> None:
    pages = day_pages()
    pages["200"] = replace(pages["200"], records=[api_record(210), api_record(205)])

    with pytest.raises(UntrustedCursor, match="range 2 page 1"):
        fetch(FakeClient(pages), plan(SPLITS), tmp_path)


def test_out_of_time_stops_after_the_first_pages_and_leaves_the_ranges_to_continue(tmp_path: Path) -> None:
    # all three first pages are asked for before any is answered, so each range gets exactly one
    client = FakeClient(day_pages(), meet=threading.Barrier(3, timeout=PATIENCE))

    day = fetch(client, plan(SPLITS), tmp_path, out_of_time=True)

    assert not day.finished
    assert [(r.cursor, r.pages, r.done) for r in day.ranges] == [("50", 1, False), ("140", 1, False), ("250", 1, False)]
    assert sorted(key or "" for key, _ in client.asked()) == ["", "200", "95"]
    day.close()


def test_a_day_cut_short_continues_from_the_saved_ranges_into_the_same_lines(tmp_path: Path) -> None:
    sink = MemorySink()
    first = fetch(FakeClient(day_pages()), plan(SPLITS), tmp_path, workers=1, out_of_time=True)
    saved = first.save(sink.holding(), DAY)
    first.close()
    assert [(r.cursor, r.pages, len(r.chunks)) for r in saved] == [("50", 1, 1), (None, 0, 0), (None, 0, 0)]

    client = FakeClient(day_pages())
    second = fetch(client, saved, tmp_path)

    assert second.finished
    assert joined(second, sink.holding()) == lines(*IDS)
    assert ("50", 2) in client.asked()
    assert (None, 1) not in client.asked()
    second.close()


def test_a_finished_range_is_not_fetched_again(tmp_path: Path) -> None:
    sink = MemorySink()
    done = fetch(FakeClient(day_pages()), plan(SPLITS), tmp_path)
    saved = done.save(sink.holding(), DAY)
    done.close()
    client = FakeClient(day_pages())

    again = fetch(client, saved, tmp_path)

    assert client.calls == []
    assert again.ranges == saved
    assert joined(again, sink.holding()) == lines(*IDS)
