"""dlt doing the S3 part of the job: its ``rest_api`` source into its filesystem destination.

``python -m bench.dlt_pipeline --out FILE`` with ``BENCH_SPEC`` and the function's environment set.
The source pages with dlt's JSON cursor paginator, the destination writes uncompressed JSON lines
to the same bucket on moto (``s3://BUCKET/dlt/...``). Both are built before the clock starts; the
job is ``pipeline.run``. dlt is a bench-only dependency; its telemetry is off.
"""

from __future__ import annotations

import os
import tempfile
from importlib.metadata import version
from typing import Any

from bench.common import Spec, child_command, measure_job
from seq_export.config import MAX_PAGE_SIZE
from seq_export.seq_client import SUBUSER_SCORES_PATH

DATASET = "dlt"
TABLE = "subuser_scores"
#: dlt reads its settings from the environment: set before dlt is imported.
DLT_SETTINGS = {
    "RUNTIME__DLTHUB_TELEMETRY": "false",
    "RUNTIME__LOG_LEVEL": "WARNING",
    "DATA_WRITER__DISABLE_COMPRESSION": "true",  # plain JSON lines, as ours
}


def build(spec: Spec, pipelines_dir: str) -> tuple[Any, Any]:
    os.environ.update(DLT_SETTINGS)
    import dlt  # noqa: PLC0415 - a bench-only dependency, configured first
    from dlt.sources.rest_api import rest_api_source  # noqa: PLC0415

    paginator = {"type": "cursor", "cursor_path": "_metadata.next_params.after_key", "cursor_param": "after_key"}
    auth = {"type": "bearer", "token": spec.api_key}
    client = {"base_url": spec.settings.sources[0].base_url, "auth": auth, "paginator": paginator}
    params = {"date": spec.day, "limit": MAX_PAGE_SIZE}
    endpoint = {"path": SUBUSER_SCORES_PATH.lstrip("/"), "params": params, "data_selector": "result"}
    source = rest_api_source({"client": client, "resources": [{"name": TABLE, "endpoint": endpoint}]})
    destination = dlt.destinations.filesystem(
        bucket_url=f"s3://{spec.settings.scores_bucket}",
        credentials={
            "aws_access_key_id": os.environ["AWS_ACCESS_KEY_ID"],
            "aws_secret_access_key": os.environ["AWS_SECRET_ACCESS_KEY"],
            "region_name": os.environ.get("AWS_DEFAULT_REGION", "us-east-1"),
            "endpoint_url": os.environ["AWS_ENDPOINT_URL"],
        },
    )
    pipeline = dlt.pipeline(
        pipeline_name="seq_bench", destination=destination, dataset_name=DATASET, pipelines_dir=pipelines_dir
    )
    return pipeline, source


@child_command(__doc__)
def main(out: str) -> int:
    spec = Spec.from_env()
    with tempfile.TemporaryDirectory(prefix="bench-dlt-") as pipelines_dir:
        pipeline, source = build(spec, pipelines_dir)
        dlt_version = version("dlt")

        def job() -> dict[str, Any]:
            info = pipeline.run(source, loader_file_format="jsonl")
            rows = pipeline.last_trace.last_normalize_info.row_counts if pipeline.last_trace else {}
            return {"dlt_version": dlt_version, "loads": len(info.loads_ids), "rows": dict(rows)}

        return measure_job(out, job)


if __name__ == "__main__":
    main()
