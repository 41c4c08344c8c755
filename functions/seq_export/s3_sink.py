"""S3 adapter: publishes one day's JSON-lines object.

A day is one object written by one PutObject. S3 shows an object whole or not at all, and the
key is a function of the day alone, so a re-run replaces the object instead of adding a second
copy, and a run that fails before ``publish`` leaves the lake untouched.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import IO, TYPE_CHECKING

from botocore.exceptions import BotoCoreError, ClientError

from seq_export.errors import StorageError, describe_aws_error

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

OBJECT_NAME = "scores.jsonl"
#: Bad answers are kept under ``{prefix}/_quarantine/``: Hive, Athena and Spark skip paths that
#: start with "_", so they never leak into the table.
QUARANTINE = "_quarantine"
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
        try:
            self._client.put_object(
                Bucket=self._bucket,
                Key=key,
                Body=body,
                ContentLength=size,
                ContentType=CONTENT_TYPE,
                Metadata={"records": str(records), "exported-at": exported_at},
            )
        except (ClientError, BotoCoreError) as exc:
            raise StorageError(f"S3 PutObject s3://{self._bucket}/{key} failed: {describe_aws_error(exc)}") from None
        return PublishedObject(bucket=self._bucket, key=key, size=size)

    def quarantine(self, day: str, name: str, body: bytes) -> str:
        """Keep a bad SendGrid answer as received, for a person to inspect; returns its key."""
        key = f"{self._prefix}/{QUARANTINE}/dt={day}/{name}"
        try:
            self._client.put_object(Bucket=self._bucket, Key=key, Body=body, ContentType="application/octet-stream")
        except (ClientError, BotoCoreError) as exc:
            raise StorageError(f"S3 PutObject s3://{self._bucket}/{key} failed: {describe_aws_error(exc)}") from None
        return key
