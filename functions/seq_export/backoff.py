"""How long to wait before trying again: the one backoff formula of the function and the CLI.

The wait before retry ``n`` (1 for the first) grows exponentially, ``first * 2**(n-1)``, up to
``cap``, then is scaled by a draw in ``[low, high)``: ``(0, 1)`` is full jitter, so clients that
failed together do not retry together; ``(1, 1)`` is no jitter (a steady poll, or a queue delay
that must be exact). ``within`` caps one pause at the time a caller has left.

Each retry loop keeps its own budget (how many tries) and says in its module's docstring where
its retries live; only the shape of the wait is decided here. Pure standard library: the CLI
imports it without the function's dependencies.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import dataclass

#: Doubling stops growing the ceiling long before this (any ``cap`` is reached first); the bound
#: only keeps ``first * 2**n`` a finite float for absurd retry numbers.
_MAX_DOUBLINGS = 64


@dataclass(frozen=True, slots=True)
class Backoff:
    """Exponential waits from ``first`` seconds, capped at ``cap``, scaled by a draw in ``[low, high)``."""

    first: float
    cap: float
    low: float = 0.0
    high: float = 1.0

    @classmethod
    def exact(cls, first: float, cap: float) -> Backoff:
        """No jitter: each wait is its ceiling (a delay that must add up, as the 202 budget)."""
        return cls(first=first, cap=cap, low=1.0, high=1.0)

    @classmethod
    def steady(cls, seconds: float) -> Backoff:
        """The same wait every time, no jitter: a poll."""
        return cls.exact(seconds, seconds)

    def ceiling(self, retry: int) -> float:
        """The wait before retry ``retry`` (1 for the first) before jitter: ``first * 2**(retry-1)``, capped."""
        return min(self.cap, math.ldexp(self.first, min(max(retry - 1, 0), _MAX_DOUBLINGS)))

    def pause(self, retry: int, draw: Callable[[], float] = random.random, *, within: float = math.inf) -> float:
        """The wait before retry ``retry``: its ceiling scaled by ``draw()`` (a number in [0, 1))
        mapped onto ``[low, high)``, and no longer than ``within``."""
        scale = self.low if self.low == self.high else self.low + (self.high - self.low) * draw()
        return min(within, self.ceiling(retry) * scale)
