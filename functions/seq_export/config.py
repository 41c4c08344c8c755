"""Typed settings, read once per container from the environment.

The local runner and the Lambda read the same variables, so a misconfiguration shows up the
same way everywhere: at start, as one ``ConfigError`` naming the variable.
AWS endpoints are deliberately absent: boto3 reads ``AWS_ENDPOINT_URL`` itself.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from urllib.parse import urlparse

from botocore.config import Config

from seq_export import layout
from seq_export.errors import ConfigError
from seq_export.layout import DEFAULT_ACCOUNT_PREFIX, DEFAULT_PREFIX, DEFAULT_SOURCE
from seq_export.models import SCORE_MAX, SCORE_MIN, SOURCE_NAME

DEFAULT_API_BASE_URL = "https://api.sendgrid.com"
#: 16 answers of 202 with delays 300, 600, 900, 900, ... cover about 3.5 hours of SendGrid
#: still computing the day, long past the usual readiness, yet short enough to page someone
#: on the same morning.
DEFAULT_MAX_NOT_READY_ATTEMPTS = 16
DEFAULT_NOT_READY_DELAY_SECONDS = 300
SQS_MAX_DELAY_SECONDS = 900
MAX_PAGE_SIZE = 1000
DEFAULT_READ_TIMEOUT_SECONDS = 30
#: SendGrid publishes no limits for these endpoints. Its v3 answers elsewhere say 600 requests a
#: minute (10 a second); 8 pages in flight at about a second each stays under that, leaves room
#: for an operator's other calls on the same key, and fits requests' pool of 10 connections.
DEFAULT_MAX_IN_FLIGHT = 8
MAX_IN_FLIGHT = 32


def aws_client_config(*, read_timeout: int = 30, max_attempts: int = 5) -> Config:
    """botocore's client settings for every AWS call we make: its standard retry mode is the one
    retry layer for AWS (bounded by ``max_attempts``), and the pool fits a page's parallel writes."""
    return Config(
        retries={"mode": "standard", "max_attempts": max_attempts},
        connect_timeout=5,
        read_timeout=read_timeout,
        max_pool_connections=16,
    )


SOURCE_FIELDS = ("name", "base_url", "secret_id", "account_scores")


@dataclass(frozen=True, slots=True)
class Source:
    """One SendGrid API key at one host: a parent account (or its EU-pinned subusers) exported
    exactly as a single-source stack exports its one account."""

    name: str
    base_url: str
    secret_id: str
    account_scores: bool = True


class Env:
    """The function's environment variables, by name: the one spelling the function, the CLI,
    ``local/``, the tests and the template test import."""

    SEQ_SOURCES = "SEQ_SOURCES"
    LAKE_SOURCE_NAMES = "LAKE_SOURCE_NAMES"
    SEQ_API_BASE_URL = "SEQ_API_BASE_URL"
    SEQ_API_KEY_SECRET_ID = "SEQ_API_KEY_SECRET_ID"  # noqa: S105 - the name of a variable holding an ARN
    SCORES_BUCKET = "SCORES_BUCKET"
    SCORES_PREFIX = "SCORES_PREFIX"
    LATEST_SCORES_TABLE = "LATEST_SCORES_TABLE"
    RETRY_QUEUE_URL = "RETRY_QUEUE_URL"
    DEAD_LETTER_QUEUE_URL = "DEAD_LETTER_QUEUE_URL"
    IDEMPOTENCY_TABLE = "IDEMPOTENCY_TABLE"
    MAX_NOT_READY_ATTEMPTS = "MAX_NOT_READY_ATTEMPTS"
    NOT_READY_DELAY_SECONDS = "NOT_READY_DELAY_SECONDS"
    SEQ_PAGE_SIZE = "SEQ_PAGE_SIZE"
    SEQ_READ_TIMEOUT_SECONDS = "SEQ_READ_TIMEOUT_SECONDS"
    SEQ_RANGED_FETCH = "SEQ_RANGED_FETCH"
    SEQ_MAX_IN_FLIGHT = "SEQ_MAX_IN_FLIGHT"
    EXPORT_ACCOUNT_SCORES = "EXPORT_ACCOUNT_SCORES"
    ACCOUNT_SCORES_PREFIX = "ACCOUNT_SCORES_PREFIX"
    SCORE_CHANGE_EVENT_BUS = "SCORE_CHANGE_EVENT_BUS"
    SCORE_CHANGE_MIN_STEP = "SCORE_CHANGE_MIN_STEP"


