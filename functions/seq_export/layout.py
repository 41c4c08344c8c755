"""The data layout in one place: where a day of one source lives in S3, what lies beside it,
the latest-score table's names, and the Glue columns. The function, the CLI, ``local/``, tests,
the benchmark and the template tests import these; nothing else spells ``source=``, ``dt=`` or a key.

``{prefix}/source=NAME/dt=YYYY-MM-DD/scores.jsonl`` is the contract (docs/architecture.md): one
object per source and day, Hive-style, so Athena, Glue, Spark and DuckDB read both partitions
from the path, and a query on one source lists only that source's prefix. Paths that start with
``_`` (quarantine, staging) are skipped by all of them, so nothing but published days is ever
read as data. A lake written before sources existed (``{prefix}/dt=YYYY-MM-DD/scores.jsonl``) is
moved under its source by ``seq-export migrate-lake`` (``legacy_*`` below).
"""

from __future__ import annotations

from seq_export.models import METRIC_NAMES, RECORD_KEYS
from seq_export.record_codec import EXTENSION

#: Partition columns of the lake, outermost first: ``{prefix}/source=NAME/dt=YYYY-MM-DD/``.
SOURCE_KEY = "source"
PARTITION_KEY = "dt"
PARTITION_KEYS = (SOURCE_KEY, PARTITION_KEY)
#: The day's object, named for the lines' format (``record_codec``).
OBJECT_NAME = f"scores{EXTENSION}"
#: The day object's user metadata: its line count and the export's ``exported_at``, so a listing
#: or HeadObject says what a day holds without reading it.
RECORDS_METADATA = "records"
EXPORTED_AT_METADATA = "exported-at"
#: Bad SendGrid answers, kept as received for a person to inspect.
QUARANTINE = "_quarantine"
#: Lines of a day cut short by the Lambda time limit, too few for a multipart part (< 5 MiB).
STAGING = "_staging"
#: The user ids a source's last finished day was cut at, for fetching the next one in key ranges.
SPLIT_POINTS = "_split_points"
DEFAULT_PREFIX = "seq/subuser_scores"
DEFAULT_ACCOUNT_PREFIX = "seq/account_scores"
#: The one source of a stack configured without ``SEQ_SOURCES``.
DEFAULT_SOURCE = "default"

#: The latest-score table: partition key, the exporter's own bookkeeping item (the write lease,
#: see latest_store), the sparse keys-only index for lookups by name, and the item's attributes.
TABLE_KEY = "user_id"
CONTROL_KEY = "#seq-export#control"
USERNAME_INDEX = "username-index"
ITEM_ATTRIBUTES: tuple[str, ...] = ("source", "date", "updated_at", "username", "score", "metrics")


def normal_prefix(prefix: str) -> str:
    return prefix.strip("/")


def sources_prefix(prefix: str) -> str:
    """What every source's folder starts with, ``{prefix}/source=``: list it with delimiter ``/``."""
    return f"{normal_prefix(prefix)}/{SOURCE_KEY}="


def source_of_folder(prefix: str, listed: str) -> str:
    """The source of a listed folder ``{prefix}/source=NAME/`` (the text after ``source=``)."""
    return listed.removeprefix(sources_prefix(prefix)).rstrip("/")


def source_folder(prefix: str, source: str) -> str:
    """``{prefix}/source=NAME``: everything one source published."""
    return f"{sources_prefix(prefix)}{source}"


def partition(prefix: str, source: str, day: str) -> str:
    """The day's Hive partition, ``{prefix}/source=NAME/dt=YYYY-MM-DD``."""
    return f"{source_folder(prefix, source)}/{PARTITION_KEY}={day}"


def partitions_prefix(prefix: str, source: str) -> str:
    """What every day's partition of a source starts with, ``{prefix}/source=NAME/dt=``."""
    return f"{source_folder(prefix, source)}/{PARTITION_KEY}="


def day_of_partition(prefix: str, source: str, listed: str) -> str:
    """The day of a listed partition ``{prefix}/source=NAME/dt=YYYY-MM-DD/`` (the text after ``dt=``)."""
    return listed.removeprefix(partitions_prefix(prefix, source)).rstrip("/")


def day_key(prefix: str, source: str, day: str) -> str:
    """The key of the day's object, ``{prefix}/source=NAME/dt=YYYY-MM-DD/scores.jsonl``."""
    return f"{partition(prefix, source, day)}/{OBJECT_NAME}"


def quarantine_key(prefix: str, source: str, day: str, name: str) -> str:
    return f"{normal_prefix(prefix)}/{QUARANTINE}/{SOURCE_KEY}={source}/{PARTITION_KEY}={day}/{name}"


def staging_key(prefix: str, source: str, day: str, name: str) -> str:
    return f"{normal_prefix(prefix)}/{STAGING}/{SOURCE_KEY}={source}/{PARTITION_KEY}={day}/{name}"


def split_points_key(prefix: str, source: str) -> str:
    return f"{normal_prefix(prefix)}/{SPLIT_POINTS}/{SOURCE_KEY}={source}/split_points.json"


def legacy_partitions_prefix(prefix: str) -> str:
    """Where a lake written before sources existed keeps its days: ``{prefix}/dt=``."""
    return f"{normal_prefix(prefix)}/{PARTITION_KEY}="


def legacy_day_key(prefix: str, day: str) -> str:
    """Where a lake written before sources existed keeps a day: ``{prefix}/dt=YYYY-MM-DD/scores.jsonl``."""
    return f"{legacy_partitions_prefix(prefix)}{day}/{OBJECT_NAME}"


def legacy_day_of_key(prefix: str, key: str) -> str | None:
    """The day of a pre-sources object ``{prefix}/dt=YYYY-MM-DD/scores.jsonl``; None for any other key."""
    rest = key.removeprefix(legacy_partitions_prefix(prefix))
    if rest == key:
        return None
    day, _, name = rest.partition("/")
    return day if name == OBJECT_NAME else None


def glue_columns() -> list[dict[str, str]]:
    """Glue/Athena columns of the JSON lines, derived from the same names the writer uses.

    ``source`` is in every line but is a partition column of the table (from the path), and
    Glue allows no column twice, so it is left out here. Numbers are ``double``: every SEQ
    value (1..5, at most a few decimals) is exact in it.
    """
    types = {
        "date": "string",
        "user_id": "string",
        "username": "string",
        "score": "double",
        "metrics": "struct<" + ",".join(f"{name}:double" for name in METRIC_NAMES) + ">",
        "exported_at": "string",
    }
    return [{"Name": key, "Type": types[key]} for key in RECORD_KEYS if key not in PARTITION_KEYS]
