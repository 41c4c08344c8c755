"""The services the exporters talk to, each in its own process so that they are measured alone.

``python -m bench.services moto`` runs moto in server mode on a free port of 127.0.0.1 with
the AWS call counter around it; ``python -m bench.services seq --latency 0.1`` runs the SEQ
simulator with a fixed delay before every answer (SendGrid's round trip). Each prints one JSON
line with its URL, then serves until its standard input closes (the driver holds it open), so
a service never outlives the benchmark.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from collections import Counter
from collections.abc import Iterable
from typing import Any

from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from moto.server import ThreadedMotoServer
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from bench.aws_counter import CONTROL_PREFIX, AwsCounter
from local.seq_simulator import Scenario, SeqSimulator


class CountingMotoServer(ThreadedMotoServer):
    """moto's threaded server with :class:`AwsCounter` around its WSGI application."""

    def __init__(self, counter: AwsCounter) -> None:
        super().__init__(ip_address="127.0.0.1", port=0, verbose=False)
        self.counter = counter

    def _server_entry(self) -> None:  # as ThreadedMotoServer's, with the counter wrapped in
        app = self.counter.wrap(DomainDispatcherApplication(create_backend_app))
        self._server = make_server(self._ip_address, self._port, app, True, request_handler=MotoRequestHandler)
        self._server_ready_event.set()
        self._server.serve_forever()


class LatencySeqSimulator(SeqSimulator):
    """The SEQ simulator, answering every request ``latency`` seconds late.

    ``GET /__bench/stats`` counts the requests served since ``POST /__bench/reset?subusers=N``
    (which also sets the day's subuser count).
    """

    def __init__(self, api_key: str, latency: float) -> None:
        super().__init__(api_key, Scenario())
        self.latency = latency

    def _answer(self, request: Request) -> Response:
        time.sleep(self.latency)  # the round trip to SendGrid; threaded server: others go on
        return super()._answer(request)

    def _wsgi(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if not path.startswith(CONTROL_PREFIX):
            return super()._wsgi(environ, start_response)
        request = Request(environ)
        if path == CONTROL_PREFIX + "reset" and request.method == "POST":
            self.reset(Scenario(subusers=int(request.args.get("subusers", "0"))))
            answer: dict[str, Any] = {"subusers": self.scenario.subusers}
        elif path == CONTROL_PREFIX + "stats":
            with self._lock:
                statuses = Counter(str(r["status"]) for r in self.requests)
                answer = {"requests": len(self.requests), "statuses": dict(statuses)}
        else:
            return Response("unknown bench control", status=404)(environ, start_response)
        return Response(json.dumps(answer), content_type="application/json")(environ, start_response)


def _serve_until_stdin_closes(announcement: dict[str, Any]) -> None:
    print(json.dumps(announcement), flush=True)
    sys.stdin.read()  # returns when the driver closes our standard input or exits


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.services", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="service", required=True)
    sub.add_parser("moto", help="moto server mode with the AWS call counter")
    seq = sub.add_parser("seq", help="the SEQ simulator with a per-answer latency")
    seq.add_argument("--latency", type=float, default=0.1, help="seconds before every answer (default 0.1)")
    seq.add_argument("--api-key", required=True)
    args = parser.parse_args(argv)
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    if args.service == "moto":
        server = CountingMotoServer(AwsCounter())
        server.start()
        host, port = server.get_host_and_port()
        try:
            _serve_until_stdin_closes({"endpoint": f"http://{host}:{port}"})
        finally:
            server.stop()
        return 0
    simulator = LatencySeqSimulator(args.api_key, args.latency)
    simulator.start()
    try:
        _serve_until_stdin_closes({"url": simulator.url})
    finally:
        simulator.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
