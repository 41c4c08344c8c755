"""Secrets Manager adapter: the SendGrid API key, fetched through Powertools Parameters.

Powertools caches the secret for ``max_age`` seconds, so a warm container asks Secrets Manager
once per five minutes. When SendGrid refuses the cached key (rotated and revoked), the client
calls ``refresh``, which reads the secret again bypassing the cache, so a rotation costs one
refused request rather than five minutes of failed exports. The key is returned to the HTTP
client only; errors name the secret, never its value.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from aws_lambda_powertools.utilities.parameters import SecretsProvider
from aws_lambda_powertools.utilities.parameters.exceptions import GetParameterError

from seq_export.errors import ConfigError
from seq_export.layout import DEFAULT_SOURCE

if TYPE_CHECKING:
    from mypy_boto3_secretsmanager import SecretsManagerClient

SECRET_MAX_AGE_SECONDS = 300


class ApiKeySource:
    def __init__(
        self,
        client: SecretsManagerClient,
        secret_id: str,
        *,
        source: str = DEFAULT_SOURCE,
        max_age: int = SECRET_MAX_AGE_SECONDS,
    ) -> None:
        self._provider = SecretsProvider(boto3_client=client)
        self._secret_id = secret_id
        self._source = source
        self._max_age = max_age

    def __call__(self) -> str:
        return self._read(force_fetch=False)

    def refresh(self) -> str:
        """The key as Secrets Manager holds it now; the cache is updated with it."""
        return self._read(force_fetch=True)

    def _read(self, *, force_fetch: bool) -> str:
        try:
            value = self._provider.get(self._secret_id, max_age=self._max_age, force_fetch=force_fetch)
        except GetParameterError as exc:
            cause = exc.__cause__ or exc
            code = getattr(cause, "response", {}).get("Error", {}).get("Code", type(cause).__name__)
            raise ConfigError(
                f"cannot read secret {self._secret_id!r} (the secret_id of source {self._source}): {code}"
            ) from None
        return parse_api_key(value, self._secret_id)


def parse_api_key(value: object, secret_id: str) -> str:
    """Accept a plain SecretString or JSON ``{"api_key": "..."}``."""
    if isinstance(value, bytes):
        value = value.decode("utf-8", errors="strict")
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"secret {secret_id!r} is empty; store the SendGrid API key in it")
    text = value.strip()
    if text.startswith("{"):
        try:
            data = json.loads(text)
        except ValueError:
            raise ConfigError(f"secret {secret_id!r} looks like JSON but does not parse") from None
        key = data.get("api_key") if isinstance(data, dict) else None
        if not isinstance(key, str) or not key.strip():
            raise ConfigError(f'secret {secret_id!r} is JSON without a non-empty "api_key" string')
        text = key.strip()
    if any(ch.isspace() or not ch.isprintable() for ch in text):
        raise ConfigError(f"secret {secret_id!r} holds whitespace or control characters inside the key")
    return text
