"""The services the exporters talk to, each in its own process so that they are measured alone.

``python -m bench.services moto`` runs moto in server mode on a free port of 127.0.0.1 with
the AWS call counter around it; ``python -m bench.services seq --latency 0.1 --api-key K`` runs
the SEQ simulator answering every page ``latency`` seconds late (SendGrid's round trip,
``Scenario.latency``: server-side and threaded, so requests in flight at once overlap). Each
prints one JSON line with its URL, then answers the driver's commands, a JSON line for each
line read on its standard input, until that closes (the driver holds it open), so a service
never outlives the benchmark. moto: ``calls``, ``reset``, ``forget``, ``tables JSON`` (see
``aws_counter.py``); seq: ``reset N [LATENCY]`` (N subusers a day, requests forgotten, another
latency until the next reset) and ``stats`` (requests by status, and by day: requests, 429s and
the most in flight at once).
"""

from __future__ import annotations

import json
import logging
import sys
from collections import Counter
from collections.abc import Callable
from typing import Any

import click
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app

from bench.aws_counter import AwsCounter
from local.loopback import Serving
from local.seq_simulator import SUBUSER_SCORES_PATH, Scenario, SeqSimulator

Answer = Callable[[str, str], dict[str, Any]]


def serve(url: str, answer: Answer) -> None:
    print(json.dumps({"url": url}), flush=True)
    for line in sys.stdin:  # ends when the driver closes our standard input or exits
        command, _, argument = line.strip().partition(" ")
        print(json.dumps(answer(command, argument)), flush=True)


def day_stats(requests: list[dict[str, Any]]) -> dict[str, dict[str, int]]:
    """Per day of the subuser requests logged: how many, how many answered 429, the most in flight."""
    days: dict[str, dict[str, int]] = {}
    for request in requests:
        day = request["params"].get("date")
        if request["path"] != SUBUSER_SCORES_PATH or not day:
            continue
        figures = days.setdefault(day, {"requests": 0, "rate_limited": 0, "max_in_flight": 0})
        figures["requests"] += 1
        figures["rate_limited"] += request["status"] == 429
        figures["max_in_flight"] = max(figures["max_in_flight"], int(request.get("in_flight", 0)))
    return days


def seq_answers(simulator: SeqSimulator, latency: float) -> Answer:
    def answer(command: str, argument: str) -> dict[str, Any]:
        if command == "reset":
            subusers, _, late = argument.partition(" ")
            simulator.reset(Scenario(subusers=int(subusers), latency=float(late) if late else latency))
        requests = list(simulator.requests)
        statuses = Counter(str(request["status"]) for request in requests)
        return {"requests": sum(statuses.values()), "statuses": dict(statuses), "days": day_stats(requests)}

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
