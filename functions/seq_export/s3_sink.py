"""S3 adapter: publishes one day's JSON-lines object (keys from ``layout``).

A day is one object written by one PutObject. S3 shows an object whole or not at all, and the
key is a function of the source and the day alone (one sink per source and kind), so a re-run
replaces the object instead of adding a second copy, and a run that fails before ``publish``
leaves the lake untouched. A day continued across Lambda invocations is a multipart upload of
the same key: invisible until completed, so the same promise holds (incomplete uploads are
aborted by the bucket's lifecycle rule).
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import IO, TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from seq_export import layout, record_codec
from seq_export.dates import compact_timestamp
from seq_export.errors import SeqProtocolError, StagedDataGoneError, StorageError, describe_aws_error
from seq_export.observability import logger

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

MIN_PART_BYTES = 5 * 1024 * 1024  # S3's minimum for every part but the last


class S3Sink:
    def __init__(
        self,
        client: S3Client,
        bucket: str,
        prefix: str,
        source: str,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._client = client
        self._bucket = bucket
        self._prefix = layout.normal_prefix(prefix)
        self._source = source
        self._clock = clock

    def key_for(self, day: str) -> str:
        """Hive-style partition key, ``{prefix}/source=NAME/dt=YYYY-MM-DD/scores.jsonl`` (``layout.day_key``)."""
        return layout.day_key(self._prefix, self._source, day)

    def publish(self, day: str, body: IO[bytes], *, size: int, records: int, exported_at: str) -> str:
        """Put the day's object whole; returns its key."""
        key = self.key_for(day)
        self._call(
            "PutObject",
            key,
            Bucket=self._bucket,
            Key=key,
            Body=body,
            ContentLength=size,
            ContentType=record_codec.CONTENT_TYPE,
            Metadata={layout.RECORDS_METADATA: str(records), layout.EXPORTED_AT_METADATA: exported_at},
        )
        return key

    def exists(self, day: str) -> bool:
        """Whether the day is published."""
        return self.published_at(day) is not None

    def published_at(self, day: str) -> datetime | None:
        """When the day's object was last written, or None if it is not published. A listing, not
        HeadObject: it needs only s3:ListBucket on the partition prefixes, where HeadObject would
        need read access to the data itself."""
        key = self.key_for(day)
        answer = self._call("ListObjectsV2", key, Bucket=self._bucket, Prefix=key, MaxKeys=1)
        for item in answer.get("Contents", []):
            if item.get("Key") == key:
                return item.get("LastModified") or datetime.min.replace(tzinfo=UTC)
        return None

    def quarantine(self, day: str, name: str, body: bytes) -> str:
        """Keep a bad SendGrid answer as received, for a person to inspect; returns its key."""
        key = layout.quarantine_key(self._prefix, self._source, day, name)
        self._call("PutObject", key, Bucket=self._bucket, Key=key, Body=body, ContentType="application/octet-stream")
        return key

    def keep_aside(self, day: str, error: SeqProtocolError) -> None:
        """Quarantine the answer a protocol error carries, so nothing SendGrid sent is silently
        lost, and name its key in the error. A failure to keep it is logged, never raised: the
        day's own error is the one to report."""
        if not error.raw:
            return
        name = f"{compact_timestamp(self._clock())}-{secrets.token_hex(4)}.body"
        try:
            key = self.quarantine(day, name, error.raw)
        except StorageError as exc:
            logger.error("Could not keep the bad answer aside", problem=str(exc), excerpt=_excerpt(error.raw))
            return
        error.args = (f"{error.args[0]} [answer kept at {key}]",)
        logger.error("Bad answer kept aside", s3_key=key, size=len(error.raw), excerpt=_excerpt(error.raw))

    # -- continuation across invocations ----------------------------------------------------
    def start_upload(self, day: str) -> str:
        key = self.key_for(day)
        answer = self._call(
            "CreateMultipartUpload", key, Bucket=self._bucket, Key=key, ContentType=record_codec.CONTENT_TYPE
        )
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

    def complete_upload(self, day: str, upload_id: str, parts: Sequence[tuple[int, str]]) -> str:
        """Make the day's object of the uploaded parts; returns its key."""
        key = self.key_for(day)
        self._call(
            "CompleteMultipartUpload",
            key,
            Bucket=self._bucket,
            Key=key,
            UploadId=upload_id,
            MultipartUpload={"Parts": [{"PartNumber": number, "ETag": etag} for number, etag in parts]},
        )
        return key

    def stage(self, day: str, body: IO[bytes], size: int) -> str:
        key = layout.staging_key(self._prefix, self._source, day, f"{secrets.token_hex(16)}.jsonl")
        self._call("PutObject", key, Bucket=self._bucket, Key=key, Body=body, ContentLength=size)
        return key

    def read_staged(self, key: str, into: IO[bytes]) -> None:
        answer = self._call("GetObject", key, Bucket=self._bucket, Key=key)
        for chunk in answer["Body"].iter_chunks(1024 * 1024):
            into.write(chunk)

    def delete_staged(self, key: str) -> None:
        self._call("DeleteObject", key, Bucket=self._bucket, Key=key)

    # -- split points for key ranges ---------------------------------------------------------
    def split_points(self) -> tuple[int, ...]:
        """The user ids the source's last finished day was cut at; none when there are none or
        they cannot be read: they only make a day faster, so they never fail one."""
        key = layout.split_points_key(self._prefix, self._source)
        try:
            body = self._call("GetObject", key, Bucket=self._bucket, Key=key)["Body"].read()
            return tuple(int(number) for number in json.loads(body)["user_ids"])
        except (StorageError, BotoCoreError, OSError) as exc:  # none yet (404, or 403 unlisted), or cut off
            logger.info("No split points to read; the day is fetched in order", problem=str(exc))
            return ()
        except (ValueError, KeyError, TypeError) as exc:
            logger.warning("Split points unreadable; the day is fetched in order", problem=str(exc))
            return ()

    def save_split_points(self, day: str, user_ids: Sequence[int]) -> None:
        """Leave ``day``'s split points for the next day (none: fetch it sequentially). Logged, not
        raised, on failure: the day is already published."""
        key = layout.split_points_key(self._prefix, self._source)
        body = json.dumps({"date": day, "user_ids": list(user_ids)}).encode()
        try:
            self._call("PutObject", key, Bucket=self._bucket, Key=key, Body=body, ContentType="application/json")
        except StorageError as exc:
            logger.warning("Split points not saved; the next day is fetched sequentially", problem=str(exc))

    def _call(self, operation: str, key: str, **kwargs: Any) -> Any:
        method = getattr(self._client, _snake(operation))
        try:
            return method(**kwargs)
        except (ClientError, BotoCoreError) as exc:
            problem = f"S3 {operation} s3://{self._bucket}/{key} failed: {describe_aws_error(exc)}"
            code = getattr(exc, "response", {}).get("Error", {}).get("Code")
            if code == "NoSuchUpload" or (code == "NoSuchKey" and operation == "GetObject"):
                raise StagedDataGoneError(problem) from None
            raise StorageError(problem) from None


def _snake(name: str) -> str:
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in name).lstrip("_")


def _excerpt(raw: bytes, limit: int = 300) -> str:
    """The start of a body for a log line (SendGrid answers carry no credentials)."""
    return raw[:limit].decode("utf-8", errors="replace")
