"""The SEQ simulator in a process of its own: a second SendGrid host as apart from the first as the
real ones are (its own interpreter, port and key), for tests and runs that need two hosts.

``python -m local.simulator_process --api-key KEY [--label NAME]`` serves a ``SeqSimulator`` on a
free port of 127.0.0.1, prints one JSON line ``{"url": ...}``, then answers one JSON command per
line read on its standard input, until that closes (so it never outlives its parent):
``{"op": "reset", "scenario": {...}}``, ``{"op": "add_account", "api_key": K, "label": L,
"scenario": {...}}``, ``{"op": "set_key", "api_key": K}`` (a rotated or revoked key) and
``{"op": "requests"}`` (the request log). ``SimulatorProcess`` is the parent's handle, with the
same surface as the in-process simulator. Every wait on the child is bounded
(``ANSWER_SECONDS``): an answer that does not come, or a child that does not end, is an error
naming the command, and a child that will not end is killed.
"""

from __future__ import annotations

import json
import logging
import select
import subprocess
import sys
from dataclasses import asdict
from datetime import date
from typing import IO, Any

import click

from local.seq_simulator import Fault, Scenario, SeqSimulator, max_in_flight_seen

#: How long the parent waits for the child's announcement, an answer, or its end.
ANSWER_SECONDS = 30.0


def scenario_to_json(scenario: Scenario) -> dict[str, Any]:
    data = asdict(scenario)
    data["today"] = None if scenario.today is None else scenario.today.isoformat()
    return data


def scenario_from_json(data: dict[str, Any]) -> Scenario:
    today = data.get("today")
    faults = [Fault(**fault) for fault in data.get("faults", [])]
    day = None if today is None else date.fromisoformat(today)
    return Scenario(**{**data, "faults": faults, "today": day, "removed": tuple(data.get("removed", ()))})


class SimulatorProcess:
    """A simulator host in a child process: ``reset``, ``add_account``, ``api_key`` (assignable)
    and ``requests`` act on the child, as they would on an in-process ``SeqSimulator``."""

    def __init__(self, api_key: str, scenario: Scenario | None = None, *, label: str = "primary") -> None:
        self._api_key = api_key
        self._scenario = scenario or Scenario()
        self._label = label
        self._child: subprocess.Popen[str] | None = None
        self.url = ""

    def start(self) -> str:
        command = [sys.executable, "-m", "local.simulator_process", "--api-key", self._api_key, "--label", self._label]
        self._child = subprocess.Popen(  # noqa: S603 - this interpreter and module, no shell
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        self.url = str(json.loads(self._read("its address"))["url"])
        self.reset(self._scenario)
        return self.url

    def stop(self) -> None:
        if self._child is not None:
            child, self._child = self._child, None
            assert child.stdin is not None
            child.stdin.close()  # the child ends when its input does
            try:
                child.wait(timeout=ANSWER_SECONDS)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait(timeout=ANSWER_SECONDS)
                ended = f"did not end within {ANSWER_SECONDS:g} s of its input closing"
                raise RuntimeError(f"simulator process {child.pid} {ended}; killed") from None

    def __enter__(self) -> SimulatorProcess:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def api_key(self) -> str:
        return self._api_key

    @api_key.setter
    def api_key(self, key: str) -> None:
        self._command({"op": "set_key", "api_key": key})
        self._api_key = key

    def reset(self, scenario: Scenario | None = None) -> None:
        self._scenario = scenario or Scenario()
        self._command({"op": "reset", "scenario": scenario_to_json(self._scenario)})

    def add_account(self, api_key: str, scenario: Scenario, *, label: str) -> None:
        self._command({"op": "add_account", "api_key": api_key, "label": label, "scenario": scenario_to_json(scenario)})

    @property
    def scenario(self) -> Scenario:
        return self._scenario

    @property
    def requests(self) -> list[dict[str, Any]]:
        answer: list[dict[str, Any]] = self._command({"op": "requests"})["requests"]
        return answer

    def max_in_flight_seen(self, day: str | None = None) -> int:
        """The most subuser requests (of ``day``, or any) the child answered at once."""
        return max_in_flight_seen(self.requests, day)

    def _command(self, command: dict[str, Any]) -> dict[str, Any]:
        assert self._child is not None, "start() first"
        assert self._child.stdin is not None
        self._child.stdin.write(json.dumps(command) + "\n")
        self._child.stdin.flush()
        answer: dict[str, Any] = json.loads(self._read(f"an answer to {command['op']}"))
        if "error" in answer:
            raise RuntimeError(f"simulator process refused {command['op']}: {answer['error']}")
        return answer

    def _read(self, what: str) -> str:
        """One line of the child's, within ``ANSWER_SECONDS`` (``what``: what it should say)."""
        assert self._child is not None
        assert self._child.stdout is not None
        ready, _, _ = select.select([self._child.stdout], [], [], ANSWER_SECONDS)
        if not ready:
            raise RuntimeError(f"simulator process gave no {what} within {ANSWER_SECONDS:g} s")
        line = self._child.stdout.readline()
        if not line:
            raise RuntimeError(f"simulator process ended (exit {self._child.poll()})")
        return line


def serve(simulator: SeqSimulator, commands: IO[str], answers: IO[str]) -> None:
    """Answer each command line until ``commands`` ends."""
    for line in commands:
        try:
            command = json.loads(line)
            answer = _answer(simulator, command)
        except (ValueError, KeyError, TypeError) as exc:
            answer = {"error": str(exc)}
        answers.write(json.dumps(answer) + "\n")
        answers.flush()


def _answer(simulator: SeqSimulator, command: dict[str, Any]) -> dict[str, Any]:
    op = command["op"]
    if op == "reset":
        simulator.reset(scenario_from_json(command["scenario"]))
    elif op == "add_account":
        simulator.add_account(command["api_key"], scenario_from_json(command["scenario"]), label=command["label"])
    elif op == "set_key":
        simulator.api_key = command["api_key"]
    elif op == "requests":
        return {"requests": list(simulator.requests)}
    else:
        raise KeyError(f"unknown op {op!r}")
    return {"ok": True}


@click.command(help=(__doc__ or "").split("\n\n")[0])
@click.option("--api-key", required=True, help="The key of the host's first parent account.")
@click.option("--label", default="primary", show_default=True, help="That account's name in the request log.")
def main(api_key: str, label: str) -> None:
    """Serve until standard input ends; errors of the command line go to stderr, never the answers' pipe."""
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    simulator = SeqSimulator(api_key, label=label)
    try:
        print(json.dumps({"url": simulator.start()}), flush=True)
        serve(simulator, sys.stdin, sys.stdout)
    finally:
        simulator.stop()


if __name__ == "__main__":
    main()
