"""The simulator process's commands carry a whole scenario across the pipe unchanged."""

from __future__ import annotations

import io
import json
from datetime import date

from local.seq_simulator import Fault, Scenario, SeqSimulator
from local.simulator_process import scenario_from_json, scenario_to_json, serve


def test_a_scenario_survives_the_json_round_trip_with_its_faults_and_day() -> None:
    scenario = Scenario(
        subusers=7, first_user_id=900_001, today=date(2026, 11, 30), faults=[Fault(page=2, status=429, times=3)]
    )

    assert scenario_from_json(json.loads(json.dumps(scenario_to_json(scenario)))) == scenario


def test_commands_are_answered_one_line_each_and_a_bad_one_names_its_problem() -> None:
    simulator = SeqSimulator("SG.key")
    commands = io.StringIO(
        json.dumps({"op": "reset", "scenario": scenario_to_json(Scenario(subusers=3))})
        + "\n"
        + json.dumps({"op": "requests"})
        + "\n"
        + json.dumps({"op": "reboot"})
        + "\n"
    )
    answers = io.StringIO()

    serve(simulator, commands, answers)

    assert [json.loads(line) for line in answers.getvalue().splitlines()] == [
        {"ok": True},
        {"requests": []},
        {"error": "\"unknown op 'reboot'\""},
    ]
    assert simulator.scenario.subusers == 3
