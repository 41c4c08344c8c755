"""Cold start in a fresh process: our handler's imports and clients against the bare minimum.

``python -m bench.cold_start handler --out FILE``: import ``seq_export.handler`` and build its
dependencies from the environment (what Lambda's first invocation of a container pays before
any work). ``python -m bench.cold_start bare --out FILE``: ``import boto3, requests`` and create
the same four clients (s3, dynamodb, sqs, secretsmanager) and a ``requests.Session``.
Neither touches the network. The clock starts after the interpreter and this module's own
imports (the standard library and Click, for the command line), the same for both (this module
imports nothing else before it); Click's few MiB are in both modes' peak RSS.
"""

from __future__ import annotations

import importlib
import json
import resource
import sys
import time
from pathlib import Path

import click

from local.invoke import peak_rss_kib

BARE_CLIENTS = ("s3", "dynamodb", "sqs", "secretsmanager")


@click.command(help=(__doc__ or "").split("\n\n")[0])
@click.argument("mode", type=click.Choice(["handler", "bare"]))
@click.option("--out", required=True, help="Where to write the measurements (JSON).")
def main(mode: str, out: str) -> None:
    before = resource.getrusage(resource.RUSAGE_SELF)
    started = time.perf_counter()
    if mode == "handler":
        importlib.import_module("seq_export.handler")  # what is measured
        from seq_export.wiring import build_dependencies  # noqa: PLC0415 - imported by the handler already

        imported = time.perf_counter()
        build_dependencies()
    else:
        import boto3  # noqa: PLC0415 - what is measured
        import requests  # noqa: PLC0415

        imported = time.perf_counter()
        session = boto3.session.Session()
        for name in BARE_CLIENTS:
            session.client(name)  # type: ignore[call-overload]  # a loop over literal names
        requests.Session()
    done = time.perf_counter()
    after = resource.getrusage(resource.RUSAGE_SELF)
    report = {
        "mode": mode,
        "total_s": done - started,
        "import_s": imported - started,
        "clients_s": done - imported,
        "cpu_s": after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime,
        "maxrss_mib": peak_rss_kib() / 1024,
        "modules": len(sys.modules),
    }
    Path(out).write_text(json.dumps(report))


if __name__ == "__main__":
    main()
