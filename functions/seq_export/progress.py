"""What a caller in the same process may follow of the function's work, as typed events rather
than log lines (whose wording is for people): each page a subusers' day fetched, and what became
of each queued job. In Lambda nobody follows: the default ``Progress`` tells no one. The local
runner and the CLI's ``--local`` follow through ``wiring.build_dependencies(progress=...)``, or
for a while on the container's dependencies (``Progress.followed``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from seq_export.job_message import JobId
from seq_export.results import ExportResult


@dataclass(frozen=True, slots=True)
class PageFetched:
    """A page of a subusers' day was fetched and spooled."""

    job: JobId
    page: int  # its number in the day (a continuation goes on from its checkpoint's)
    records: int  # the day's records so far, continuations included


@dataclass(frozen=True, slots=True)
class JobEnded:
    """What became of the job of one SQS message: the result it ran to, or the error that failed
    it (the message stays on the queue); ``refused``: the function would not run the job (its
    body or day is invalid). A duplicate delivery answered from the idempotency record runs
    nothing and tells nothing."""

    message_id: str
    result: ExportResult | None = None
    error: Exception | None = None
    refused: bool = False

    def summary(self) -> dict[str, Any]:
        """The result's summary; for an error, ``status`` ``invalid`` (refused) or ``failed``,
        with the error's type and message."""
        if self.result is not None:
            return self.result.summary()
        status = "invalid" if self.refused else "failed"
        return {"status": status, "error": type(self.error).__name__, "reason": str(self.error)}


OnPage = Callable[[PageFetched], None]
OnJob = Callable[[JobEnded], None]


class Progress:
    """Who follows the function's work in this process: ``on_page`` and ``on_job``, each optional."""

    def __init__(self, *, on_page: OnPage | None = None, on_job: OnJob | None = None) -> None:
        self._on_page = on_page
        self._on_job = on_job

    def page_fetched(self, event: PageFetched) -> None:
        if self._on_page is not None:
            self._on_page(event)

    def job_ended(self, event: JobEnded) -> None:
        if self._on_job is not None:
            self._on_job(event)

    @contextmanager
    def followed(self, *, on_page: OnPage | None = None, on_job: OnJob | None = None) -> Iterator[None]:
        """Follow while the block runs, then restore who followed before: the container's
        dependencies outlive the invocations a caller follows."""
        before = self._on_page, self._on_job
        self._on_page, self._on_job = on_page, on_job
        try:
            yield
        finally:
            self._on_page, self._on_job = before
