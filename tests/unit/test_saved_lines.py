"""A day's lines saved between invocations: a part once the spool holds 5 MiB, a staged tail
below that, and the day's object made of them; each as the S3 calls the sink makes."""

from __future__ import annotations

import io
from typing import Any, cast

from seq_export.job_message import Checkpoint, Counters
from seq_export.s3_sink import MIN_PART_BYTES, S3Sink
from seq_export.saved_lines import SavedLines

DAY = "2026-11-22"
KEY = f"seq/subuser_scores/source=default/dt={DAY}/scores.jsonl"


class RecordingS3:
    """Records every call as (operation, arguments, body read); answers as S3 does."""

    def __init__(self, staged: bytes = b"") -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.staged = staged

    def __getattr__(self, operation: str) -> Any:
        def call(**kwargs: Any) -> dict[str, Any]:
            if "Body" in kwargs:
                kwargs["Body"] = kwargs["Body"].read()
            self.calls.append((operation, kwargs))
            if operation == "create_multipart_upload":
                return {"UploadId": "upload-1"}
            if operation == "upload_part":
                return {"ETag": f'"etag-{kwargs["PartNumber"]}"'}
            if operation == "get_object":
                return {"Body": _Chunks(self.staged)}
            return {}

        return call

    def operations(self) -> list[str]:
        return [operation for operation, _ in self.calls]


class _Chunks:
    def __init__(self, body: bytes) -> None:
        self.body = body

    def iter_chunks(self, size: int) -> list[bytes]:
        return [self.body[i : i + size] for i in range(0, len(self.body), size)]


def sink(s3: RecordingS3) -> S3Sink:
    return S3Sink(cast(Any, s3), "lake", "seq/subuser_scores", "default")


def spool(size: int) -> io.BytesIO:
    """A spool as the export leaves it: written, positioned at its end."""
    written = io.BytesIO()
    written.write(b"x" * size)
    return written


def test_a_spool_under_a_part_is_staged_as_the_tail_and_the_upload_left_as_it_was() -> None:
    s3 = RecordingS3()
    before = SavedLines(upload_id="upload-1", parts=((1, '"etag-1"'),), uploaded_bytes=MIN_PART_BYTES)

    saved = before.save(sink(s3), DAY, spool(10))

    assert s3.operations() == ["put_object"]
    assert s3.calls[0][1]["Body"] == b"x" * 10
    assert saved.tail_key is not None
    assert saved.tail_key.startswith(f"seq/subuser_scores/_staging/source=default/dt={DAY}/")
    assert (saved.upload_id, saved.parts, saved.uploaded_bytes) == ("upload-1", before.parts, MIN_PART_BYTES)


def test_an_empty_spool_saves_no_tail() -> None:
    s3 = RecordingS3()

    saved = SavedLines(tail_key="old-tail").save(sink(s3), DAY, spool(0))

    assert s3.calls == []
    assert saved.tail_key is None


def test_a_spool_of_a_part_starts_the_upload_once_and_appends_the_next_part_number() -> None:
    s3 = RecordingS3()

    first = SavedLines(tail_key="old-tail").save(sink(s3), DAY, spool(MIN_PART_BYTES))
    second = first.save(sink(s3), DAY, spool(MIN_PART_BYTES + 1))

    assert s3.operations() == ["create_multipart_upload", "upload_part", "upload_part"]
    assert [call["PartNumber"] for operation, call in s3.calls if operation == "upload_part"] == [1, 2]
    assert second == SavedLines(
        upload_id="upload-1",
        parts=((1, '"etag-1"'), (2, '"etag-2"')),
        uploaded_bytes=2 * MIN_PART_BYTES + 1,
        tail_key=None,
    )


def test_a_day_never_uploaded_is_published_whole_by_one_put_with_its_metadata() -> None:
    s3 = RecordingS3()

    key, size = SavedLines().publish(sink(s3), DAY, spool(42), records=3, exported_at="2026-11-23T06:00:00.000Z")

    assert (key, size) == (KEY, 42)
    [(operation, call)] = s3.calls
    assert (operation, call["Key"], call["Body"], call["ContentLength"]) == ("put_object", KEY, b"x" * 42, 42)
    assert call["Metadata"]["records"] == "3"


def test_an_uploaded_day_is_completed_with_the_spool_as_its_last_part() -> None:
    s3 = RecordingS3()
    saved = SavedLines(upload_id="upload-1", parts=((1, '"etag-1"'),), uploaded_bytes=MIN_PART_BYTES)

    key, size = saved.publish(sink(s3), DAY, spool(7), records=3, exported_at="t")

    assert (key, size) == (KEY, MIN_PART_BYTES + 7)
    assert s3.operations() == ["upload_part", "complete_multipart_upload"]
    assert s3.calls[1][1]["MultipartUpload"] == {
        "Parts": [{"PartNumber": 1, "ETag": '"etag-1"'}, {"PartNumber": 2, "ETag": '"etag-2"'}]
    }


def test_an_uploaded_day_with_an_empty_spool_is_completed_with_its_parts_alone() -> None:
    s3 = RecordingS3()
    saved = SavedLines(upload_id="upload-1", parts=((1, '"etag-1"'),), uploaded_bytes=MIN_PART_BYTES)

    _, size = saved.publish(sink(s3), DAY, spool(0), records=3, exported_at="t")

    assert size == MIN_PART_BYTES
    assert s3.operations() == ["complete_multipart_upload"]


def test_the_tail_is_read_back_and_deleted_only_when_there_is_one() -> None:
    s3 = RecordingS3(staged=b"saved lines\n")
    into = io.BytesIO()

    SavedLines(tail_key="tail").read_tail(sink(s3), into)
    SavedLines(tail_key="tail").delete_tail(sink(s3))
    SavedLines().read_tail(sink(s3), into)
    SavedLines().delete_tail(sink(s3))

    assert into.getvalue() == b"saved lines\n"
    assert s3.operations() == ["get_object", "delete_object"]


def test_a_checkpoint_carries_the_saved_lines_and_keeps_its_other_fields() -> None:
    checkpoint = Checkpoint(after_key="101000", next_page=2, exported_at="t", counts=Counters(records=1000))
    saved = SavedLines(upload_id="upload-1", parts=((1, '"etag-1"'),), uploaded_bytes=9, tail_key="tail")

    carried = saved.into(checkpoint)

    assert SavedLines.of(carried) == saved
    assert (carried.after_key, carried.next_page, carried.counts) == ("101000", 2, Counters(records=1000))
    assert SavedLines.of(checkpoint) == SavedLines()
