"""Record validation, exact numbers, and message/event parsing."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from seq_export.errors import InvalidEventError, InvalidRecordError, SeqProtocolError
from seq_export.job_message import Job
from seq_export.latest_store import to_item
from seq_export.layout import DEFAULT_SOURCE
from seq_export.models import METRIC_NAMES, RECORD_KEYS, ScoreRecord, loads_exact, parse_page, validate_record
from seq_export.record_codec import encode_line
from tests.support import API_DAY, API_METRICS, api_record, job

DAY = API_DAY
METRICS = API_METRICS


def test_a_spec_example_record_validates_with_every_value_kept() -> None:
    record = validate_record(api_record(), source=DEFAULT_SOURCE, day=DAY, where="page 1 record 1")

    assert record == ScoreRecord(
        source=DEFAULT_SOURCE, date=DAY, user_id="180", username="jdoe123", score=3, metrics=METRICS
    )
    assert record.eligible


def test_an_ineligible_record_has_no_score_and_no_metrics() -> None:
    record = validate_record({"user_id": "181", "date": DAY}, source=DEFAULT_SOURCE, day=DAY, where="w")

    assert (record.score, record.metrics, record.username, record.eligible) == (None, None, None, False)


def test_unknown_fields_are_tolerated_and_not_exported() -> None:
    record = validate_record(
        api_record(new_field=1, metrics=METRICS | {"new_metric": 9}), source=DEFAULT_SOURCE, day=DAY, where="w"
    )

    assert record.metrics == METRICS
    assert "new_field" not in encode_line(record, "t")


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"username": "x"}, "user_id must be a non-empty string"),
        (api_record(user_id=""), "user_id must be a non-empty string"),
        (api_record(user_id=True), "user_id must be a non-empty string"),
        (api_record(score=0), "score must be within 1..5, got 0"),
        (api_record(score=Decimal("5.01")), "score must be within 1..5"),
        (api_record(score="3"), "score must be a number"),
        (api_record(score=True), "score must be a number"),
        (api_record(metrics={"open_rate": 3}), "metrics lacks engagement_recency"),
        (api_record(metrics=METRICS | {"spam_rate": 6}), "metrics.spam_rate must be within 1..5"),
        (api_record(metrics=[1, 2]), "metrics must be an object"),
        (api_record(username=5), "username must be a string"),
        (api_record(date="2026-11-21"), "date is '2026-11-21' but 2026-11-22 was requested"),
        ("not an object", "a record must be a JSON object"),
    ],
)
def test_records_breaking_the_spec_are_refused_naming_where_and_why(raw: object, message: str) -> None:
    with pytest.raises(InvalidRecordError) as caught:
        validate_record(raw, source=DEFAULT_SOURCE, day=DAY, where="2026-11-22 page 4 record 9")

    assert message in str(caught.value)
    assert str(caught.value).startswith("2026-11-22 page 4 record 9")


def test_a_numeric_user_id_becomes_a_string() -> None:
    assert validate_record(api_record(user_id=180), source=DEFAULT_SOURCE, day=DAY, where="w").user_id == "180"


def test_json_line_has_the_contract_keys_in_order_and_exact_decimals() -> None:
    record = validate_record(
        loads_exact(json.dumps(api_record()).replace('"score": 3', '"score": 3.75000')),
        source=DEFAULT_SOURCE,
        day=DAY,
        where="w",
    )

    line = encode_line(record, "2026-11-23T06:00:00.000Z")

    assert line.endswith("\n")
    assert '"score": 3.75000' in line
    parsed = json.loads(line, parse_float=Decimal)
    assert tuple(parsed) == RECORD_KEYS
    assert parsed["score"] == Decimal("3.75000")
    assert parsed["exported_at"] == "2026-11-23T06:00:00.000Z"


def test_json_line_escapes_usernames() -> None:
    record = ScoreRecord(
        source=DEFAULT_SOURCE, date=DAY, user_id="1", username='a "quoted" \\ name ü', score=None, metrics=None
    )

    assert json.loads(encode_line(record, "t"))["username"] == 'a "quoted" \\ name ü'


def test_nan_and_infinity_are_not_numbers() -> None:
    for text in ('{"score": NaN}', '{"score": Infinity}', '{"score": -Infinity}'):
        with pytest.raises(ValueError, match="is not a number JSON allows"):
            loads_exact(text)


numbers = st.one_of(
    st.integers(min_value=1, max_value=5),
    st.decimals(min_value=1, max_value=5, allow_nan=False, allow_infinity=False),
)
api_records = st.fixed_dictionaries(
    {"user_id": st.from_regex(r"\A[0-9]{1,12}\Z"), "date": st.just(DAY)},
    optional={
        "username": st.text(min_size=1, max_size=40),
        "score": numbers,
        "metrics": st.fixed_dictionaries(dict.fromkeys(METRIC_NAMES, numbers)),
    },
)


def _as_api_text(raw: dict[str, Any]) -> str:
    """Serialise like an API would, writing Decimals as their own text."""
    return json.dumps(raw, default=lambda d: f"@@{d}@@").replace('"@@', "").replace('@@"', "")


@given(api_records)
def test_values_survive_api_to_s3_to_dynamodb_unchanged(raw: dict[str, Any]) -> None:
    record = validate_record(loads_exact(_as_api_text(raw)), source=DEFAULT_SOURCE, day=DAY, where="w")

    line = json.loads(encode_line(record, "t"), parse_float=Decimal)
    item = to_item(record, "t")

    assert line["score"] == raw.get("score")
    assert line["metrics"] == raw.get("metrics")
    assert line["username"] == raw.get("username")
    if "score" in raw:
        assert Decimal(item["score"]["N"]) == raw["score"]
        assert str(item["score"]["N"]) == str(raw["score"])
    if "metrics" in raw:
        assert {k: Decimal(v["N"]) for k, v in item["metrics"]["M"].items()} == raw["metrics"]


@given(st.one_of(st.integers(), st.decimals(allow_nan=False, allow_infinity=False)))
def test_a_score_is_accepted_exactly_when_it_is_within_1_to_5(score: int | Decimal) -> None:
    inside = 1 <= score <= 5
    try:
        record = validate_record(api_record(score=score), source=DEFAULT_SOURCE, day=DAY, where="w")
    except InvalidRecordError:
        assert not inside
    else:
        assert inside
        assert record.score == score


def test_page_envelope_reads_the_cursor_and_refuses_a_missing_result() -> None:
    assert (
        parse_page({"result": [], "_metadata": {"next_params": {"after_key": "180"}}}, number=1).next_after_key == "180"
    )
    assert parse_page({"result": []}, number=1).next_after_key is None
    assert (
        parse_page({"result": [], "_metadata": {"next_params": {"after_key": None}}}, number=1).next_after_key is None
    )
    with pytest.raises(SeqProtocolError, match="page 3: 'result' must be a list"):
        parse_page({"errors": []}, number=3)
    with pytest.raises(SeqProtocolError, match="after_key must be a string"):
        parse_page({"result": [], "_metadata": {"next_params": {"after_key": {"x": 1}}}}, number=2)


def test_retry_message_round_trips_and_refuses_bad_bodies() -> None:
    message = job(DAY, attempt=3)

    assert Job.from_json(default_source=DEFAULT_SOURCE, body=message.to_json()) == message
    assert Job.from_json(default_source=DEFAULT_SOURCE, body='{"date": "2026-11-22"}').attempt == 1
    for body, text in [
        ("nope", "not JSON"),
        ("[]", "must be a JSON object"),
        ('{"date": "2026-11-22", "attempt": 0}', "positive integer"),
        ('{"date": "2026-11-22", "attempt": "2"}', "positive integer"),
        ('{"attempt": 2}', "queued job 'date' must be a day YYYY-MM-DD"),
    ]:
        with pytest.raises(InvalidEventError, match=text):
            Job.from_json(default_source=DEFAULT_SOURCE, body=body)


def test_a_message_queued_before_sources_is_the_default_sources_and_restarts_a_continued_day() -> None:
    checkpoint = {"after_key": "101000", "next_page": 2, "exported_at": "t", "tail_key": "seq/_staging/dt=x/a.jsonl"}
    old = {"date": DAY, "attempt": 1, "reason": "continue", "checkpoint": checkpoint}

    queued = Job.from_dict(old, default_source="global")
    named = Job.from_dict(old | {"source": "global"}, default_source="global")

    assert (queued.source, queued.kind, queued.checkpoint) == ("global", "subusers", None)
    assert named.checkpoint is not None
    assert named.checkpoint.after_key == "101000"
