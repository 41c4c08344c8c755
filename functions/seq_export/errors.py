"""Domain errors.

Adapters translate SDK and HTTP failures into these, so the use cases decide
what to do by type (retry through the queue, fail fast, give up) without knowing botocore or
requests. Messages say what failed and where; none of them ever carries the API key.
"""

from __future__ import annotations


class SeqExportError(Exception):
    """Base of every error this package raises on purpose."""


class ConfigError(SeqExportError):
    """A required setting is missing or malformed."""


class InvalidEventError(SeqExportError):
    """The Lambda event (or a retry message) has a shape this function does not accept."""


class SeqApiError(SeqExportError):
    """SendGrid answered with an error status; ``status`` is the HTTP code (0 for no answer)."""

    def __init__(self, message: str, *, status: int = 0) -> None:
        super().__init__(message)
        self.status = status


class SeqBadRequestError(SeqApiError):
    """400: the request is wrong (for example a date outside SEQ's 90-day window)."""


class SeqAuthError(SeqApiError):
    """401/403: the API key is wrong, revoked, or lacks the scope for SEQ."""


class SeqNotFoundError(SeqApiError):
    """404: the endpoint is not there for this account or region."""


class SeqUnavailableError(SeqApiError):
    """5xx, 429, timeouts or connection errors that outlasted the bounded retries."""


class SeqProtocolError(SeqExportError):
    """SendGrid answered 200 with something the contract does not allow (bad body, stuck cursor).

    ``raw`` holds the offending answer's body when known, so the export can keep it aside.
    """

    def __init__(self, message: str, *, raw: bytes | None = None) -> None:
        super().__init__(message)
        self.raw = raw


class InvalidRecordError(SeqProtocolError):
    """A score record breaks the spec; the day is failed rather than published with it."""


class StorageError(SeqExportError):
    """S3, DynamoDB or SQS refused a write; the day is not published and a re-run converges."""


class StagedDataGoneError(StorageError):
    """A continued day's multipart upload or staged tail is gone: a duplicate of the same
    continuation completed the day or carried it on (or S3's lifecycle rule removed it)."""


class LatestStoreBusyError(StorageError):
    """An export of an older day holds the fast-path lease; retry shortly (see latest_store)."""


class ScoresNotReady(SeqExportError):
    """202: SendGrid is still computing the day; the export re-schedules it through SQS."""


def describe_aws_error(exc: Exception) -> str:
    """``Code: Message`` of a botocore error, for messages that say what AWS refused."""
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        error = response.get("Error", {})
        return f"{error.get('Code', 'Unknown')}: {error.get('Message', '')}".strip()
    return f"{type(exc).__name__}: {exc}"
