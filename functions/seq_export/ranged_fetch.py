"""Fetch one day as key ranges at once, then join them into the day's lines in order.

Where each step lives: ranges are *planned* from the source's split points (``key_ranges.plan``,
called by ``export_subusers``), *fetched* here by at most ``workers`` threads sharing one
``SeqClient`` (whose ``RequestSlots`` bound the requests in flight and slow down on a 429),
*checked* page by page (``key_ranges.take_page``), and *joined* here (``join``): each range's
lines in index order, with what each range found past its stop compared byte for byte with the
start of the ranges after it. Any doubt raises ``UntrustedCursor``; the caller then fetches the day
sequentially from its start, and nothing of the ranges is published.

No retries here: a page's retries are ``seq_client``'s, and an error of any range stops them all
and is raised as it came (a 202 re-schedules the day, a bad answer is quarantined).
"""

from __future__ import annotations

import hashlib
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import IO

from seq_export import record_codec
from seq_export.job_message import Job
from seq_export.key_ranges import KeyRange, UntrustedCursor, take_page
from seq_export.models import ScoreRecord, validate_page
from seq_export.s3_sink import S3Sink
from seq_export.seq_client import SeqClient

#: Staged chunks a continuation may carry: each is a key of about 100 bytes in the message, whose
#: limit is SQS's 256 KB; past it the day is fetched in order instead.
MAX_STAGED_CHUNKS = 1_000

#: Called with each checked page's kept records, how long its fetch took and whether the day
#: ended with it, from the fetching threads.
OnPage = Callable[[list[ScoreRecord], float, bool], None]


@dataclass
class RangedDay:
    """What the ranges hold after one invocation: their states, and the lines each fetched in this
    invocation (spools, by range index) that are not staged yet."""

    ranges: tuple[KeyRange, ...]
    spools: dict[int, IO[bytes]] = field(default_factory=dict)

    @property
    def finished(self) -> bool:
        return all(key_range.done for key_range in self.ranges)

    def save(self, sink: S3Sink, day: str) -> tuple[KeyRange, ...]:
        """Stage each range's new lines as its next chunk; the ranges as a checkpoint carries them."""
        saved = []
        for key_range in self.ranges:
            spool = self.spools.get(key_range.index)
            size = _rewind(spool) if spool is not None else 0
            chunks = (
                (*key_range.chunks, sink.stage(day, spool, size)) if spool is not None and size else key_range.chunks
            )
            saved.append(replace(key_range, chunks=chunks))
        return tuple(saved)

    def join(self, sink: S3Sink, into: IO[bytes]) -> None:
        """Write every range's lines into ``into`` in order, then check that what each range found
        past its stop is exactly what the next ranges start with (``UntrustedCursor`` if not)."""
        starts = []
        for key_range in self.ranges:
            starts.append(into.tell())
            for chunk in key_range.chunks:
                sink.read_staged(chunk, into)
            spool = self.spools.get(key_range.index)
            if spool is not None:
                _rewind(spool)
                shutil.copyfileobj(spool, into)
        end = into.tell()
        for key_range, after in zip(self.ranges, starts[1:], strict=False):
            if key_range.ended_day and end - after != key_range.overflow_bytes:
                raise UntrustedCursor(f"range {key_range.index}: the day ended in it, yet later ranges hold more")
            if key_range.overflow_bytes:
                into.seek(after)
                past_stop = into.read(key_range.overflow_bytes)
                if hashlib.sha256(past_stop).hexdigest() != key_range.overflow_sha256:
                    raise UntrustedCursor(
                        f"range {key_range.index}: the records past its stop are not the next range's first records"
                    )
        into.seek(end)

    @property
    def staged_chunks(self) -> int:
        """How many staged chunks the ranges point at (each a key in the continuation message)."""
        return sum(len(key_range.chunks) for key_range in self.ranges)

    def close(self) -> None:
        for spool in self.spools.values():
            spool.close()


