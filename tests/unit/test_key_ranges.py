"""Key ranges: planning, the trust check of every page, cutting pages at a range's stop, and the
split-point sample a day leaves for the next; plus a checkpoint carrying them through a job message."""

from __future__ import annotations

import json
from dataclasses import replace
from itertools import pairwise
from typing import Any

import pytest

from seq_export.errors import InvalidEventError
from seq_export.job_message import Checkpoint, Job, JobId
from seq_export.key_ranges import (
    MAX_ID_DIGITS,
    SPLIT_POINTS,
    KeyRange,
    SplitSampler,
    UntrustedCursor,
    check_page,
    plan,
    resume_after,
    take_page,
    user_id_number,
)
from seq_export.layout import DEFAULT_SOURCE
from seq_export.models import SUBUSERS, ScoreRecord
from tests.support import RECORD_DAY, record

WHERE = "test page 1"


def rec(user_id: int | str) -> ScoreRecord:
    """A valid record whose ``user_id`` is ``user_id``."""
    return replace(record(0), user_id=str(user_id))


def recs(*user_ids: int | str) -> list[ScoreRecord]:
    return [rec(user_id) for user_id in user_ids]


def ids_of(records: list[ScoreRecord]) -> list[str]:
    return [r.user_id for r in records]


# -- plan ------------------------------------------------------------------------------------


def test_no_split_points_plan_one_range_over_the_whole_day() -> None:
    assert plan([]) == (KeyRange(0, None, None),)


def test_plan_starts_at_the_days_start_ends_open_and_cuts_at_sorted_distinct_split_points() -> None:
    ranges = plan([30, 10, 20, 20])

    assert [(r.index, r.start, r.stop) for r in ranges] == [(0, None, 10), (1, 10, 20), (2, 20, 30), (3, 30, None)]
    assert not any(r.done or r.cursor or r.pages or r.chunks for r in ranges)


# -- check_page ------------------------------------------------------------------------------


@pytest.mark.parametrize(("after", "cursor"), [(None, "9"), (2, "9"), (2, None)])
def test_ascending_integer_ids_with_the_last_id_as_cursor_are_trusted(after: int | None, cursor: str | None) -> None:
    assert check_page(recs(3, 5, 9), after=after, cursor=cursor, where=WHERE) == [3, 5, 9]


def test_an_empty_last_page_is_trusted() -> None:
    assert check_page([], after=7, cursor=None, where=WHERE) == []


@pytest.mark.parametrize("user_id", ["abc", "007", "-5", "+5", "1.5", " 7", "", "\u00b2", "\u0661\u0662"])
def test_ids_that_are_not_plain_integers_are_untrusted(user_id: str) -> None:
    with pytest.raises(UntrustedCursor, match="not a plain integer"):
        check_page([rec(user_id)], after=None, cursor=None, where=WHERE)


def test_zero_is_a_plain_integer() -> None:
    assert check_page(recs(0, 1), after=None, cursor="1", where=WHERE) == [0, 1]


@pytest.mark.parametrize("user_ids", [(5, 5), (5, 4), (1, 3, 2)], ids=["repeated", "descending", "out-of-order"])
def test_ids_not_strictly_ascending_are_untrusted(user_ids: tuple[int, ...]) -> None:
    with pytest.raises(UntrustedCursor, match="does not come after"):
        check_page(recs(*user_ids), after=None, cursor=None, where=WHERE)


@pytest.mark.parametrize("first", [5, 3])
def test_a_first_id_not_after_the_previous_cursor_is_untrusted(first: int) -> None:
    with pytest.raises(UntrustedCursor, match=f"{first} does not come after 5"):
        check_page(recs(first, 6), after=5, cursor="6", where=WHERE)


@pytest.mark.parametrize("cursor", ["5", "09", "abc", "10"])
def test_a_cursor_that_is_not_the_last_id_is_untrusted(cursor: str) -> None:
    with pytest.raises(UntrustedCursor, match="is not the last user_id"):
        check_page(recs(3, 5, 9), after=None, cursor=cursor, where=WHERE)


def test_an_empty_page_with_a_cursor_is_untrusted() -> None:
    with pytest.raises(UntrustedCursor, match="empty page with a cursor"):
        check_page([], after=None, cursor="5", where=WHERE)


def test_untrusted_names_where_it_happened() -> None:
    with pytest.raises(UntrustedCursor, match=r"^day range 2 page 7: "):
        check_page(recs(2, 1), after=None, cursor=None, where="day range 2 page 7")


# -- take_page -------------------------------------------------------------------------------


