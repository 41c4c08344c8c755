"""What tests share, so that no test module imports another.

* ``stack``: the local stack's handle (``Stack``) for integration tests, day and metric helpers;
* ``fakes``: recording fakes of AWS clients, of SendGrid's HTTP and of the clock, for unit tests;
* ``builders``: test data (score records, API records, score changes, jobs).

Everything is re-exported here: ``from tests.support import Stack, FakeSQS, records``.
The integration fixtures are in ``tests/integration/conftest.py``.
"""

from tests.support.builders import (
    API_DAY,
    API_METRICS,
    RECORD_DAY,
    api_record,
    job,
    jobs,
    record,
    records,
    score_change,
)
from tests.support.fakes import (
    CONDITION_FAILED,
    SEQ_API_KEY,
    SEQ_BASE_URL,
    SEQ_DAY,
    START,
    Answer,
    Clock,
    FakeDynamoDB,
    FakeEvents,
    FakeSQS,
    Harness,
    Responder,
    ScriptedAdapter,
    Step,
    all_processed,
    all_successful,
    client_error,
    grant,
    harness,
    lease_held_by,
    ok,
    raising,
    sendgrid_error,
)
from tests.support.stack import (
    ShortContext,
    Stack,
    days_ago,
    emf_documents,
    emitted_metrics,
    invoke_short,
    run_to_completion,
)

__all__ = [
    "API_DAY",
    "API_METRICS",
    "CONDITION_FAILED",
    "RECORD_DAY",
    "SEQ_API_KEY",
    "SEQ_BASE_URL",
    "SEQ_DAY",
    "START",
    "Answer",
    "Clock",
    "FakeDynamoDB",
    "FakeEvents",
    "FakeSQS",
    "Harness",
    "Responder",
    "ScriptedAdapter",
    "ShortContext",
    "Stack",
    "Step",
    "all_processed",
    "all_successful",
    "api_record",
    "client_error",
    "days_ago",
    "emf_documents",
    "emitted_metrics",
    "grant",
    "harness",
    "invoke_short",
    "job",
    "jobs",
    "lease_held_by",
    "ok",
    "raising",
    "record",
    "records",
    "run_to_completion",
    "score_change",
    "sendgrid_error",
]
