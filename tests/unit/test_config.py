"""Settings: defaults, and one clear message naming the variable when something is wrong."""

from __future__ import annotations

import json

import pytest

from seq_export.config import Env, Settings, Source
from seq_export.errors import ConfigError
from seq_export_cli.app import Target
from seq_export_cli.errors import TargetConfigError

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


@pytest.mark.parametrize("prefix", ["a//b", "///", "/lake//seq/"])
def test_the_cli_refuses_a_prefix_the_function_refuses_in_the_same_words(prefix: str) -> None:
    with pytest.raises(ConfigError) as function:
        Settings.from_env(REQUIRED | {Env.ACCOUNT_SCORES_PREFIX: prefix})
    with pytest.raises(TargetConfigError) as cli:
        Target.from_env({Env.ACCOUNT_SCORES_PREFIX: prefix})

    assert str(cli.value) == str(function.value)
    assert str(function.value).startswith(f"{Env.ACCOUNT_SCORES_PREFIX} must be a non-empty S3 key prefix")


def test_the_cli_reads_a_prefix_as_the_function_does() -> None:
    given = {Env.SCORES_PREFIX: " /lake/seq/ ", Env.ACCOUNT_SCORES_PREFIX: "lake/account/"}

    settings = Settings.from_env(REQUIRED | given)
    target = Target.from_env(given)

    assert (target.prefix, target.account_prefix) == (settings.scores_prefix, settings.account_scores_prefix)
    assert target.prefix == "lake/seq"


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


# -- sources -------------------------------------------------------------------------------------
GLOBAL = {"name": "global", "base_url": "https://api.sendgrid.com/", "secret_id": "arn:global"}
EU = {"name": "eu", "base_url": "https://api.eu.sendgrid.com", "secret_id": "arn:eu", "account_scores": False}
WITHOUT_SINGLE_SOURCE = {k: v for k, v in REQUIRED.items() if k != "SEQ_API_KEY_SECRET_ID"}


def with_sources(value: object, **extra: str) -> dict[str, str]:
    raw = value if isinstance(value, str) else json.dumps(value)
    return WITHOUT_SINGLE_SOURCE | {"SEQ_SOURCES": raw} | extra


def test_seq_sources_configures_every_source_in_order() -> None:
    settings = Settings.from_env(with_sources([GLOBAL, EU]))

    assert settings.sources == (
        Source("global", "https://api.sendgrid.com", "arn:global", True),
        Source("eu", "https://api.eu.sendgrid.com", "arn:eu", False),
    )
    assert settings.source_names == ("global", "eu")


def test_without_seq_sources_the_one_source_is_default_from_the_single_source_variables() -> None:
    settings = Settings.from_env(REQUIRED | {"SEQ_API_BASE_URL": "https://api.eu.sendgrid.com"})

    assert settings.source_names == ("default",)
    assert settings.sources[0].secret_id == REQUIRED["SEQ_API_KEY_SECRET_ID"]


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("[{", r"^SEQ_SOURCES is not JSON \("),
        ({"name": "global"}, r"^SEQ_SOURCES must be a non-empty JSON list of sources"),
        ([], r"^SEQ_SOURCES must be a non-empty JSON list of sources"),
        ([GLOBAL, "eu"], r"^SEQ_SOURCES item 2: must be an object with name, base_url, secret_id$"),
        ([GLOBAL, EU | {"name": "global"}], r"^SEQ_SOURCES item 2: 'name' 'global' is used by an earlier source"),
        ([GLOBAL | {"name": "EU West"}], r"^SEQ_SOURCES item 1: 'name' must be 1 to 32 characters of a-z, 0-9 and -"),
        ([GLOBAL | {"name": "a" * 33}], r"^SEQ_SOURCES item 1: 'name' must be 1 to 32 characters"),
        ([GLOBAL, {"name": "eu", "base_url": "https://x"}], r"^SEQ_SOURCES item 2: 'secret_id' is required"),
        ([GLOBAL, EU | {"base_url": "ftp://api.eu.sendgrid.com"}], r"^SEQ_SOURCES item 2: 'base_url' must be an"),
        ([GLOBAL, EU | {"account_scores": "no"}], r"^SEQ_SOURCES item 2: 'account_scores' must be true or false"),
        ([GLOBAL, EU | {"region": "eu"}], r"^SEQ_SOURCES item 2: unknown field 'region'"),
    ],
    ids=[
        "not-json",
        "not-a-list",
        "empty",
        "item-not-object",
        "duplicate-name",
        "malformed-name",
        "name-too-long",
        "missing-field",
        "base-url-not-http",
        "account-scores-not-bool",
        "unknown-field",
    ],
)
def test_a_malformed_seq_sources_is_one_error_naming_it_the_item_and_the_field(value: object, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        Settings.from_env(with_sources(value))


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("SEQ_API_BASE_URL", "https://api.eu.sendgrid.com"),
        ("SEQ_API_KEY_SECRET_ID", "arn:other"),
        ("EXPORT_ACCOUNT_SCORES", "false"),
    ],
)
def test_a_single_source_variable_beside_seq_sources_must_agree_with_the_first_source(name: str, value: str) -> None:
    with pytest.raises(ConfigError, match=f"^SEQ_SOURCES item 1: {name} is set beside it to"):
        Settings.from_env(with_sources([GLOBAL, EU], **{name: value}))


def test_a_single_source_variable_that_agrees_with_the_first_source_is_accepted() -> None:
    env = with_sources([GLOBAL], SEQ_API_BASE_URL="https://api.sendgrid.com", SEQ_API_KEY_SECRET_ID="arn:global")

    assert Settings.from_env(env).source_names == ("global",)


def test_an_unknown_source_name_lists_the_configured_ones() -> None:
    settings = Settings.from_env(with_sources([GLOBAL, EU]))

    with pytest.raises(ConfigError, match=r"^unknown source 'apac'; the configured sources are global, eu$"):
        settings.source("apac")
