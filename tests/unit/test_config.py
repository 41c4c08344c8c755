"""Settings: defaults, and one clear message naming the variable when something is wrong."""

from __future__ import annotations

import pytest

from seq_export.config import Settings, Source
from seq_export.errors import ConfigError

REQUIRED = {
    "SEQ_API_KEY_SECRET_ID": "seq-export/sendgrid",
    "SCORES_BUCKET": "lake",
    "LATEST_SCORES_TABLE": "latest",
    "RETRY_QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/123456789012/retry",
    "DEAD_LETTER_QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/123456789012/dlq",
    "IDEMPOTENCY_TABLE": "idempotency",
}


def test_defaults_fill_everything_optional() -> None:
    settings = Settings.from_env(REQUIRED)

    assert settings.sources == (Source("default", "https://api.sendgrid.com", "seq-export/sendgrid", True),)
    assert settings.scores_prefix == "seq/subuser_scores"
    assert settings.max_not_ready_attempts == 16
    assert settings.not_ready_delay_seconds == 300
    assert settings.page_size == 1000


def test_values_are_read_and_normalised() -> None:
    settings = Settings.from_env(
        REQUIRED
        | {
            "SEQ_API_BASE_URL": "https://api.eu.sendgrid.com/",
            "SCORES_PREFIX": "/lake/seq/",
            "MAX_NOT_READY_ATTEMPTS": " 4 ",
            "NOT_READY_DELAY_SECONDS": "900",
        }
    )

    assert settings.sources[0].base_url == "https://api.eu.sendgrid.com"
    assert settings.scores_prefix == "lake/seq"
    assert (settings.max_not_ready_attempts, settings.not_ready_delay_seconds) == (4, 900)


@pytest.mark.parametrize("name", sorted(REQUIRED))
def test_a_missing_required_variable_is_named(name: str) -> None:
    env = {k: v for k, v in REQUIRED.items() if k != name}

    with pytest.raises(ConfigError, match=f"^{name} is required but not set$"):
        Settings.from_env(env)


def test_a_blank_required_variable_counts_as_missing() -> None:
    with pytest.raises(ConfigError, match="SCORES_BUCKET is required"):
        Settings.from_env(REQUIRED | {"SCORES_BUCKET": "  "})


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("MAX_NOT_READY_ATTEMPTS", "many", "MAX_NOT_READY_ATTEMPTS must be an integer between 1 and 1000, got 'many'"),
        ("MAX_NOT_READY_ATTEMPTS", "0", "MAX_NOT_READY_ATTEMPTS must be between 1 and 1000, got 0"),
        ("NOT_READY_DELAY_SECONDS", "901", "NOT_READY_DELAY_SECONDS must be between 0 and 900, got 901"),
        ("SEQ_PAGE_SIZE", "1001", "SEQ_PAGE_SIZE must be between 1 and 1000"),
        ("SEQ_API_BASE_URL", "api.sendgrid.com", "SEQ_API_BASE_URL must be an http(s) URL"),
        ("RETRY_QUEUE_URL", "retry", "RETRY_QUEUE_URL must be an http(s) URL"),
        ("SCORES_PREFIX", "a//b", "SCORES_PREFIX must be a non-empty S3 key prefix"),
        ("SCORES_PREFIX", "///", "SCORES_PREFIX must be a non-empty S3 key prefix"),
    ],
)
def test_a_malformed_value_is_named_with_what_was_expected(name: str, value: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        Settings.from_env(REQUIRED | {name: value})

    assert str(caught.value).startswith(message)


def test_score_change_events_are_off_unless_a_bus_is_named() -> None:
    assert Settings.from_env(REQUIRED).score_change_event_bus is None
    settings = Settings.from_env(REQUIRED | {"SCORE_CHANGE_EVENT_BUS": "scores", "SCORE_CHANGE_MIN_STEP": "0.5"})
    assert (settings.score_change_event_bus, str(settings.score_change_min_step)) == ("scores", "0.5")


@pytest.mark.parametrize("value", ["0", "-1", "5", "NaN", "lots"])
def test_a_step_outside_what_a_score_can_move_is_refused(value: str) -> None:
    with pytest.raises(ConfigError, match="SCORE_CHANGE_MIN_STEP must be a number above 0 and at most 4"):
        Settings.from_env(REQUIRED | {"SCORE_CHANGE_MIN_STEP": value})


def test_account_scores_settings_and_overlapping_prefixes() -> None:
    assert Settings.from_env(REQUIRED).sources[0].account_scores is True
    assert Settings.from_env(REQUIRED | {"EXPORT_ACCOUNT_SCORES": "false"}).sources[0].account_scores is False
    with pytest.raises(ConfigError, match="EXPORT_ACCOUNT_SCORES must be true or false"):
        Settings.from_env(REQUIRED | {"EXPORT_ACCOUNT_SCORES": "maybe"})
    with pytest.raises(ConfigError, match="must not contain one another"):
        Settings.from_env(REQUIRED | {"ACCOUNT_SCORES_PREFIX": "seq/subuser_scores/account"})
