"""S3 adapter: publishes one day's JSON-lines object.

A day is one object written by one PutObject. S3 shows an object whole or not at all, and the
key is a function of the day alone, so a re-run replaces the object instead of adding a second
copy, and a run that fails before ``publish`` leaves the lake untouched. A day continued across
Lambda invocations is a multipart upload of the same key: invisible until completed, so the
same promise holds (incomplete uploads are aborted by the bucket's lifecycle rule).
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from seq_export.errors import StorageError, describe_aws_error

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

OBJECT_NAME = "scores.jsonl"
#: Bad answers are kept under ``{prefix}/_quarantine/``: Hive, Athena and Spark skip paths that
#: start with "_", so they never leak into the table.
QUARANTINE = "_quarantine"
#: Lines of a day cut short by the Lambda time limit, too few for a multipart part (< 5 MiB).
STAGING = "_staging"
MIN_PART_BYTES = 5 * 1024 * 1024  # S3's minimum for every part but the last
CONTENT_TYPE = "application/x-ndjson; charset=utf-8"


@dataclass(frozen=True, slots=True)
class PublishedObject:
    bucket: str
    key: str
    size: int


class S3Sink:
    def __init__(self, client: S3Client, bucket: str, prefix: str) -> None:
        self._client = client
        self._bucket = bucket
        self._prefix = prefix.strip("/")

    def key_for(self, day: str) -> str:
        """Hive-style partition key, ``{prefix}/dt=YYYY-MM-DD/scores.jsonl`` (DESIGN.md)."""
        return f"{self._prefix}/dt={day}/{OBJECT_NAME}"

    def publish(self, day: str, body: IO[bytes], *, size: int, records: int, exported_at: str) -> PublishedObject:
        key = self.key_for(day)
        self._call(
            "PutObject",
            key,
            Bucket=self._bucket,
            Key=key,
            Body=body,
            ContentLength=size,
            ContentType=CONTENT_TYPE,
            Metadata={"records": str(records), "exported-at": exported_at},
        )
        return PublishedObject(bucket=self._bucket, key=key, size=size)

    def exists(self, day: str) -> bool:
        """Whether the day is published. A listing, not HeadObject: it needs only s3:ListBucket
        on the partition prefixes, where HeadObject would need read access to the data itself."""
        key = self.key_for(day)
        answer = self._call("ListObjectsV2", key, Bucket=self._bucket, Prefix=key, MaxKeys=1)
        return any(item.get("Key") == key for item in answer.get("Contents", []))

    def quarantine(self, day: str, name: str, body: bytes) -> str:
        """Keep a bad SendGrid answer as received, for a person to inspect; returns its key."""
        key = f"{self._prefix}/{QUARANTINE}/dt={day}/{name}"
        self._call("PutObject", key, Bucket=self._bucket, Key=key, Body=body, ContentType="application/octet-stream")
        return key

    # -- continuation across invocations ----------------------------------------------------
    def start_upload(self, day: str) -> str:
        key = self.key_for(day)
        answer = self._call("CreateMultipartUpload", key, Bucket=self._bucket, Key=key, ContentType=CONTENT_TYPE)
        return str(answer["UploadId"])

    def upload_part(self, day: str, upload_id: str, number: int, body: IO[bytes], size: int) -> str:
        key = self.key_for(day)
        answer = self._call(
            "UploadPart",
            key,
            Bucket=self._bucket,
            Key=key,
            UploadId=upload_id,
            PartNumber=number,
            Body=body,
            ContentLength=size,
        )
        return str(answer["ETag"])

    def complete_upload(self, day: str, upload_id: str, parts: Sequence[tuple[int, str]]) -> PublishedObject:
        key = self.key_for(day)
        self._call(
            "CompleteMultipartUpload",
            key,
            Bucket=self._bucket,
            Key=key,
            UploadId=upload_id,
            MultipartUpload={"Parts": [{"PartNumber": number, "ETag": etag} for number, etag in parts]},
        )
        return PublishedObject(bucket=self._bucket, key=key, size=0)

    def stage(self, day: str, body: IO[bytes], size: int) -> str:
        key = f"{self._prefix}/{STAGING}/dt={day}/{secrets.token_hex(16)}.jsonl"
        self._call("PutObject", key, Bucket=self._bucket, Key=key, Body=body, ContentLength=size)
        return key

    def read_staged(self, key: str, into: IO[bytes]) -> None:
        answer = self._call("GetObject", key, Bucket=self._bucket, Key=key)
        for chunk in answer["Body"].iter_chunks(1024 * 1024):
            into.write(chunk)

    def delete_staged(self, key: str) -> None:
        self._call("DeleteObject", key, Bucket=self._bucket, Key=key)

    def _call(self, operation: str, key: str, **kwargs: Any) -> Any:
        method = getattr(self._client, _snake(operation))
        try:
            return method(**kwargs)
        except (ClientError, BotoCoreError) as exc:
            raise StorageError(f"S3 {operation} s3://{self._bucket}/{key} failed: {describe_aws_error(exc)}") from None


def _snake(name: str) -> str:
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in name).lstrip("_")
