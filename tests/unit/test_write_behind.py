"""The page writer runs beside the fetch, one page at a time, and never hides an error."""

from __future__ import annotations

import threading

import pytest

from seq_export.errors import StorageError
from seq_export.write_behind import WriteBehind


def test_a_write_runs_beside_the_caller_and_wait_joins_it() -> None:
    started, release = threading.Event(), threading.Event()
    done: list[int] = []

    def write(batch: list[int]) -> None:
        started.set()
        release.wait(5)
        done.extend(batch)

    with WriteBehind() as overlap:
        overlap.submit(write, [1, 2])
        assert started.wait(5)
        assert done == []  # the caller goes on (fetches the next page) while the write runs
        release.set()
        overlap.wait()
        assert done == [1, 2]


def test_submitting_the_next_page_waits_for_the_previous_write() -> None:
    order: list[str] = []

    def write(batch: list[str]) -> None:
        order.append(batch[0])

    with WriteBehind() as overlap:
        for page in ("p1", "p2", "p3"):
            overlap.submit(write, [page])
    assert order == ["p1", "p2", "p3"]


def test_a_failed_write_is_raised_at_the_next_submit() -> None:
    def fail(batch: list[int]) -> None:
        raise StorageError("DynamoDB BatchWriteItem on t failed: AccessDeniedException")

    overlap = WriteBehind()
    overlap.submit(fail, [1])
    with pytest.raises(StorageError, match="AccessDeniedException"):
        overlap.submit(fail, [2])
    overlap.__exit__(None, None, None)


def test_leaving_the_block_waits_for_the_last_write_and_raises_its_error() -> None:
    def fail(batch: list[int]) -> None:
        raise StorageError("boom")

    with pytest.raises(StorageError, match="boom"), WriteBehind() as overlap:
        overlap.submit(fail, [1])
