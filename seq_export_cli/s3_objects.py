"""A day's object in S3, as the commands see it: whether it exists (HeadObject), whether the
bucket does (HeadBucket), its line count, its lines, and which days are exported."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from seq_export.dates import DAY_PATTERN
from seq_export.layout import day_key, day_of_partition, partitions_prefix
from seq_export_cli.errors import ServiceError, aws, aws_failure

#: An object's (ETag, LastModified): another pair means the object was replaced.
Version = tuple[str, str]


def _not_found(exc: ClientError) -> bool:
    return exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound", "NoSuchBucket")


def head_object(s3: Any, bucket: str, key: str) -> dict[str, Any] | None:
    """HeadObject's answer, or None when there is no such object (S3 answers 404 without a body,
    so a missing bucket looks the same: ``require_bucket`` tells them apart)."""
    try:
        return dict(s3.head_object(Bucket=bucket, Key=key))
    except ClientError as exc:
        if _not_found(exc):
            return None
        raise aws_failure(f"S3 HeadObject of s3://{bucket}/{key}", exc) from None
    except BotoCoreError as exc:  # no credentials or region is a configuration to fix (exit 3)
        raise aws_failure(f"S3 HeadObject of s3://{bucket}/{key}", exc) from None


def require_bucket(s3: Any, bucket: str) -> None:
    """A configuration pointing at a bucket that does not exist is an error, not "not exported".
    Other refusals (a reader without s3:ListBucket gets 403 here) are left to the object calls."""
    try:
        s3.head_bucket(Bucket=bucket)
    except ClientError as exc:
        if _not_found(exc):
            raise ServiceError(f"S3 bucket {bucket} does not exist (HeadBucket answered 404)") from None
    except BotoCoreError as exc:
        raise aws_failure(f"S3 HeadBucket of {bucket}", exc) from None


def head_version(s3: Any, bucket: str, key: str) -> Version | None:
    """(ETag, LastModified) of an object, or None when there is none."""
    answer = head_object(s3, bucket, key)
    if answer is None:
        return None
    return str(answer.get("ETag", "")), str(answer.get("LastModified", ""))


def count_lines(chunks: Iterable[bytes]) -> int:
    """Lines of a JSON-lines body streamed in chunks; a last line without ``\\n`` counts too."""
    lines = 0
    last = b""
    for chunk in chunks:
        if chunk:
            lines += chunk.count(b"\n")
            last = chunk[-1:]
    return lines + (1 if last not in (b"", b"\n") else 0)


def exported_days(s3: Any, bucket: str, prefix: str) -> list[str]:
    """The days with a partition under ``prefix``, oldest first (one LIST per 1,000 days)."""
    days: list[str] = []
    with aws(f"S3 ListObjectsV2 of s3://{bucket}/{partitions_prefix(prefix)}"):
        for page in s3.get_paginator("list_objects_v2").paginate(
            Bucket=bucket, Prefix=partitions_prefix(prefix), Delimiter="/"
        ):
            for listed in page.get("CommonPrefixes", []):
                day = day_of_partition(prefix, listed["Prefix"])
                if DAY_PATTERN.match(day):
                    days.append(day)
    return sorted(days)


def day_lines(
    s3: Any, bucket: str, prefix: str, day: str, *, containing: str | None = None
) -> Iterator[dict[str, Any]]:
    """The day's JSON lines, streamed; with ``containing``, only lines with that text are parsed."""
    key = day_key(prefix, day)
    with aws(f"S3 GetObject of s3://{bucket}/{key}"):
        body = s3.get_object(Bucket=bucket, Key=key)["Body"]
        for raw in body.iter_lines(chunk_size=1024 * 1024):
            if raw and (containing is None or containing.encode() in raw):
                yield json.loads(raw)
