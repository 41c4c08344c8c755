"""Typed settings, read once per container from the environment.

The local runner and the Lambda read the same variables, so a misconfiguration shows up the
same way everywhere: at start, as one ``ConfigError`` naming the variable.
AWS endpoints are deliberately absent: boto3 reads ``AWS_ENDPOINT_URL`` itself.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from urllib.parse import urlparse

from botocore.config import Config

from seq_export.errors import ConfigError
from seq_export.layout import DEFAULT_ACCOUNT_PREFIX, DEFAULT_PREFIX
from seq_export.models import SCORE_MAX, SCORE_MIN

DEFAULT_API_BASE_URL = "https://api.sendgrid.com"
#: 16 answers of 202 with delays 300, 600, 900, 900, ... cover about 3.5 hours of SendGrid
#: still computing the day, long past the usual readiness, yet short enough to page someone
#: on the same morning.
DEFAULT_MAX_NOT_READY_ATTEMPTS = 16
DEFAULT_NOT_READY_DELAY_SECONDS = 300
SQS_MAX_DELAY_SECONDS = 900
MAX_PAGE_SIZE = 1000
DEFAULT_READ_TIMEOUT_SECONDS = 30


def aws_client_config(*, read_timeout: int = 30, max_attempts: int = 5) -> Config:
    """botocore's client settings for every AWS call we make: its standard retry mode is the one
    retry layer for AWS (bounded by ``max_attempts``), and the pool fits a page's parallel writes."""
    return Config(
        retries={"mode": "standard", "max_attempts": max_attempts},
        connect_timeout=5,
        read_timeout=read_timeout,
        max_pool_connections=16,
    )


@dataclass(frozen=True, slots=True)
class Settings:
    api_base_url: str
    api_key_secret_id: str
    scores_bucket: str
    scores_prefix: str
    latest_scores_table: str
    retry_queue_url: str
    dead_letter_queue_url: str
    idempotency_table: str
    max_not_ready_attempts: int = DEFAULT_MAX_NOT_READY_ATTEMPTS
    not_ready_delay_seconds: int = DEFAULT_NOT_READY_DELAY_SECONDS
    page_size: int = MAX_PAGE_SIZE
    read_timeout_seconds: int = DEFAULT_READ_TIMEOUT_SECONDS
    export_account_scores: bool = True
    account_scores_prefix: str = DEFAULT_ACCOUNT_PREFIX
    score_change_event_bus: str | None = None  # None: no score-change events (the default)
    score_change_min_step: Decimal = Decimal(1)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        settings = cls(
            api_base_url=_url(env, "SEQ_API_BASE_URL", DEFAULT_API_BASE_URL).rstrip("/"),
            api_key_secret_id=_required(env, "SEQ_API_KEY_SECRET_ID"),
            scores_bucket=_required(env, "SCORES_BUCKET"),
            scores_prefix=_prefix(env, "SCORES_PREFIX", DEFAULT_PREFIX),
            latest_scores_table=_required(env, "LATEST_SCORES_TABLE"),
            retry_queue_url=_url(env, "RETRY_QUEUE_URL", None),
            dead_letter_queue_url=_url(env, "DEAD_LETTER_QUEUE_URL", None),
            idempotency_table=_required(env, "IDEMPOTENCY_TABLE"),
            max_not_ready_attempts=_int(env, "MAX_NOT_READY_ATTEMPTS", DEFAULT_MAX_NOT_READY_ATTEMPTS, 1, 1000),
            not_ready_delay_seconds=_int(
                env, "NOT_READY_DELAY_SECONDS", DEFAULT_NOT_READY_DELAY_SECONDS, 0, SQS_MAX_DELAY_SECONDS
            ),
            page_size=_int(env, "SEQ_PAGE_SIZE", MAX_PAGE_SIZE, 1, MAX_PAGE_SIZE),
            read_timeout_seconds=_int(env, "SEQ_READ_TIMEOUT_SECONDS", DEFAULT_READ_TIMEOUT_SECONDS, 1, 300),
            export_account_scores=_bool(env, "EXPORT_ACCOUNT_SCORES", default=True),
            account_scores_prefix=_prefix(env, "ACCOUNT_SCORES_PREFIX", DEFAULT_ACCOUNT_PREFIX),
            score_change_event_bus=_raw(env, "SCORE_CHANGE_EVENT_BUS"),
            score_change_min_step=_step(env, "SCORE_CHANGE_MIN_STEP"),
        )
        first, second = sorted((settings.scores_prefix + "/", settings.account_scores_prefix + "/"))
        if second.startswith(first):
            raise ConfigError(
                f"ACCOUNT_SCORES_PREFIX ({settings.account_scores_prefix}) and SCORES_PREFIX "
                f"({settings.scores_prefix}) must not contain one another"
            )
        return settings


def _raw(env: Mapping[str, str], name: str) -> str | None:
    value = env.get(name)
    if value is None or not value.strip():
        return None
    return value.strip()


def _required(env: Mapping[str, str], name: str) -> str:
    value = _raw(env, name)
    if value is None:
        raise ConfigError(f"{name} is required but not set")
    return value


def _url(env: Mapping[str, str], name: str, default: str | None) -> str:
    value = _raw(env, name) or default
    if value is None:
        raise ConfigError(f"{name} is required but not set")
    parsed = urlparse(value)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise ConfigError(f"{name} must be an http(s) URL, got {value!r}")
    return value


def _prefix(env: Mapping[str, str], name: str, default: str) -> str:
    value = (_raw(env, name) or default).strip("/")
    if not value or "//" in value:
        raise ConfigError(f"{name} must be a non-empty S3 key prefix without empty segments, got {value!r}")
    return value


def _int(env: Mapping[str, str], name: str, default: int, low: int, high: int) -> int:
    raw = _raw(env, name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be an integer between {low} and {high}, got {raw!r}") from None
    if not low <= value <= high:
        raise ConfigError(f"{name} must be between {low} and {high}, got {value}")
    return value


def _bool(env: Mapping[str, str], name: str, *, default: bool) -> bool:
    raw = _raw(env, name)
    if raw is None:
        return default
    value = raw.lower()
    if value in ("true", "1", "yes", "on"):
        return True
    if value in ("false", "0", "no", "off"):
        return False
    raise ConfigError(f"{name} must be true or false, got {raw!r}")


def _step(env: Mapping[str, str], name: str) -> Decimal:
    raw = _raw(env, name)
    if raw is None:
        return Decimal(1)
    try:
        value = Decimal(raw)
    except InvalidOperation:
        value = Decimal("NaN")
    if not value.is_finite() or not 0 < value <= SCORE_MAX - SCORE_MIN:
        raise ConfigError(f"{name} must be a number above 0 and at most {SCORE_MAX - SCORE_MIN}, got {raw!r}")
    return value
