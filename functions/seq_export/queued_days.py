"""DynamoDB adapter: which jobs are queued or running, so that no request queues a day twice.

One marker item per queued ``JobId`` (source, kind, day), in the idempotency table (key ``id``,
TTL attribute ``expiration``). Marker ids begin with ``MARKER_PREFIX``; Powertools' records in
the same table are ``seq-export#retry-message#<hash>`` (``jobs.IDEMPOTENCY_KEY_PREFIX``), so the
two never meet.

* **claim**: a conditional PutItem when a request queues the job (a backfill, the daily run) or
  starts it now (a direct export): it succeeds when there is no marker, an expired one (TTL
  deletes lazily, up to two days late), or one of the same run (a retried scheduled run claims
  its own jobs again). It records the run; a refusal answers with the run that holds the job.
  ``force`` takes the marker over unconditionally (a forced backfill queues regardless).
* **release**: a DeleteItem conditional on the run, by the job that holds the marker when it
  ends: its day published, or given up to the dead-letter queue. A run whose marker a forced
  backfill took over never releases the newer run's.
* **lifetime**: a marker expires ``QUEUE_SLACK_SECONDS`` (a day) after the longest time SendGrid's
  202s can keep the job re-scheduled (``NotReadyPolicy.longest_wait_seconds``: about 3.5 hours
  with the defaults, so about 27.5 hours in all). The day covers a job's wait for its turn in a
  large backfill (the event source's maximum concurrency runs two jobs at a time), SQS's
  redeliveries of a failing job (3 receives, 30 minutes apart) and its continuations. What the
  function never sees end, a message SQS moved to the dead-letter queue after its last failed
  receive or a purged queue, keeps its day "already queued" until then; ``--force`` queues it
  anyway.

Retries: botocore's standard mode (``config.aws_client_config``) is the only retry layer. A
refused claim is an answer, not an error; any other failure of a claim is a ``StorageError``; a
failed release is logged and left to expire, since the day it ends is already done.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from botocore.exceptions import BotoCoreError, ClientError

from seq_export.errors import StorageError, describe_aws_error
from seq_export.job_message import JobId
from seq_export.observability import logger

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

MARKER_PREFIX = "seq-export#queued-job#"
#: Beyond SendGrid's 202s, how long a queued job may take before its marker is presumed orphaned.
QUEUE_SLACK_SECONDS = 24 * 3600
#: Who holds a job whose holder could not be read back (a refusal without the old item).
UNKNOWN_HOLDER = "unknown"
CONDITION_FAILED = "ConditionalCheckFailedException"


def marker_id(job: JobId) -> str:
    """The marker's key: the prefix, then the job's source, kind and day."""
    return f"{MARKER_PREFIX}{job.source}#{job.kind}#{job.date}"


def marker_lifetime(longest_not_ready_seconds: int) -> int:
    """Seconds a marker lives: the 202 re-schedules' longest span plus a day (module docstring)."""
    return longest_not_ready_seconds + QUEUE_SLACK_SECONDS


class QueuedDays:
    def __init__(
        self,
        client: DynamoDBClient,
        table: str,
        *,
        lifetime_seconds: int,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._client = client
        self._table = table
        self._lifetime = lifetime_seconds
        self._clock = clock

    def claim(self, job: JobId, run: str, *, force: bool = False) -> str | None:
        """Mark ``job`` as queued by ``run``: None when claimed, else the run that holds it."""
        now = int(self._clock())
        item = {
            "id": {"S": marker_id(job)},
            "run": {"S": run},
            "expiration": {"N": str(now + self._lifetime)},
        }
        try:
            if force:
                self._client.put_item(TableName=self._table, Item=item)
            else:
                self._client.put_item(
                    TableName=self._table,
                    Item=item,
                    ConditionExpression="attribute_not_exists(id) OR expiration < :now OR #run = :run",
                    ExpressionAttributeNames={"#run": "run"},
                    ExpressionAttributeValues={":now": {"N": str(now)}, ":run": {"S": run}},
                    ReturnValuesOnConditionCheckFailure="ALL_OLD",
                )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == CONDITION_FAILED:
                return _holder(exc.response.get("Item"))
            raise StorageError(
                f"DynamoDB PutItem on {self._table} marking {job} queued failed: {describe_aws_error(exc)}"
            ) from None
        except BotoCoreError as exc:
            raise StorageError(f"DynamoDB PutItem on {self._table} marking {job} queued failed: {exc}") from None
        return None

    def release(self, job: JobId, run: str | None) -> None:
        """``job`` of ``run`` ended: remove its marker if ``run`` still holds it (best effort)."""
        if run is None:  # a job of no run (a message from before runs existed) holds no marker
            return
        try:
            self._client.delete_item(
                TableName=self._table,
                Key={"id": {"S": marker_id(job)}},
                ConditionExpression="#run = :run",
                ExpressionAttributeNames={"#run": "run"},
                ExpressionAttributeValues={":run": {"S": run}},
            )
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == CONDITION_FAILED:
                return  # another run holds it now, or nobody does
            logger.warning("Could not release the queued-job marker", job=str(job), problem=describe_aws_error(exc))
        except BotoCoreError as exc:
            logger.warning("Could not release the queued-job marker", job=str(job), problem=str(exc))


def _holder(item: object) -> str:
    """The run of the marker a refused claim answered with (``ReturnValuesOnConditionCheckFailure``)."""
    run = item.get("run") if isinstance(item, dict) else None
    held = run.get("S") if isinstance(run, dict) else None
    return held if isinstance(held, str) else UNKNOWN_HOLDER
