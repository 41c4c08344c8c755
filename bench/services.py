"""The services the exporters talk to, each in its own process so that they are measured alone.

``python -m bench.services moto`` runs moto in server mode on a free port of 127.0.0.1 with
the AWS call counter around it; ``python -m bench.services seq --latency 0.1 --api-key K`` runs
the SEQ simulator answering every page ``latency`` seconds late (SendGrid's round trip). Each
prints one JSON line with its URL, then answers the driver's commands, a JSON line for each
line read on its standard input, until that closes (the driver holds it open), so a service
never outlives the benchmark. moto: ``calls``, ``reset``, ``forget``, ``tables JSON`` (see
``aws_counter.py``); seq: ``reset N`` (N subusers a day, requests forgotten) and ``stats``.
"""

from __future__ import annotations

import json
import logging
import math
import sys
from collections import Counter
from collections.abc import Callable
from typing import Any

import click
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app

from bench.aws_counter import AwsCounter
from local.loopback import Serving
from local.seq_simulator import Fault, Scenario, SeqSimulator
from seq_export.config import MAX_PAGE_SIZE

Answer = Callable[[str, str], dict[str, Any]]


def serve(url: str, answer: Answer) -> None:
    print(json.dumps({"url": url}), flush=True)
    for line in sys.stdin:  # ends when the driver closes our standard input or exits
        command, _, argument = line.strip().partition(" ")
        print(json.dumps(answer(command, argument)), flush=True)


def late_pages(subusers: int, latency: float) -> list[Fault]:
    """Every page of a day (pages of ``MAX_PAGE_SIZE``, as every contender asks) answered ``latency``
    seconds late; the server is threaded, so the others go on."""
    pages = max(1, math.ceil(subusers / MAX_PAGE_SIZE)) if latency else 0
    return [Fault(page=p, kind="slow", delay=latency, times=sys.maxsize) for p in range(1, pages + 1)]


def seq_answers(simulator: SeqSimulator, latency: float) -> Answer:
    def answer(command: str, argument: str) -> dict[str, Any]:
        if command == "reset":
            subusers = int(argument)
            simulator.reset(Scenario(subusers=subusers, faults=late_pages(subusers, latency)))
        statuses = Counter(str(request["status"]) for request in list(simulator.requests))
        return {"requests": sum(statuses.values()), "statuses": dict(statuses)}

    return answer


@click.group(help=(__doc__ or "").split("\n\n")[0])
def main() -> None:
    logging.getLogger("werkzeug").setLevel(logging.ERROR)


@main.command("moto", help="moto in server mode with the AWS call counter.")
def moto_service() -> None:
    # as moto's ThreadedMotoServer, with the counter around its application
    counter = AwsCounter()
    app = counter.wrap(DomainDispatcherApplication(create_backend_app))
    server = Serving(app, request_handler=MotoRequestHandler)
    try:
        serve(server.url, counter.command)
    finally:
        server.stop()


@main.command("seq", help="The SEQ simulator with a per-page latency.")
@click.option("--latency", type=float, default=0.1, show_default=True, help="Seconds before every page.")
@click.option("--api-key", required=True, help="The key the simulator accepts.")
def seq_service(latency: float, api_key: str) -> None:
    simulator = SeqSimulator(api_key)
    try:
        serve(simulator.start(), seq_answers(simulator, latency))
    finally:
        simulator.stop()


if __name__ == "__main__":
    main()
