"""The simulator's cursors and limits misbehave exactly as a scenario asks, so the exporter's checks
of a cursor (ids strictly ascending, the cursor the last id) and of rate limits can be tested."""

from __future__ import annotations

import json
import threading
from typing import Any

import pytest
import requests

from local.seq_simulator import SUBUSER_SCORES_PATH, Fault, Scenario, SeqSimulator, expected_records
from local.simulator_process import SimulatorProcess, scenario_from_json, scenario_to_json
from tests.support import days_ago

pytestmark = pytest.mark.integration
FIRST = 100_001
RATE_HEADERS = {"X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset"}


def get(sim: SeqSimulator | SimulatorProcess, api_key: str, **params: Any) -> requests.Response:
    return requests.get(
        sim.url + SUBUSER_SCORES_PATH,
        params={"date": days_ago(1), **params},
        headers={"Authorization": f"Bearer {api_key}"},
        timeout=10,
    )


def page(sim: SeqSimulator, api_key: str, **params: Any) -> tuple[list[str], str | None]:
    """One 200 page: its user ids and its next cursor (None on the last page)."""
    response = get(sim, api_key, **params)
    assert response.status_code == 200
    body = response.json()
    return [r["user_id"] for r in body["result"]], body.get("_metadata", {}).get("next_params", {}).get("after_key")


def walk(sim: SeqSimulator, api_key: str, limit: int) -> tuple[list[str], list[str]]:
    """Every page of the day from the start: the ids served and the cursors given, in order."""
    ids, cursor = page(sim, api_key, limit=limit)
    cursors: list[str] = []
    while cursor is not None:
        cursors.append(cursor)
        more, cursor = page(sim, api_key, limit=limit, after_key=cursor)
        ids += more
    return ids, cursors


