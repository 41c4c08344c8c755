"""Writes beside fetching: the latest-score writes of page k run while page k+1 is fetched."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

_T = TypeVar("_T")


class WriteBehind:
    """Runs one write at a time beside the caller, so fetching page k+1 overlaps writing page k.

    ``submit`` first waits for the previous write (at most one page is in flight, so memory
    stays flat) and re-raises its error; ``wait`` does the same before anything that needs the
    writes done (the checkpoint, the publish). Leaving the block waits too, so no write outlives
    the day's export.
    """

    def __init__(self) -> None:
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="page-writer")
        self._pending: Future[None] | None = None

    def submit(self, write: Callable[[_T], None], batch: _T) -> None:
        self.wait()
        self._pending = self._pool.submit(write, batch)

    def wait(self) -> None:
        pending, self._pending = self._pending, None
        if pending is not None:
            pending.result()

    def __enter__(self) -> WriteBehind:
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            if exc[0] is None:
                self.wait()
            elif self._pending is not None:
                self._pending.exception()  # let it finish; the day's own error is the one reported
        finally:
            self._pool.shutdown(wait=True)
