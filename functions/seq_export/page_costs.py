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

    def reserve(self) -> float:
        """Seconds to keep in hand before fetching another page (see the module docstring)."""
        fetch, write = self.slowest_fetch(), self.slowest_write()
        return self._floor + max(fetch, write) + write
