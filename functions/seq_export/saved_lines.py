"""Where a day cut short by the Lambda time limit keeps its lines between invocations.

The lines so far are parts of an S3 multipart upload of the day's object (a part is at least
5 MiB, S3's minimum for all but the last) and, below that size, one small staged object (the
tail) that the next invocation reads back into its spool. The day's object appears only when
the last invocation completes the upload, or puts the object whole when the day never needed a
part. This type is that state as a checkpoint carries it, and the one place a part is appended.
No retries here: each call is one ``S3Sink`` call, which says where its errors go.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import IO

from seq_export.job_message import Checkpoint
from seq_export.s3_sink import MIN_PART_BYTES, S3Sink


@dataclass(frozen=True, slots=True)
class SavedLines:
    """A day's lines saved by earlier invocations: the upload's parts (and their bytes) and the tail."""

    upload_id: str | None = None
    parts: tuple[tuple[int, str], ...] = ()
    uploaded_bytes: int = 0
    tail_key: str | None = None

    @classmethod
    def of(cls, checkpoint: Checkpoint) -> SavedLines:
        """What ``checkpoint`` points at (nothing, at a day's first invocation)."""
        return cls(checkpoint.upload_id, checkpoint.parts, checkpoint.uploaded_bytes, checkpoint.tail_key)

    def into(self, checkpoint: Checkpoint) -> Checkpoint:
        """``checkpoint`` pointing at these lines."""
        return replace(
            checkpoint,
            upload_id=self.upload_id,
            parts=self.parts,
            uploaded_bytes=self.uploaded_bytes,
            tail_key=self.tail_key,
        )

    def read_tail(self, sink: S3Sink, spool: IO[bytes]) -> None:
        """Put the staged tail back at the start of this invocation's spool."""
        if self.tail_key:
            sink.read_staged(self.tail_key, spool)

    def save(self, sink: S3Sink, day: str, spool: IO[bytes]) -> SavedLines:
        """Save the spool for the next invocation: a new part when it is big enough, else a new
        tail (or none, when the spool is empty). This tail is left in place: the caller deletes it
        (``delete_tail``) once the continuation that points at the new lines is sent."""
        size = _rewind(spool)
        if size < MIN_PART_BYTES:
            return replace(self, tail_key=sink.stage(day, spool, size) if size else None)
        upload_id = self.upload_id or sink.start_upload(day)
        return replace(self, tail_key=None)._with_part(sink, day, upload_id, spool, size)

    def publish(self, sink: S3Sink, day: str, spool: IO[bytes], *, records: int, exported_at: str) -> tuple[str, int]:
        """Make the day's object of the saved parts and the spool (which holds the tail): one
        PutObject when nothing was uploaded, else the upload completed. Returns the object's key
        and its size in bytes."""
        size = _rewind(spool)
        if self.upload_id is None:
            return sink.publish(day, spool, size=size, records=records, exported_at=exported_at), size
        completed = self._with_part(sink, day, self.upload_id, spool, size) if size else self
        return sink.complete_upload(day, self.upload_id, completed.parts), self.uploaded_bytes + size

    def delete_tail(self, sink: S3Sink) -> None:
        """Delete the staged tail these lines were read with, once nothing points at it."""
        if self.tail_key:
            sink.delete_staged(self.tail_key)

    def _with_part(self, sink: S3Sink, day: str, upload_id: str, spool: IO[bytes], size: int) -> SavedLines:
        """These lines and the spool uploaded as the next part of ``upload_id``."""
        number = len(self.parts) + 1
        etag = sink.upload_part(day, upload_id, number, spool, size)
        parts = (*self.parts, (number, etag))
        return replace(self, upload_id=upload_id, parts=parts, uploaded_bytes=self.uploaded_bytes + size)


def _rewind(spool: IO[bytes]) -> int:
    """The spool's size, read from its start next."""
    size = spool.tell()
    spool.seek(0)
    return size
