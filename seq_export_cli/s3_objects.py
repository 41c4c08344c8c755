"""A day's object in S3, as the commands see it: whether it exists (HeadObject), whether the
bucket does (HeadBucket), and its line count."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from seq_export.errors import describe_aws_error
from seq_export_cli.errors import ServiceError

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
        raise ServiceError(f"S3 HeadObject of s3://{bucket}/{key} failed: {describe_aws_error(exc)}") from None
    except BotoCoreError as exc:
        raise ServiceError(f"S3 HeadObject of s3://{bucket}/{key} failed: {describe_aws_error(exc)}") from None


def require_bucket(s3: Any, bucket: str) -> None:
    """A configuration pointing at a bucket that does not exist is an error, not "not exported".
    Other refusals (a reader without s3:ListBucket gets 403 here) are left to the object calls."""
    try:
        s3.head_bucket(Bucket=bucket)
    except ClientError as exc:
        if _not_found(exc):
            raise ServiceError(f"S3 bucket {bucket} does not exist (HeadBucket answered 404)") from None
    except BotoCoreError as exc:
        raise ServiceError(f"S3 HeadBucket of {bucket} failed: {describe_aws_error(exc)}") from None


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