class RangedFetch:
    """Fetches the unfinished ranges of a day, ``workers`` at a time."""

    def __init__(
        self,
        client: SeqClient,
        *,
        workers: int,
        spool_dir: str | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._client = client
        self.workers = workers
        self._spool_dir = spool_dir
        self._monotonic = monotonic

    def fetch(
        self,
        job: Job,
        ranges: Sequence[KeyRange],
        *,
        exported_at: str,
        on_page: OnPage,
        out_of_time: Callable[[], bool],
    ) -> RangedDay:
        """Fetch until every range is done or ``out_of_time()`` says to stop (checked before every
        page but the invocation's first few, so each invocation moves the day on)."""
        run = _Run(
            self._client,
            job,
            ranges,
            exported_at,
            on_page=on_page,
            out_of_time=out_of_time,
            spool_dir=self._spool_dir,
            monotonic=self._monotonic,
        )
        todo = [key_range.index for key_range in ranges if not key_range.done]
        with ThreadPoolExecutor(max_workers=max(1, min(self.workers, len(todo))), thread_name_prefix="range") as pool:
            for index in todo:
                pool.submit(run.fetch_range, index)
        day = RangedDay(tuple(run.states[key_range.index] for key_range in ranges), run.spools)
        if run.error is not None:
            day.close()
            raise run.error
        return day


class _Run:
    """One invocation's fetch of the ranges: their states, spools and first error, under a lock."""

    def __init__(
        self,
        client: SeqClient,
        job: Job,
        ranges: Sequence[KeyRange],
        exported_at: str,
        *,
        on_page: OnPage,
        out_of_time: Callable[[], bool],
        spool_dir: str | None,
        monotonic: Callable[[], float],
    ) -> None:
        self._client = client
        self._job = job
        self._exported_at = exported_at
        self._on_page = on_page
        self._out_of_time = out_of_time
        self._spool_dir = spool_dir
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._pages = 0
        self.states = {key_range.index: key_range for key_range in ranges}
        self.spools: dict[int, IO[bytes]] = {}
        self.error: BaseException | None = None

    def fetch_range(self, index: int) -> None:
        try:
            self._fetch_range(index)
        except BaseException as exc:  # noqa: BLE001 - the first error stops every range, and is raised by fetch
            with self._lock:
                self.error = self.error or exc

    def _stop(self) -> bool:
        with self._lock:
            if self.error is not None:
                return True
            started = self._pages > 0
        return started and self._out_of_time()

    def _fetch_range(self, index: int) -> None:
        key_range = self.states[index]
        job = self._job
        while not key_range.done and not self._stop():
            number = key_range.pages + 1
            what = f"{job.id} range {index}"
            where = f"{what} page {number}"
            asked = self._monotonic()
            page = self._client.page(job.date, after_key=key_range.after_key, number=number, where=where)
            fetch_seconds = self._monotonic() - asked
            with self._lock:
                self._pages += 1
            records = validate_page(page, source=job.source, day=job.date, what=what)
            taken = take_page(key_range, records, page.next_after_key, where=where)
            key_range = taken.following
            if taken.overflow:
                past_stop = record_codec.encode(taken.overflow, self._exported_at)
                key_range = replace(
                    key_range,
                    overflow_bytes=len(past_stop),
                    overflow_sha256=hashlib.sha256(past_stop).hexdigest(),
                )
            self._spool(index).write(record_codec.encode(taken.kept, self._exported_at))
            self._on_page(taken.kept, fetch_seconds, page.next_after_key is None)
            with self._lock:
                self.states[index] = key_range

    def _spool(self, index: int) -> IO[bytes]:
        with self._lock:
            if index not in self.spools:
                self.spools[index] = tempfile.TemporaryFile(dir=self._spool_dir)  # noqa: SIM115 - closed by RangedDay
            return self.spools[index]


def _rewind(spool: IO[bytes]) -> int:
    size = spool.seek(0, 2)
    spool.seek(0)
    return size