def test_a_page_of_an_open_ended_range_is_kept_whole_and_moves_the_cursor() -> None:
    taken = take_page(KeyRange(3, 30, None), recs(31, 32, 35), "35", where=WHERE)

    assert ids_of(taken.kept) == ["31", "32", "35"]
    assert taken.overflow == []
    assert taken.following == KeyRange(3, 30, None, cursor="35", pages=1)


def test_a_page_within_a_bounded_range_moves_the_cursor_without_ending_it() -> None:
    taken = take_page(KeyRange(1, 10, 20), recs(11, 12), "12", where=WHERE)

    assert ids_of(taken.kept) == ["11", "12"]
    assert taken.following == KeyRange(1, 10, 20, cursor="12", pages=1)


def test_pages_continue_after_the_cursor_and_are_counted() -> None:
    first = take_page(KeyRange(1, 10, 20), recs(11, 12), "12", where=WHERE).following

    second = take_page(first, recs(13, 14), "14", where=WHERE).following

    assert (second.cursor, second.pages, second.done) == ("14", 2, False)
    assert (second.after_key, second.after) == ("14", 14)


def test_a_page_crossing_the_stop_keeps_up_to_it_and_the_rest_is_overflow() -> None:
    key_range = KeyRange(0, None, 10, cursor="7", pages=2)

    taken = take_page(key_range, recs(8, 9, 11, 12), "12", where=WHERE)

    assert ids_of(taken.kept) == ["8", "9"]
    assert ids_of(taken.overflow) == ["11", "12"]
    # done: the cursor stays where the range's last unfinished page left it
    assert taken.following == replace(key_range, pages=3, done=True)


def test_a_page_ending_exactly_at_the_stop_ends_the_range_without_overflow() -> None:
    taken = take_page(KeyRange(0, None, 10), recs(9, 10), "10", where=WHERE)

    assert ids_of(taken.kept) == ["9", "10"]
    assert taken.overflow == []
    assert taken.following == KeyRange(0, None, 10, pages=1, done=True)


def test_a_page_all_past_the_stop_is_all_overflow() -> None:
    taken = take_page(KeyRange(0, None, 10), recs(11, 12), "12", where=WHERE)

    assert taken.kept == []
    assert ids_of(taken.overflow) == ["11", "12"]
    assert taken.following.done


def test_the_day_ending_in_a_bounded_range_marks_it_ended_day() -> None:
    taken = take_page(KeyRange(0, None, 10), recs(1, 2), None, where=WHERE)

    assert ids_of(taken.kept) == ["1", "2"]
    assert taken.following == KeyRange(0, None, 10, pages=1, done=True, ended_day=True)


def test_the_day_ending_on_a_page_past_the_stop_is_both_overflow_and_ended_day() -> None:
    taken = take_page(KeyRange(0, None, 10), recs(9, 11), None, where=WHERE)

    assert ids_of(taken.kept) == ["9"]
    assert ids_of(taken.overflow) == ["11"]
    assert taken.following.done
    assert taken.following.ended_day


@pytest.mark.parametrize("records", [[], recs(31)], ids=["empty", "one"])
def test_the_day_ending_in_the_open_ended_range_is_not_ended_day(records: list[ScoreRecord]) -> None:
    taken = take_page(KeyRange(2, 30, None), records, None, where=WHERE)

    assert taken.following == KeyRange(2, 30, None, pages=1, done=True)


def test_an_empty_last_page_of_a_bounded_range_ends_it_and_the_day() -> None:
    taken = take_page(KeyRange(1, 10, 20, cursor="15", pages=4), [], None, where=WHERE)

    assert (taken.kept, taken.overflow) == ([], [])
    assert taken.following == KeyRange(1, 10, 20, cursor="15", pages=5, done=True, ended_day=True)


def test_take_page_keeps_what_earlier_invocations_staged() -> None:
    key_range = KeyRange(1, 10, 20, cursor="12", pages=1, chunks=("a.jsonl",))

    assert take_page(key_range, recs(13), "13", where=WHERE).following.chunks == ("a.jsonl",)


@pytest.mark.parametrize(
    ("key_range", "user_ids"),
    [(KeyRange(1, 10, 20), (10, 11)), (KeyRange(1, 10, 20, cursor="12"), (12, 13))],
    ids=["at-start", "at-cursor"],
)
def test_a_page_repeating_the_ranges_last_id_is_untrusted(key_range: KeyRange, user_ids: tuple[int, ...]) -> None:
    with pytest.raises(UntrustedCursor):
        take_page(key_range, recs(*user_ids), str(user_ids[-1]), where=WHERE)


