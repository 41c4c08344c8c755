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
from collections.abc import Callable, Iterator
from typing import IO, Any

from seq_export_cli.errors import ServiceError, aws, one_line
from seq_export_cli.local_lambda import FakeLambdaContext


def invoke_function(client: Any, function_name: str, event: dict[str, Any]) -> dict[str, Any]:
    """Synchronous Invoke; a function error (``FunctionError``) becomes a ``ServiceError``."""
    with aws(f"Lambda Invoke of function {function_name}"):
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


#: Called with (pages, records) after each page the function fetched in this process.
OnPage = Callable[[int, int], None]


def invoke_local(event: dict[str, Any], *, verbose: bool = False, on_page: OnPage | None = None) -> dict[str, Any]:
    """The handler in this process, as Lambda would call it (the function's env must be set)."""
    from seq_export import handler  # noqa: PLC0415 - Powertools reads its settings at import

    with _function_output(verbose), _pages_to(on_page):
        return dict(handler.lambda_handler(event, FakeLambdaContext()))


@contextlib.contextmanager
def _pages_to(on_page: OnPage | None) -> Iterator[None]:
    """Follow the function's "Page fetched" log records (its public account of a page) while
    the block runs, whatever the function's log level."""
    if on_page is None:
        yield
        return
    from seq_export.observability import logger  # noqa: PLC0415 - Powertools, only for --local

    watcher = _PageWatcher(on_page)
    std_logger = logging.getLogger(logger.name)
    std_logger.addHandler(watcher)
    old_level = logger.log_level
    if old_level > logging.INFO:
        logger.setLevel(logging.INFO)
    try:
        yield
    finally:
        std_logger.removeHandler(watcher)
        if logger.log_level != old_level:
            logger.setLevel(old_level)


class _PageWatcher(logging.Handler):
    def __init__(self, on_page: OnPage) -> None:
        super().__init__(logging.INFO)
        self._on_page = on_page
        self._pages = 0

    def emit(self, record: logging.LogRecord) -> None:
        if record.msg == "Page fetched":
            self._pages += 1
            self._on_page(self._pages, int(getattr(record, "total", 0)))


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
