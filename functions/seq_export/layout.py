"""The data layout in one place: where a day lives in S3, what lies beside it, the latest-score
table's names, and the Glue columns. The function, the CLI, ``local/``, tests, the benchmark and
the template tests import these; nothing else spells ``dt=`` or a key.

``{prefix}/dt=YYYY-MM-DD/scores.jsonl`` is the contract (docs/architecture.md): one object per
day, Hive-style, so Athena, Glue, Spark and DuckDB read the partition from the path. Paths that
start with ``_`` (quarantine, staging) are skipped by all of them, so nothing but published days
is ever read as data.
"""

from __future__ import annotations

from seq_export.models import METRIC_NAMES, RECORD_KEYS

#: Partition column of the lake: ``{prefix}/dt=YYYY-MM-DD/``.
PARTITION_KEY = "dt"
OBJECT_NAME = "scores.jsonl"
CONTENT_TYPE = "application/x-ndjson; charset=utf-8"
#: Bad SendGrid answers, kept as received for a person to inspect.
QUARANTINE = "_quarantine"
#: Lines of a day cut short by the Lambda time limit, too few for a multipart part (< 5 MiB).
STAGING = "_staging"
DEFAULT_PREFIX = "seq/subuser_scores"
DEFAULT_ACCOUNT_PREFIX = "seq/account_scores"

#: The latest-score table: partition key, the exporter's own bookkeeping item (the write lease,
#: see latest_store), the sparse keys-only index for lookups by name, and the item's attributes.
TABLE_KEY = "user_id"
CONTROL_KEY = "#seq-export#control"
USERNAME_INDEX = "username-index"
ITEM_ATTRIBUTES: tuple[str, ...] = ("date", "updated_at", "username", "score", "metrics")


def normal_prefix(prefix: str) -> str:
    return prefix.strip("/")


def partition(prefix: str, day: str) -> str:
    """The day's Hive partition, ``{prefix}/dt=YYYY-MM-DD``."""
    return f"{normal_prefix(prefix)}/{PARTITION_KEY}={day}"


def partitions_prefix(prefix: str) -> str:
    """What every day's partition starts with, ``{prefix}/dt=``: list it with delimiter ``/``."""
    return f"{normal_prefix(prefix)}/{PARTITION_KEY}="


def day_of_partition(prefix: str, listed: str) -> str:
    """The day of a listed partition ``{prefix}/dt=YYYY-MM-DD/`` (the text after ``dt=``)."""
    return listed.removeprefix(partitions_prefix(prefix)).rstrip("/")


def day_key(prefix: str, day: str) -> str:
    """The key of the day's object, ``{prefix}/dt=YYYY-MM-DD/scores.jsonl``."""
    return f"{partition(prefix, day)}/{OBJECT_NAME}"


def quarantine_key(prefix: str, day: str, name: str) -> str:
    return f"{normal_prefix(prefix)}/{QUARANTINE}/{PARTITION_KEY}={day}/{name}"


def staging_key(prefix: str, day: str, name: str) -> str:
    return f"{normal_prefix(prefix)}/{STAGING}/{PARTITION_KEY}={day}/{name}"


def is_data_key(key: str) -> bool:
    """Whether a key is a published day (what a query engine reads), not a kept-aside answer."""
    return not any(part.startswith("_") for part in key.split("/"))


def glue_columns() -> list[dict[str, str]]:
    """Glue/Athena columns of the JSON lines, derived from the same names the writer uses.

    Numbers are ``double``: every SEQ value (1..5, at most a few decimals) is exact in it.
    """
    types = {
        "date": "string",
        "user_id": "string",
        "username": "string",
        "score": "double",
        "metrics": "struct<" + ",".join(f"{name}:double" for name in METRIC_NAMES) + ">",
        "exported_at": "string",
    }
    return [{"Name": key, "Type": types[key]} for key in RECORD_KEYS]