# -- KeyRange --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key_range", "after_key", "after"),
    [
        (KeyRange(0, None, 10), None, None),
        (KeyRange(1, 10, 20), "10", 10),
        (KeyRange(0, None, 10, cursor="7"), "7", 7),
        (KeyRange(1, 10, 20, cursor="15"), "15", 15),
    ],
    ids=["first", "start", "first-resumed", "resumed"],
)
def test_the_next_page_starts_after_the_cursor_else_after_the_start(
    key_range: KeyRange, after_key: str | None, after: int | None
) -> None:
    assert key_range.after_key == after_key
    assert key_range.after == after


def test_a_key_range_survives_json_through_to_dict_and_from_dict() -> None:
    key_range = KeyRange(
        2,
        10,
        20,
        cursor="15",
        pages=3,
        done=True,
        ended_day=True,
        overflow_bytes=42,
        overflow_sha256="ab" * 32,
        chunks=("one.jsonl", "two.jsonl"),
    )

    data = json.loads(json.dumps(key_range.to_dict()))

    assert data["chunks"] == ["one.jsonl", "two.jsonl"]
    assert KeyRange.from_dict(data) == key_range


def test_a_key_range_needs_only_index_start_and_stop() -> None:
    assert KeyRange.from_dict({"index": 0, "start": None, "stop": 5}) == KeyRange(0, None, 5)


@pytest.mark.parametrize(
    "data",
    [[], "range", None, {}, {"index": 0, "start": None}, {"index": 0, "start": None, "stop": None, "extra": 1}],
    ids=["list", "string", "null", "empty", "no-stop", "unknown-field"],
)
def test_a_key_range_of_the_wrong_shape_is_a_type_error(data: Any) -> None:
    with pytest.raises(TypeError):
        KeyRange.from_dict(data)


@pytest.mark.parametrize(
    "data",
    [
        {"index": "0", "start": None, "stop": None},
        {"index": 0, "start": "10", "stop": None},
        {"index": 0, "start": None, "stop": 1.5},
    ],
    ids=["index-text", "start-text", "stop-float"],
)
def test_a_key_range_with_non_integer_bounds_is_a_value_error(data: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="integer index, start and stop"):
        KeyRange.from_dict(data)


# -- SplitSampler ----------------------------------------------------------------------------


def sampled(pages: int, *, gap: int = 10) -> SplitSampler:
    """The sample of a day of ``pages`` pages, page ``n`` ending at id ``n * gap``."""
    sample = SplitSampler()
    for page in range(1, pages + 1):
        sample = sample.observe(page * gap)
    return sample


def test_a_short_day_offers_every_page_end_as_a_split_point() -> None:
    assert sampled(3).split_points() == (10, 20, 30)


def test_an_empty_page_is_counted_but_offers_no_split_point() -> None:
    sample = SplitSampler().observe(10).observe(None)

    assert sample.pages == 2
    assert sample.split_points() == (10,)


def test_the_sample_never_holds_more_than_twice_the_split_points_however_many_pages() -> None:
    sample = SplitSampler()
    most = 0
    for page in range(1, 10_001):
        sample = sample.observe(page)
        most = max(most, len(sample.ids))

    assert most <= 2 * SPLIT_POINTS
    assert sample.pages == 10_000
    assert sample.stride > 1


@pytest.mark.parametrize("pages", [1, SPLIT_POINTS, SPLIT_POINTS + 1, 2 * SPLIT_POINTS + 1, 1000, 10_000])
def test_at_most_split_points_are_offered(pages: int) -> None:
    points = sampled(pages).split_points()

    assert 0 < len(points) <= SPLIT_POINTS
    assert list(points) == sorted(set(points))


@pytest.mark.parametrize("pages", [SPLIT_POINTS + 1, 2 * SPLIT_POINTS + 1, 1000, 3333, 10_000])
def test_split_points_are_spread_evenly_over_the_day(pages: int) -> None:
    points = sampled(pages, gap=10).split_points()

    gaps = [later - earlier for earlier, later in pairwise(points)]
    assert len(points) == SPLIT_POINTS
    assert max(gaps) <= 2 * min(gaps)
    # from near the day's start to near its end
    day_end = pages * 10
    assert points[0] <= day_end / 10
    assert points[-1] >= day_end * 9 / 10


@pytest.mark.parametrize("distrust_after", [0, 5, 500])
def test_a_distrusted_sample_offers_no_split_points(distrust_after: int) -> None:
    sample = sampled(distrust_after).distrust("ids not ascending")

    assert sample.split_points() == ()
    assert sample.observe(99_999).split_points() == ()


def test_a_split_sample_survives_json_through_to_dict_and_from_dict() -> None:
    sample = sampled(1000)

    data = json.loads(json.dumps(sample.to_dict()))

    assert isinstance(data["ids"], list)
    assert SplitSampler.from_dict(data) == sample
    assert SplitSampler.from_dict(data).split_points() == sample.split_points()


