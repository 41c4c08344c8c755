"""The simulator answers as the official OpenAPI spec (local/seq_openapi_v3.yaml) says SendGrid does."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import requests
import yaml
from openapi_schema_validator import OAS31Validator

from local.seq_simulator import SUBUSER_SCORES_PATH, Fault, Scenario, SeqSimulator
from tests.support import days_ago

pytestmark = pytest.mark.integration
SPEC_PATH = Path(__file__).parents[2] / "local" / "seq_openapi_v3.yaml"
SPEC = yaml.safe_load(SPEC_PATH.read_text())
OPERATION = SPEC["paths"][SUBUSER_SCORES_PATH]["get"]


def response_schema(status: int, operation: dict[str, Any] = OPERATION) -> dict[str, Any] | None:
    answer = operation["responses"][str(status)]
    if "$ref" in answer:
        answer = SPEC["components"]["responses"][answer["$ref"].rsplit("/", 1)[-1]]
    content = answer.get("content", {}).get("application/json", {})
    return content.get("schema")


def assert_valid(response: requests.Response, operation: dict[str, Any] = OPERATION) -> None:
    assert str(response.status_code) in operation["responses"], f"{response.status_code} is not in the spec"
    schema = response_schema(response.status_code, operation)
    if schema:
        # the spec's refs are '#/components/...': validate with the components beside the schema
        OAS31Validator({**schema, "components": SPEC["components"]}).validate(response.json())


@pytest.fixture
def sim(simulator: SeqSimulator, api_key: str) -> SeqSimulator:
    simulator.reset(Scenario(subusers=2_100))
    return simulator


def get(sim: SeqSimulator, api_key: str, **params: Any) -> requests.Response:
    return requests.get(
        sim.url + SUBUSER_SCORES_PATH, params=params, headers={"Authorization": f"Bearer {api_key}"}, timeout=10
    )


def test_spec_is_the_official_one_with_the_subuser_scores_operation() -> None:
    assert OPERATION["operationId"] == "ListSubuserEngagementQualityScore"
    assert {p.get("$ref", "").rsplit("/", 1)[-1] for p in OPERATION["parameters"]} >= {"SeqDate", "SeqAfterKey"}


def test_every_page_validates_and_the_cursor_walks_all_subusers(sim: SeqSimulator, api_key: str) -> None:
    users: list[str] = []
    after_key = None
    pages = 0
    while True:
        params = {"date": days_ago(1), "limit": 1000} | ({"after_key": after_key} if after_key else {})
        response = get(sim, api_key, **params)
        assert response.status_code == 200
        assert_valid(response)
        assert {"X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset"} <= set(response.headers)
        body = response.json()
        users += [r["user_id"] for r in body["result"]]
        pages += 1
        after_key = body.get("_metadata", {}).get("next_params", {}).get("after_key")
        if after_key is None:
            break
    assert pages == 3
    assert len(users) == len(set(users)) == 2_100


def test_ineligible_subusers_have_no_score_or_metrics(sim: SeqSimulator, api_key: str) -> None:
    result = get(sim, api_key, date=days_ago(1), limit=50).json()["result"]
    ineligible = [r for r in result if "score" not in r]
    assert ineligible
    assert all("metrics" not in r for r in ineligible)


@pytest.mark.parametrize(
    ("params", "field", "text"),
    [
        ({"date": days_ago(91)}, "date", "cannot be more than 90 days in the past"),
        ({"date": days_ago(-1)}, "date", "cannot be in the future"),
        ({}, "date", "must be provided"),
        ({"date": days_ago(1), "limit": 1001}, "limit", "must be a positive integer"),
        ({"date": days_ago(1), "after_key": "abc"}, "after_key", "invalid"),
    ],
)
def test_bad_requests_answer_400_with_spec_errors(
    sim: SeqSimulator, api_key: str, params: dict[str, Any], field: str, text: str
) -> None:
    response = get(sim, api_key, **params)
    assert response.status_code == 400
    assert_valid(response)
    error = response.json()["errors"][0]
    assert error["field"] == field
    assert text in error["message"]


def test_wrong_key_answers_401(sim: SeqSimulator) -> None:
    response = get(sim, "SG.wrong", date=days_ago(1))
    assert response.status_code == 401
    assert_valid(response)


def test_not_ready_answers_202_then_200(sim: SeqSimulator, api_key: str) -> None:
    sim.reset(Scenario(subusers=10, not_ready=1))
    first = get(sim, api_key, date=days_ago(1))
    second = get(sim, api_key, date=days_ago(1))
    assert (first.status_code, second.status_code) == (202, 200)
    assert "processing" in first.json()["message"]
    assert_valid(second)


def test_429_and_500_carry_spec_bodies_and_rate_headers(sim: SeqSimulator, api_key: str) -> None:
    sim.reset(Scenario(faults=[Fault(page=1, status=429), Fault(page=1, status=500)]))
    limited = get(sim, api_key, date=days_ago(1))
    failed = get(sim, api_key, date=days_ago(1))
    assert limited.status_code == 429
    assert limited.json() == {"errors": [{"field": None, "message": "too many requests"}]}
    assert limited.headers["X-RateLimit-Remaining"] == "0"
    assert int(limited.headers["X-RateLimit-Reset"]) > 0
    assert failed.status_code == 500
    assert_valid(failed)


ACCOUNT_OPERATION = SPEC["paths"]["/v3/engagementquality/scores"]["get"]


def account_get(sim: SeqSimulator, api_key: str, **params: Any) -> requests.Response:
    return requests.get(
        sim.url + "/v3/engagementquality/scores",
        params=params,
        headers={"Authorization": f"Bearer {api_key}"},
        timeout=10,
    )


def assert_valid_account(response: requests.Response) -> None:
    assert_valid(response, ACCOUNT_OPERATION)


def test_account_scores_answer_one_record_per_day_of_the_range(sim: SeqSimulator, api_key: str) -> None:
    response = account_get(sim, api_key, **{"from": days_ago(3), "to": days_ago(1)})
    assert response.status_code == 200
    assert_valid_account(response)
    assert [r["date"] for r in response.json()["result"]] == [days_ago(3), days_ago(2), days_ago(1)]


@pytest.mark.parametrize(
    ("params", "field", "text"),
    [
        ({"to": days_ago(1)}, "from", '"from" must be provided'),
        ({"from": days_ago(1), "to": days_ago(3)}, "to", '"from" cannot come after "to"'),
        ({"from": days_ago(1), "to": days_ago(-1)}, "to", '"to" cannot be in the future'),
        ({"from": days_ago(95), "to": days_ago(1)}, "from", "cannot be more than 90 days"),
    ],
)
def test_account_scores_bad_ranges_answer_400_like_the_spec(
    sim: SeqSimulator, api_key: str, params: dict[str, Any], field: str, text: str
) -> None:
    response = account_get(sim, api_key, **params)
    assert response.status_code == 400
    assert_valid_account(response)
    assert response.json()["errors"][0]["field"] == field
    assert text in response.json()["errors"][0]["message"]
