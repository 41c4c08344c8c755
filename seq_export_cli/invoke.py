"""Calling the export function: the deployed one (a synchronous Lambda Invoke), or its handler
in this process for ``--local`` (there is no Lambda locally; the function's environment must be
set, as ``python -m local.run --keep`` prints it)."""

from __future__ import annotations

import contextlib
import io
import json
import logging
import sys
import warnings
from collections.abc import Iterator
from typing import IO, TYPE_CHECKING, Any

from seq_export_cli.errors import ServiceError, TargetConfigError, aws_failures_named, one_line
from seq_export_cli.local_lambda import FakeLambdaContext

if TYPE_CHECKING:
    from seq_export.progress import OnJob, OnPage


def invoke_function(client: Any, function_name: str, event: dict[str, Any]) -> dict[str, Any]:
    """Synchronous Invoke; a function error (``FunctionError``) becomes a ``ServiceError``."""
    with aws_failures_named(f"Lambda Invoke of function {function_name}"):
        answer = client.invoke(
            FunctionName=function_name, InvocationType="RequestResponse", Payload=json.dumps(event).encode()
        )
        raw = answer["Payload"].read()
    try:
        payload = json.loads(raw) if raw else None
    except ValueError:
        payload = None
    if answer.get("FunctionError"):
        if isinstance(payload, dict):
            detail = f"{payload.get('errorType', answer['FunctionError'])}: {payload.get('errorMessage', '')}"
        else:
            detail = f"{answer['FunctionError']}: {raw[:300].decode(errors='replace')}"
        raise ServiceError(f"function {function_name} failed: {one_line(detail)}")
    if not isinstance(payload, dict):
        raise ServiceError(f"function {function_name} answered {raw[:200]!r}, not a JSON object")
    return payload


def invoke_local(
    event: dict[str, Any], *, verbose: bool = False, on_page: OnPage | None = None, on_job: OnJob | None = None
) -> dict[str, Any]:
    """The handler in this process, as Lambda would call it (the function's env must be set).
    ``on_page`` and ``on_job`` follow its pages and its queued jobs while it runs (``seq_export.progress``)."""
    try:
        from seq_export import handler, wiring  # noqa: PLC0415 - Powertools reads its settings at import
    except ModuleNotFoundError as exc:  # `pip install .` carries the CLI alone, not the function's runtime
        raise TargetConfigError(
            f"--local runs the function in this process and needs its runtime ({exc.name} is not installed): "
            "run it from the repository after `make run`, or `pip install -e '.[run]'` there"
        ) from None

    with _function_output(verbose), wiring.dependencies().progress.followed(on_page=on_page, on_job=on_job):
        return dict(handler.lambda_handler(event, FakeLambdaContext()))


@contextlib.contextmanager
def _function_output(verbose: bool) -> Iterator[None]:
    """Keep stdout for the CLI's own output. With ``verbose`` the handler's JSON logs (INFO and up)
    and EMF metrics go to stderr; otherwise they are discarded (the CLI reports the outcome)."""
    from seq_export.observability import logger  # noqa: PLC0415 - Powertools, only for --local

    sink: IO[str] = sys.stderr if verbose else _Discard()
    registered = logger.registered_handler
    stream_handler = registered if isinstance(registered, logging.StreamHandler) else None
    old_stream = stream_handler.setStream(sink) if stream_handler is not None else None
    old_level = logger.log_level
    if verbose and old_level > logging.INFO:
        logger.setLevel(logging.INFO)
    try:
        with contextlib.redirect_stdout(sink), warnings.catch_warnings():
            if not verbose:  # e.g. Powertools' "No application metrics to publish"
                warnings.simplefilter("ignore")
            yield
    finally:
        if logger.log_level != old_level:
            logger.setLevel(old_level)
        if stream_handler is not None and old_stream is not None:
            stream_handler.setStream(old_stream)


class _Discard(io.StringIO):
    def write(self, text: str) -> int:
        return len(text)