def test_a_distrusted_sample_survives_to_dict_and_from_dict() -> None:
    sample = sampled(10).distrust("ids not ascending")

    assert SplitSampler.from_dict(json.loads(json.dumps(sample.to_dict()))) == sample


def test_an_empty_object_is_a_fresh_sample() -> None:
    assert SplitSampler.from_dict({}) == SplitSampler()


@pytest.mark.parametrize(
    "data", [[], None, "ids", {"ids": 5}, {"extra": 1}], ids=["list", "null", "string", "ids-number", "unknown-field"]
)
def test_a_split_sample_of_the_wrong_shape_is_a_type_error(data: Any) -> None:
    with pytest.raises(TypeError):
        SplitSampler.from_dict(data)


def test_a_split_sample_with_non_integer_ids_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="invalid literal"):
        SplitSampler.from_dict({"ids": ["12", "twelve"]})


# -- a checkpoint carrying them ----------------------------------------------------------------


def ranged_checkpoint() -> Checkpoint:
    first, middle, last = plan([100, 200])
    return Checkpoint(
        after_key="",
        next_page=1,
        exported_at="2024-05-11T02:00:00Z",
        ranges=(
            replace(first, pages=4, done=True, overflow_bytes=180, overflow_sha256="cd" * 32, chunks=("a", "b")),
            replace(middle, cursor="150", pages=2, chunks=("c",)),
            last,
        ),
        split_sample=sampled(300),
    )


def test_a_checkpoint_with_ranges_and_a_split_sample_survives_the_job_message() -> None:
    job = Job(
        JobId(DEFAULT_SOURCE, SUBUSERS, RECORD_DAY), attempt=2, reason="time_limit", checkpoint=ranged_checkpoint()
    )

    again = Job.from_json(job.to_json(), default_source=DEFAULT_SOURCE)

    assert again == job
    assert again.checkpoint is not None
    assert again.checkpoint.split_sample.split_points() == sampled(300).split_points()


def test_a_checkpoint_without_ranges_reads_as_a_sequential_day_with_a_fresh_sample() -> None:
    checkpoint = Checkpoint.from_dict({"after_key": "k", "next_page": 3, "exported_at": "2024-05-11T02:00:00Z"})

    assert checkpoint.ranges == ()
    assert checkpoint.split_sample == SplitSampler()


@pytest.mark.parametrize(
    "change",
    [{"ranges": [{"index": "x", "start": None, "stop": None}]}, {"ranges": ["x"]}, {"split_sample": {"ids": ["x"]}}],
    ids=["range-index", "range-shape", "sample-ids"],
)
def test_a_checkpoint_with_malformed_ranges_or_sample_is_an_invalid_event(change: dict[str, Any]) -> None:
    data = {**ranged_checkpoint().to_dict(), **change}

    with pytest.raises(InvalidEventError, match="'checkpoint' is malformed"):
        Checkpoint.from_dict(data)


# -- SplitSampler.watch: trust earned page by page in order -----------------------------------


def test_watching_a_day_in_order_samples_every_page_end_but_the_last() -> None:
    sample, last_id = SplitSampler(), None
    for first, cursor in ((1, "3"), (4, "6"), (7, None)):
        sample, last_id = sample.watch(recs(first, first + 1, first + 2), cursor, last_id, where="page")

    assert sample.split_points() == (3, 6)  # the day's last page leaves the last range open
    assert last_id == 9


def test_watching_a_page_that_breaks_the_rule_loses_trust_for_the_day_and_says_why() -> None:
    sample, _ = SplitSampler().watch(recs(1, 2), "2", None, where="page 1")

    sample, last_id = sample.watch(recs(5, 4), "4", 2, where="page 2")
    sample, _ = sample.watch(recs(7), None, last_id, where="page 3")

    assert (sample.trusted, sample.split_points()) == (False, ())
    assert "page 2: user_id 4 does not come after 5" in sample.distrust_reason


@pytest.mark.parametrize("user_id", ["1" * (MAX_ID_DIGITS + 1), "9" * 5000])
def test_an_id_longer_than_any_64_bit_number_is_not_a_plain_integer(user_id: str) -> None:
    with pytest.raises(UntrustedCursor, match="is not a plain integer"):
        user_id_number(user_id, where=WHERE)


@pytest.mark.parametrize(("after_key", "after"), [("101000", 101000), ("", None), ("abc", None), ("²", None)])
def test_a_checkpoints_cursor_resumes_after_its_id_only_when_it_is_a_plain_integer(
    after_key: str, after: int | None
) -> None:
    assert resume_after(after_key) == after
