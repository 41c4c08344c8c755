"""A day's object in S3, as the commands see it: whether it exists (HeadObject), whether the
bucket does (HeadBucket), its lines, which days of a source are exported, which sources have
folders in the lake, and the objects of a lake written before sources existed. Every key and
partition is ``layout``'s; every line is read by ``record_codec``."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from seq_export.dates import DAY_PATTERN
from seq_export.layout import (
    day_key,
    day_of_partition,
    legacy_day_of_key,
    legacy_partitions_prefix,
    partitions_prefix,
    source_of_folder,
    sources_prefix,
)
from seq_export.models import SOURCE_NAME
from seq_export.record_codec import Line, decode_stream
from seq_export_cli.errors import ServiceError, aws_failure, aws_failures_named

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


def _folders(s3: Any, bucket: str, prefix: str) -> Iterator[str]:
    """The "folders" (common prefixes, delimiter ``/``) under ``prefix``: one LIST per 1,000."""
    with aws_failures_named(f"S3 ListObjectsV2 of s3://{bucket}/{prefix}"):
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix, Delimiter="/"):
            for listed in page.get("CommonPrefixes", []):
                yield str(listed["Prefix"])


def exported_days(s3: Any, bucket: str, prefix: str, source: str) -> list[str]:
    """The days with a partition of ``source`` under ``prefix``, oldest first."""
    days = (
        day_of_partition(prefix, source, listed) for listed in _folders(s3, bucket, partitions_prefix(prefix, source))
    )
    return sorted(day for day in days if DAY_PATTERN.match(day))


def lake_sources(s3: Any, bucket: str, prefix: str) -> list[str]:
    """The sources with a folder under ``prefix``, by name."""
    names = (source_of_folder(prefix, listed) for listed in _folders(s3, bucket, sources_prefix(prefix)))
    return sorted(name for name in names if SOURCE_NAME.fullmatch(name))


def legacy_objects(s3: Any, bucket: str, prefix: str) -> list[tuple[str, str]]:
    """(day, key) of every object of a lake written before sources existed under ``prefix``, by day."""
    found: list[tuple[str, str]] = []
    listed = legacy_partitions_prefix(prefix)
    with aws_failures_named(f"S3 ListObjectsV2 of s3://{bucket}/{listed}"):
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=listed):
            for item in page.get("Contents", []):
                day = legacy_day_of_key(prefix, str(item["Key"]))
                if day is not None and DAY_PATTERN.match(day):
                    found.append((day, str(item["Key"])))
    return sorted(found)


def day_lines(
    s3: Any, bucket: str, prefix: str, source: str, day: str, *, only: tuple[str, str] | None = None
) -> Iterator[Line]:
    """The day's lines, streamed and decoded; with ``only`` (a field and a value), only the lines
    where that field has that value (``record_codec.decode_stream``)."""
    key = day_key(prefix, source, day)
    with aws_failures_named(f"S3 GetObject of s3://{bucket}/{key}"):
        body = s3.get_object(Bucket=bucket, Key=key)["Body"]
        yield from decode_stream(body.iter_chunks(1024 * 1024), only=only)
