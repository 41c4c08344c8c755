"""dlt doing the S3 part of the job: its ``rest_api`` source into its filesystem destination.

The source pages with dlt's JSON cursor paginator (cursor at
``_metadata.next_params.after_key``, sent back as ``after_key``), the records under
``result``; the destination writes uncompressed JSON lines to the same bucket on moto
(``s3://BUCKET/dlt/...``). dlt is a bench-only dependency (``pip install -e .[bench]``), never a
runtime one. Telemetry is off: nothing leaves the machine.

``python -m bench.dlt_pipeline --out FILE`` with ``BENCH_SPEC`` and the AWS variables set.
The pipeline and its source are built before the clock starts; the job is ``pipeline.run``.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from typing import Any

from bench.common import PAGE_SIZE, SCORES_PATH, Spec, Stopwatch, write_result

DATASET = "dlt"
TABLE = "subuser_scores"


def configure_environment() -> None:
    """dlt reads its settings from the environment; set them before dlt is imported."""
    os.environ["RUNTIME__DLTHUB_TELEMETRY"] = "false"
    os.environ["RUNTIME__LOG_LEVEL"] = "WARNING"
    os.environ["DATA_WRITER__DISABLE_COMPRESSION"] = "true"  # plain JSON lines, as ours


def build(spec: Spec, pipelines_dir: str) -> tuple[Any, Any]:
    import dlt  # noqa: PLC0415 - a bench-only dependency, configured first
    from dlt.sources.rest_api import rest_api_source  # noqa: PLC0415

    source = rest_api_source(
        {
            "client": {
                "base_url": spec.api_base_url,
                "auth": {"type": "bearer", "token": spec.api_key},
                "paginator": {
                    "type": "cursor",
                    "cursor_path": "_metadata.next_params.after_key",
                    "cursor_param": "after_key",
                },
            },
            "resources": [
                {
                    "name": TABLE,
                    "endpoint": {
                        "path": SCORES_PATH.lstrip("/"),
                        "params": {"date": spec.day, "limit": PAGE_SIZE},
                        "data_selector": "result",
                    },
                }
            ],
        }
    )
    destination = dlt.destinations.filesystem(
        bucket_url=f"s3://{spec.bucket}",
        credentials={
            "aws_access_key_id": os.environ["AWS_ACCESS_KEY_ID"],
            "aws_secret_access_key": os.environ["AWS_SECRET_ACCESS_KEY"],
            "region_name": os.environ.get("AWS_DEFAULT_REGION", "us-east-1"),
            "endpoint_url": spec.aws_endpoint,
        },
    )
    pipeline = dlt.pipeline(
        pipeline_name="seq_bench", destination=destination, dataset_name=DATASET, pipelines_dir=pipelines_dir
    )
    return pipeline, source


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.dlt_pipeline", description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="where to write the measurements (JSON)")
    args = parser.parse_args(argv)
    spec = Spec.from_env()
    configure_environment()
    with tempfile.TemporaryDirectory(prefix="bench-dlt-") as pipelines_dir:
        pipeline, source = build(spec, pipelines_dir)
        with Stopwatch() as watch:
            info = pipeline.run(source, loader_file_format="jsonl")
        rows = pipeline.last_trace.last_normalize_info.row_counts if pipeline.last_trace else {}
    import dlt  # noqa: PLC0415

    write_result(args.out, watch, dlt_version=dlt.__version__, loads=len(info.loads_ids), rows=dict(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