def at_once(sim: SeqSimulator, api_key: str, count: int) -> list[requests.Response]:
    """``count`` requests released together from threads of their own; their answers."""
    answers: list[requests.Response] = []
    start = threading.Barrier(count)

    def one() -> None:
        start.wait()
        answers.append(get(sim, api_key, limit=10))

    threads = [threading.Thread(target=one) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return answers


def test_ids_with_gaps_walk_every_remaining_subuser_with_the_id_cursor(simulator: SeqSimulator, api_key: str) -> None:
    scenario = Scenario(subusers=50, removed=(0, 3, 4, 9, 20, 49))
    simulator.reset(scenario)

    ids, cursors = walk(simulator, api_key, limit=10)

    assert ids == [r["user_id"] for r in expected_records(days_ago(1), scenario)]
    assert len(ids) == 44
    assert not {str(FIRST + i) for i in scenario.removed} & set(ids)
    assert cursors == [ids[9], ids[19], ids[29], ids[39]]


def test_an_id_cursor_resumes_after_that_id_even_when_it_is_a_gap(simulator: SeqSimulator, api_key: str) -> None:
    simulator.reset(Scenario(subusers=50, removed=(3, 4, 5)))

    after_existing, _ = page(simulator, api_key, limit=3, after_key=FIRST + 1)
    after_gap, _ = page(simulator, api_key, limit=3, after_key=FIRST + 4)

    assert after_existing == [str(FIRST + 2), str(FIRST + 6), str(FIRST + 7)]
    assert after_gap == [str(FIRST + 6), str(FIRST + 7), str(FIRST + 8)]


def test_the_offset_cursor_walks_everyone_and_its_cursors_are_offsets(simulator: SeqSimulator, api_key: str) -> None:
    simulator.reset(Scenario(subusers=25, cursor="offset", removed=(7,)))

    ids, cursors = walk(simulator, api_key, limit=10)

    assert cursors == ["10", "20"]
    assert len(ids) == len(set(ids)) == 24
    assert str(FIRST + 7) not in ids


def test_shuffled_order_serves_every_subuser_once_in_the_expected_order(simulator: SeqSimulator, api_key: str) -> None:
    scenario = Scenario(subusers=120, order="shuffled")
    simulator.reset(scenario)

    ids, cursors = walk(simulator, api_key, limit=25)

    assert ids == [r["user_id"] for r in expected_records(days_ago(1), scenario)]
    assert ids != sorted(ids)
    assert sorted(ids) == [str(FIRST + i) for i in range(120)]
    assert cursors == [ids[24], ids[49], ids[74], ids[99]]


def test_a_shuffled_id_cursor_continues_after_that_ids_place(simulator: SeqSimulator, api_key: str) -> None:
    simulator.reset(Scenario(subusers=60, order="shuffled"))
    served, _ = page(simulator, api_key, limit=60)

    resumed, _ = page(simulator, api_key, limit=5, after_key=served[30])

    assert resumed == served[31:36]


def test_an_overlap_fault_repeats_the_last_ids_of_the_previous_page(simulator: SeqSimulator, api_key: str) -> None:
    simulator.reset(Scenario(subusers=40, faults=[Fault(page=2, kind="overlap", overlap=3)]))
    first, cursor = page(simulator, api_key, limit=10)

    second, _ = page(simulator, api_key, limit=10, after_key=cursor)

    assert second[:3] == first[-3:]
    assert second == [str(FIRST + i) for i in range(7, 17)]


def test_a_phantom_fault_adds_an_id_the_next_request_does_not_return(simulator: SeqSimulator, api_key: str) -> None:
    simulator.reset(Scenario(subusers=40, faults=[Fault(page=1, kind="phantom")]))
    first = get(simulator, api_key, limit=10).json()
    phantom = first["result"][-1]

    following, _ = page(simulator, api_key, limit=10, after_key=first["_metadata"]["next_params"]["after_key"])

    assert (phantom["user_id"], phantom["username"]) == (str(FIRST + 10), "phantom")
    assert "score" in phantom
    assert first["_metadata"]["next_params"]["after_key"] == phantom["user_id"]
    assert len(first["result"]) == 11
    assert phantom["user_id"] not in following


def test_a_fault_aimed_at_an_after_key_hits_only_that_request(simulator: SeqSimulator, api_key: str) -> None:
    aimed = str(FIRST + 19)
    simulator.reset(Scenario(subusers=40, faults=[Fault(page=1, status=503, after_key=aimed)]))

    statuses = [
        get(simulator, api_key, limit=10).status_code,
        get(simulator, api_key, limit=10, after_key=FIRST + 9).status_code,
        get(simulator, api_key, limit=10, after_key=aimed).status_code,
        get(simulator, api_key, limit=10, after_key=aimed).status_code,
    ]

    assert statuses == [200, 200, 503, 200]


def test_a_202_fault_answers_a_later_page_with_sendgrids_message(simulator: SeqSimulator, api_key: str) -> None:
    simulator.reset(Scenario(subusers=40, faults=[Fault(page=2, status=202)]))

    response = get(simulator, api_key, limit=10, after_key=FIRST + 9)

    assert response.status_code == 202
    assert "processing" in response.json()["message"]


def test_requests_over_max_in_flight_get_429_with_no_requests_left(simulator: SeqSimulator, api_key: str) -> None:
    simulator.reset(Scenario(subusers=40, max_in_flight=2, latency=0.5))

    answers = at_once(simulator, api_key, 3)

    refused = [a for a in answers if a.status_code == 429]
    assert refused
    assert {a.status_code for a in answers} == {200, 429}
    assert refused[0].json() == {"errors": [{"field": None, "message": "too many requests"}]}
    assert refused[0].headers["X-RateLimit-Limit"] == "2"
    assert refused[0].headers["X-RateLimit-Remaining"] == "0"
    assert int(refused[0].headers["X-RateLimit-Reset"]) > 0
    assert simulator.max_in_flight_seen(days_ago(1)) == 3


def test_max_in_flight_without_limit_headers_answers_429_with_no_rate_header(
    simulator: SeqSimulator, api_key: str
) -> None:
    simulator.reset(Scenario(subusers=40, max_in_flight=1, latency=0.5, limit_headers=False))

    answers = at_once(simulator, api_key, 2)

    refused = [a for a in answers if a.status_code == 429]
    assert refused
    assert not RATE_HEADERS & set(refused[0].headers)


def test_the_request_log_counts_requests_in_flight_at_arrival(simulator: SeqSimulator, api_key: str) -> None:
    simulator.reset(Scenario(subusers=40))

    get(simulator, api_key, limit=10)

    assert [r["in_flight"] for r in simulator.requests] == [1]
    assert simulator.max_in_flight_seen() == 1
    assert simulator.max_in_flight_seen(days_ago(2)) == 0


def test_a_windowed_limit_counts_down_then_answers_429(simulator: SeqSimulator, api_key: str) -> None:
    simulator.reset(Scenario(subusers=40, rate_limit=3, rate_window=3600))  # no window ends in the test

    answers = [get(simulator, api_key, limit=10) for _ in range(4)]

    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    assert [a.headers["X-RateLimit-Remaining"] for a in answers] == ["2", "1", "0", "0"]
    assert {a.headers["X-RateLimit-Limit"] for a in answers} == {"3"}
    assert len({a.headers["X-RateLimit-Reset"] for a in answers}) == 1
    assert int(answers[0].headers["X-RateLimit-Reset"]) % 3600 == 0


def test_a_windowed_limit_without_limit_headers_sends_no_rate_header(simulator: SeqSimulator, api_key: str) -> None:
    simulator.reset(Scenario(subusers=40, rate_limit=1, rate_window=3600, limit_headers=False))

    answers = [get(simulator, api_key, limit=10) for _ in range(2)]

    assert [a.status_code for a in answers] == [200, 429]
    assert not RATE_HEADERS & (set(answers[0].headers) | set(answers[1].headers))


def test_the_new_scenario_fields_survive_the_json_round_trip() -> None:
    scenario = Scenario(
        removed=(2, 5),
        cursor="offset",
        order="shuffled",
        latency=0.1,
        max_in_flight=4,
        rate_limit=9,
        rate_window=2.5,
        limit_headers=False,
        faults=[Fault(page=1, kind="overlap", overlap=2, after_key="100010")],
    )

    assert scenario_from_json(json.loads(json.dumps(scenario_to_json(scenario)))) == scenario


def test_the_process_handle_reports_the_most_requests_in_flight(api_key: str) -> None:
    with SimulatorProcess(api_key, Scenario(subusers=12, removed=(0,))) as process:
        answer = get(process, api_key, limit=5)

        assert answer.json()["result"][0]["user_id"] == str(FIRST + 1)
        assert process.max_in_flight_seen(days_ago(1)) == 1
