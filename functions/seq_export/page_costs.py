"""When to stop fetching and continue in a fresh invocation: from what a page costs in this run.

A fixed reserve is wrong both ways: with score-change events on, each scored subuser is a
conditional write, so a page's writes can take far longer than its fetch and a fixed 90 s was
overrun (the invocation killed, the message dead-lettered); with cheap writes it wastes
minutes per invocation. So the reserve is measured, on top of a floor:

    reserve = floor + max(slowest fetch, slowest write) + slowest write

Fetching one more page overlaps the pending page's writes (``WriteBehind``), so that costs the
larger of the two; then that page's own writes must finish before a checkpoint. "Slowest" is
over the last ``window`` pages of this invocation. The floor covers what is not measured: the
checkpoint upload, the continuation message, and one slow answer (a read timeout or a capped
backoff) on the next page.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from typing import TypeVar

from seq_export.observability import logger

#: What the measured costs are added to: one 30 s read timeout, a 20 s backoff and the checkpoint.
CONTINUE_FLOOR_SECONDS = 60.0
#: How many recent pages the slowest fetch and write are taken from.
RECENT_PAGES = 5

_T = TypeVar("_T")


class PageCosts:
    """The recent fetch and write durations of one invocation, and the reserve they imply."""

    def __init__(
        self,
        monotonic: Callable[[], float] = time.monotonic,
        *,
        floor: float = CONTINUE_FLOOR_SECONDS,
        window: int = RECENT_PAGES,
    ) -> None:
        self._monotonic = monotonic
        self._floor = floor
        self._fetches: deque[float] = deque(maxlen=window)
        self._writes: deque[float] = deque(maxlen=window)
        self._lock = threading.Lock()  # writes are timed on the write-behind thread
        self._fetch_started = monotonic()

    def fetch_started(self) -> None:
        self._fetch_started = self._monotonic()

    def fetch_ended(self) -> None:
        self._fetches.append(self._monotonic() - self._fetch_started)

    def fetched(self, seconds: float) -> None:
        """A fetch timed by its caller (a key range's thread)."""
        self._fetches.append(seconds)

    def timed(self, write: Callable[[_T], None]) -> Callable[[_T], None]:
        """``write``, recording how long each call takes (whether it succeeds or not)."""

        def timed_write(batch: _T) -> None:
            started = self._monotonic()
            try:
                write(batch)
            finally:
                with self._lock:
                    self._writes.append(self._monotonic() - started)

        return timed_write

    @property
    def writes_measured(self) -> bool:
        """False until a page's writes have finished: the reserve would leave them out."""
        with self._lock:
            return bool(self._writes)

    def slowest_fetch(self) -> float:
        return max(self._fetches, default=0.0)

    def slowest_write(self) -> float:
        with self._lock:
            return max(self._writes, default=0.0)

    def out_of_time(
        self, time_left: Callable[[], float], wait_for_writes: Callable[[], None], *, parallel: int = 1
    ) -> bool:
        """True when another page (its fetch, then its writes; ``parallel`` pages at once for key
        ranges) might not fit before the deadline.

        Until one page's writes have been timed, wait for them: a reserve without them is a guess.
        """
        if not self.writes_measured:
            wait_for_writes()
        left, reserve = time_left(), self.reserve(parallel)
        if left >= reserve:
            return False
        logger.info(
            "Checkpointing before the deadline",
            seconds_left=round(left, 1),
            reserve_seconds=round(reserve, 1),
            slowest_fetch_seconds=round(self.slowest_fetch(), 2),
            slowest_write_seconds=round(self.slowest_write(), 2),
        )
        return True

    def reserve(self, parallel: int = 1) -> float:
        """Seconds to keep in hand before fetching another page (see the module docstring);
        with ``parallel`` pages fetched at once (key ranges), each of their writes waits its turn."""
        fetch, write = self.slowest_fetch(), self.slowest_write()
        return self._floor + max(fetch, write) + write * parallel
