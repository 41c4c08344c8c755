"""The S3 sink tells a continued day's vanished upload or tail apart from other refusals."""

from __future__ import annotations

import io
from typing import Any, cast

import pytest
from botocore.exceptions import ClientError

from seq_export.errors import StagedDataGoneError, StorageError
from seq_export.s3_sink import S3Sink


class RefusingS3:
    """Answers every call with the given S3 error code."""

    def __init__(self, code: str) -> None:
        self.code = code

    def __getattr__(self, operation: str) -> Any:
        def refuse(**_: Any) -> None:
            raise ClientError({"Error": {"Code": self.code, "Message": "refused"}}, operation)

        return refuse


def sink(code: str) -> S3Sink:
    return S3Sink(cast(Any, RefusingS3(code)), "lake", "seq/subuser_scores", "default")


def test_a_completed_or_aborted_upload_is_staged_data_gone() -> None:
    with pytest.raises(StagedDataGoneError, match=r"CompleteMultipartUpload .*NoSuchUpload"):
        sink("NoSuchUpload").complete_upload("2026-11-22", "upload-1", [(1, "etag")])
    with pytest.raises(StagedDataGoneError, match="UploadPart"):
        sink("NoSuchUpload").upload_part("2026-11-22", "upload-1", 2, io.BytesIO(b"x"), 1)


def test_a_deleted_staged_tail_is_staged_data_gone() -> None:
    with pytest.raises(StagedDataGoneError, match="GetObject"):
        sink("NoSuchKey").read_staged("seq/subuser_scores/_staging/dt=2026-11-22/t.jsonl", io.BytesIO())


def test_other_refusals_stay_plain_storage_errors() -> None:
    with pytest.raises(StorageError) as caught:
        sink("AccessDenied").complete_upload("2026-11-22", "upload-1", [(1, "etag")])

    assert not isinstance(caught.value, StagedDataGoneError)
