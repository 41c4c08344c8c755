"""Invoke the Lambda handler once in this process and report its answer and peak memory.

For measurements that must see the function alone (the services it talks to run elsewhere):
``python -m local.invoke '{"date": "2026-11-22"}'`` with the function's environment set,
``AWS_ENDPOINT_URL`` included. Prints one JSON line: the handler's answer, the peak resident
set size of this process in MiB, and the seconds the invocation took.
"""

from __future__ import annotations

import json
import resource
import time
from pathlib import Path
from typing import Any

import click

from seq_export_cli.local_lambda import FakeLambdaContext


def peak_rss_kib() -> int:
    """This process's own peak resident set (VmHWM). Not getrusage's ru_maxrss: on Linux a
    process started by fork and exec reports its parent's peak there until it exceeds it."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # elsewhere: the best there is


def _json_event(_ctx: click.Context, _param: click.Parameter, value: str) -> Any:
    try:
        return json.loads(value)
    except ValueError as exc:
        raise click.BadParameter(f"not JSON: {exc}") from None


@click.command(help=(__doc__ or "").splitlines()[0] + " EVENT: the event, as JSON.")
@click.argument("event", callback=_json_event)
def main(event: Any) -> None:
    """One invocation, measured on its own: the handler is imported only once EVENT is known good."""
    from seq_export import handler  # noqa: PLC0415 - imported after argument errors, as Lambda would

    before = peak_rss_kib()
    started = time.perf_counter()
    answer = handler.lambda_handler(event, FakeLambdaContext())
    seconds = time.perf_counter() - started
    report = {
        "answer": answer,
        "max_rss_mib": peak_rss_kib() / 1024,
        "rss_before_mib": before / 1024,
        "seconds": seconds,
    }
    print(json.dumps(report))


if __name__ == "__main__":
    main()
