"""The API key from its secret: plain or JSON, errors naming the secret and never the value."""

from __future__ import annotations

from typing import Any, cast

import pytest

from seq_export.api_key import ApiKeySource, parse_api_key
from seq_export.errors import ConfigError
from tests.support import client_error

SECRET = "seq-export/sendgrid"


@pytest.mark.parametrize(
    "stored",
    ["SG.abc.def", "  SG.abc.def\n", '{"api_key": "SG.abc.def"}', b"SG.abc.def", '{"api_key": " SG.abc.def ", "x": 1}'],
)
def test_plain_and_json_secrets_give_the_key(stored: str | bytes) -> None:
    assert parse_api_key(stored, SECRET) == "SG.abc.def"


@pytest.mark.parametrize(
    ("stored", "message"),
    [
        ("", "is empty"),
        (None, "is empty"),
        ('{"key": "SG.secret-value"}', 'JSON without a non-empty "api_key"'),
        ('{"api_key": ""}', 'JSON without a non-empty "api_key"'),
        ('{"api_key": "SG.secret-value"', "looks like JSON but does not parse"),
        ("SG.secret\n-value", "whitespace or control characters"),
        ('{"api_key": "SG.secret\\u0000-value"}', "whitespace or control characters"),
    ],
)
def test_unusable_secrets_are_named_without_echoing_the_value(stored: object, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_api_key(stored, SECRET)

    assert message in str(caught.value)
    assert SECRET in str(caught.value)
    assert "secret-value" not in str(caught.value)


class DeniedSecrets:
    """A Secrets Manager client whose every read is refused."""

    def get_secret_value(self, **_: object) -> dict[str, object]:
        raise client_error("AccessDeniedException", "GetSecretValue")


def test_an_unreadable_secret_names_the_source_whose_secret_it_is() -> None:
    source = ApiKeySource(
        cast(Any, DeniedSecrets()), "arn:aws:secretsmanager:eu-west-1:1:secret:eu-AbCdEf", source="eu"
    )

    with pytest.raises(ConfigError) as caught:
        source()

    assert str(caught.value).startswith(
        "cannot read secret 'arn:aws:secretsmanager:eu-west-1:1:secret:eu-AbCdEf' (the secret_id of source eu): "
    )
