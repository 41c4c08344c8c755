"""Tracing is switched on exactly where Powertools would trace (in Lambda, not disabled)."""

from __future__ import annotations

import pytest

from seq_export.observability import _NoTracer, tracing_enabled


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"AWS_LAMBDA_FUNCTION_NAME": "f"}, True),
        ({"AWS_LAMBDA_FUNCTION_NAME": "f", "POWERTOOLS_TRACE_DISABLED": "false"}, True),
        ({"AWS_LAMBDA_FUNCTION_NAME": "f", "POWERTOOLS_TRACE_DISABLED": "true"}, False),
        ({"AWS_LAMBDA_FUNCTION_NAME": "f", "POWERTOOLS_TRACE_DISABLED": "1"}, False),
        ({}, False),
    ],
)
def test_tracing_follows_the_lambda_environment(env: dict[str, str], expected: bool) -> None:
    assert tracing_enabled(env) is expected


def test_the_stand_in_tracer_leaves_the_handler_untouched() -> None:
    def handler(event: dict[str, int], context: object) -> int:
        return event["n"] + 1

    assert _NoTracer().capture_lambda_handler(capture_response=False)(handler) is handler