@dataclass(frozen=True, slots=True)
class Settings:
    sources: tuple[Source, ...]
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
    key_ranges: bool = True  # fetch a day in key ranges when the cursor allows; False: always in order
    max_in_flight: int = DEFAULT_MAX_IN_FLIGHT  # SendGrid requests of one day at once
    account_scores_prefix: str = DEFAULT_ACCOUNT_PREFIX
    score_change_event_bus: str | None = None  # None: no score-change events (the default)
    score_change_min_step: Decimal = Decimal(1)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        settings = cls(
            sources=sources_from_env(env),
            scores_bucket=_required(env, Env.SCORES_BUCKET),
            scores_prefix=_prefix(env, Env.SCORES_PREFIX, DEFAULT_PREFIX),
            latest_scores_table=_required(env, Env.LATEST_SCORES_TABLE),
            retry_queue_url=_url(env, Env.RETRY_QUEUE_URL, None),
            dead_letter_queue_url=_url(env, Env.DEAD_LETTER_QUEUE_URL, None),
            idempotency_table=_required(env, Env.IDEMPOTENCY_TABLE),
            max_not_ready_attempts=_int(env, Env.MAX_NOT_READY_ATTEMPTS, DEFAULT_MAX_NOT_READY_ATTEMPTS, 1, 1000),
            not_ready_delay_seconds=_int(
                env, Env.NOT_READY_DELAY_SECONDS, DEFAULT_NOT_READY_DELAY_SECONDS, 0, SQS_MAX_DELAY_SECONDS
            ),
            page_size=_int(env, Env.SEQ_PAGE_SIZE, MAX_PAGE_SIZE, 1, MAX_PAGE_SIZE),
            read_timeout_seconds=_int(env, Env.SEQ_READ_TIMEOUT_SECONDS, DEFAULT_READ_TIMEOUT_SECONDS, 1, 300),
            key_ranges=_bool(env, Env.SEQ_RANGED_FETCH, default=True),
            max_in_flight=_int(env, Env.SEQ_MAX_IN_FLIGHT, DEFAULT_MAX_IN_FLIGHT, 1, MAX_IN_FLIGHT),
            account_scores_prefix=_prefix(env, Env.ACCOUNT_SCORES_PREFIX, DEFAULT_ACCOUNT_PREFIX),
            score_change_event_bus=_raw(env, Env.SCORE_CHANGE_EVENT_BUS),
            score_change_min_step=_step(env, Env.SCORE_CHANGE_MIN_STEP),
        )
        check_prefixes_apart(settings.scores_prefix, settings.account_scores_prefix)
        return settings

    @property
    def source_names(self) -> tuple[str, ...]:
        """The configured sources' names, the first being the default of a request that names none."""
        return tuple(source.name for source in self.sources)

    def source(self, name: str) -> Source:
        """The source called ``name``; a ``ConfigError`` listing the configured ones otherwise."""
        for source in self.sources:
            if source.name == name:
                return source
        raise ConfigError(unknown_source(name, self.source_names))


def unknown_source(name: str, configured: tuple[str, ...]) -> str:
    return f"unknown source {name!r}; the configured sources are {', '.join(configured)}"


def check_prefixes_apart(scores_prefix: str, account_prefix: str) -> None:
    """The two datasets' prefixes must not contain one another, or one table would read the other."""
    first, second = sorted((scores_prefix.strip("/") + "/", account_prefix.strip("/") + "/"))
    if second.startswith(first):
        raise ConfigError(
            f"{Env.ACCOUNT_SCORES_PREFIX} ({account_prefix}) and {Env.SCORES_PREFIX} "
            f"({scores_prefix}) must not contain one another"
        )


def sources_from_env(env: Mapping[str, str]) -> tuple[Source, ...]:
    """``SEQ_SOURCES`` (a JSON list of sources), or unset: the one source ``default`` from
    ``SEQ_API_BASE_URL``, ``SEQ_API_KEY_SECRET_ID`` and ``EXPORT_ACCOUNT_SCORES``, as a
    single-source stack has always been configured."""
    raw = _raw(env, Env.SEQ_SOURCES)
    if raw is None:
        return (
            Source(
                name=DEFAULT_SOURCE,
                base_url=_url(env, Env.SEQ_API_BASE_URL, DEFAULT_API_BASE_URL).rstrip("/"),
                secret_id=_required(env, Env.SEQ_API_KEY_SECRET_ID),
                account_scores=_bool(env, Env.EXPORT_ACCOUNT_SCORES, default=True),
            ),
        )
    sources = parse_sources(raw)
    check_lake_names(sources, _raw(env, Env.LAKE_SOURCE_NAMES))
    first = sources[0]
    beside = {
        Env.SEQ_API_BASE_URL: (first.base_url, _raw(env, Env.SEQ_API_BASE_URL)),
        Env.SEQ_API_KEY_SECRET_ID: (first.secret_id, _raw(env, Env.SEQ_API_KEY_SECRET_ID)),
    }
    for name, (expected, given) in beside.items():
        if given is not None and given.rstrip("/") != expected:
            raise ConfigError(
                f"{Env.SEQ_SOURCES} item 1: {name} is set beside it to {given!r}, which is not the first "
                "source's; unset it, or make it the first source's"
            )
    account = _raw(env, Env.EXPORT_ACCOUNT_SCORES)
    if account is not None and _bool(env, Env.EXPORT_ACCOUNT_SCORES, default=True) != first.account_scores:
        raise ConfigError(
            f"{Env.SEQ_SOURCES} item 1: {Env.EXPORT_ACCOUNT_SCORES} is set beside it to {account!r}, which is "
            "not the first source's account_scores; unset it, or make them agree"
        )
    return sources


