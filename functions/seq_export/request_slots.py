"""How many SendGrid requests one client has in flight: flow control, not a retry.

SendGrid publishes no rate limits for the Engagement Quality endpoints; what it does send is a
429, and ``X-RateLimit-Remaining`` / ``X-RateLimit-Reset`` on every answer. So the number of
requests in flight adapts, between 1 and the configured ``ceiling``:

* a 429 halves the limit and holds every other thread's new requests until the reset (the thread
  that got the 429 waits that long itself, with ``seq_client``'s sleep, then retries: the one
  retry layer);
* an answer whose ``X-RateLimit-Remaining`` is below the limit lowers the limit to it, and a
  remaining of 0 holds the others' requests until the reset while its own thread waits it out,
  so the window is never overrun;
* after ``limit`` answers in a row without either, the limit grows by one, back to the ceiling.

A sequential fetch uses one slot at a time, so none of this changes its pace unless SendGrid asks.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

#: No hold lasts longer than the longest wait ``seq_client`` allows for a rate limit, so a reset
#: announced hours away cannot stall the other threads past an invocation's time limit.
LONGEST_HOLD_SECONDS = 60.0


class RequestSlots:
    """The requests one ``SeqClient`` has in flight, for every thread fetching with it: its
    ``slot()`` is taken around each request (see the module docstring for how the limit moves)."""

    def __init__(self, ceiling: int = 1, *, monotonic: Callable[[], float] = time.monotonic) -> None:
        if ceiling < 1:
            raise ValueError(f"at least one request must be allowed in flight, got {ceiling}")
        self.ceiling = ceiling
        self.limit = ceiling
        #: The most requests seen in flight at once, and how often the limit was lowered.
        self.most_in_flight = 0
        self.lowered = 0
        self._monotonic = monotonic
        self._in_flight = 0
        self._held_until = 0.0
        self._holder: int | None = None  # the thread that set the hold waits it out itself
        self._calm_answers = 0
        self._changed = threading.Condition()

    @contextmanager
    def slot(self) -> Iterator[None]:
        """Hold one slot for a request; waits while the limit is reached or another thread's
        hold lasts."""
        with self._changed:
            while self._in_flight >= self.limit or self._held_for_me() > 0:
                self._changed.wait(timeout=self._held_for_me() or None)
            self._in_flight += 1
            self.most_in_flight = max(self.most_in_flight, self._in_flight)
        try:
            yield
        finally:
            with self._changed:
                self._in_flight -= 1
                self._changed.notify_all()

    def rate_limited(self, wait_seconds: float) -> None:
        """SendGrid answered 429: halve the limit and hold new requests for ``wait_seconds``."""
        with self._changed:
            self._lower(max(1, self.limit // 2))
            self._hold(wait_seconds)

    def answered(self, remaining: int | None, reset_in: float | None) -> float:
        """A request was answered with ``remaining`` requests left until the reset (if said).
        Returns the seconds its thread is to wait before its next request (none left: the reset)."""
        with self._changed:
            if remaining is not None and remaining < self.limit:
                self._lower(max(1, remaining))
                if remaining <= 0 and reset_in is not None:
                    self._hold(reset_in)
                    return reset_in
                return 0.0
            self._calm_answers += 1
            if self._calm_answers >= self.limit and self.limit < self.ceiling:
                self.limit += 1
                self._calm_answers = 0
                self._changed.notify_all()
            return 0.0

    def _lower(self, limit: int) -> None:
        if limit < self.limit:
            self.limit = limit
            self.lowered += 1
        self._calm_answers = 0

    def _hold(self, seconds: float) -> None:
        seconds = min(seconds, LONGEST_HOLD_SECONDS)
        self._held_until = max(self._held_until, self._monotonic() + seconds)
        self._holder = threading.get_ident()

    def _held_for_me(self) -> float:
        """How long this thread's new request must still wait (never for its own hold)."""
        if self._holder == threading.get_ident():
            return 0.0
        return max(0.0, self._held_until - self._monotonic())