def check_lake_names(sources: tuple[Source, ...], lake_names: str | None) -> None:
    """``LAKE_SOURCE_NAMES`` (the template's SourceName and ExtraSourceNames, which the Athena
    tables project) must list the sources of ``SEQ_SOURCES`` in order: a source missing there
    would be exported where no query looks. Unset (no template): nothing to compare."""
    if lake_names is None:
        return
    listed = [name.strip() for name in lake_names.split(",")]
    for position, source in enumerate(sources, start=1):
        if position > len(listed) or listed[position - 1] != source.name:
            raise ConfigError(
                f"{Env.SEQ_SOURCES} item {position}: 'name' {source.name!r} is not name {position} of "
                f"{Env.LAKE_SOURCE_NAMES} ({lake_names}): list the extra sources' names in ExtraSourceNames "
                "in the order of ExtraSources"
            )
    if len(listed) > len(sources):
        raise ConfigError(
            f"{Env.LAKE_SOURCE_NAMES} ({lake_names}) lists {', '.join(listed[len(sources) :])} beyond "
            f"{Env.SEQ_SOURCES}: ExtraSourceNames names a source ExtraSources does not have"
        )


def parse_sources(raw: str) -> tuple[Source, ...]:
    """Each item checked, with errors naming ``SEQ_SOURCES``, the item's position (1-based) and the field."""
    name = Env.SEQ_SOURCES
    try:
        items = json.loads(raw)
    except ValueError as exc:
        raise ConfigError(f"{name} is not JSON ({exc}); expected a list of sources") from None
    if not isinstance(items, list) or not items:
        raise ConfigError(f"{name} must be a non-empty JSON list of sources, got {raw[:80]!r}")
    sources: list[Source] = []
    for position, item in enumerate(items, start=1):
        where = f"{name} item {position}"
        if not isinstance(item, dict):
            raise ConfigError(f"{where}: must be an object with {', '.join(SOURCE_FIELDS[:3])}")
        unknown = sorted(set(item) - set(SOURCE_FIELDS))
        if unknown:
            raise ConfigError(f"{where}: unknown field {unknown[0]!r}; the fields are {', '.join(SOURCE_FIELDS)}")
        for field_name in SOURCE_FIELDS[:3]:
            if not isinstance(item.get(field_name), str) or not item[field_name].strip():
                raise ConfigError(f"{where}: '{field_name}' is required (a non-empty string)")
        source_name = item["name"]
        if not SOURCE_NAME.fullmatch(source_name):
            raise ConfigError(f"{where}: 'name' must be 1 to 32 characters of a-z, 0-9 and -, got {source_name!r}")
        if source_name in (source.name for source in sources):
            raise ConfigError(f"{where}: 'name' {source_name!r} is used by an earlier source; names are unique")
        base_url = item["base_url"].strip()
        parsed = urlparse(base_url)
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise ConfigError(f"{where}: 'base_url' must be an http(s) URL, got {base_url!r}")
        account_scores = item.get("account_scores", True)
        if not isinstance(account_scores, bool):
            raise ConfigError(f"{where}: 'account_scores' must be true or false, got {account_scores!r}")
        sources.append(Source(source_name, base_url.rstrip("/"), item["secret_id"].strip(), account_scores))
    return tuple(sources)


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
    return key_prefix(_raw(env, name), name, default)


def key_prefix(raw: str | None, where: str, default: str) -> str:
    """A dataset's S3 key prefix, ``raw`` or else ``default``, without its outer slashes; a
    ``ConfigError`` naming ``where`` (a variable, or a stack's output) when nothing is left or a
    segment is empty (``a//b``). The function's settings and the CLI's target check it here."""
    value = layout.normal_prefix(raw or default)
    if not value or "//" in value:
        raise ConfigError(f"{where} must be a non-empty S3 key prefix without empty segments, got {raw!r}")
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
