"""Run the daily export locally, end to end, with nothing but Python.

Starts moto (S3, DynamoDB, SQS, Secrets Manager) and the SEQ simulator on free loopback
ports, creates the stack's resources there, invokes the real Lambda handler with a scheduled
event (or ``--date``), then plays the SQS event source if SendGrid answered 202, honouring the
message delay, until the day is exported or given up. Usage: ``make run`` or
``python -m local.run --help``.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import time
from datetime import UTC, datetime
from typing import Any

import boto3

from local.lambda_runtime import FakeLambdaContext, SqsEventSource
from local.seq_simulator import Scenario, SeqSimulator
from local.stack import AWS_TEST_ENV, Resources, local_stack, patched_environ
from seq_export.layout import DEFAULT_ACCOUNT_PREFIX, DEFAULT_PREFIX, day_key


def _args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m local.run", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--date",
        default=os.environ.get("DATE") or None,
        help="day to export, YYYY-MM-DD (default: yesterday, via a scheduled event)",
    )
    parser.add_argument("--subusers", type=int, default=int(os.environ.get("SUBUSERS", "2500")))
    parser.add_argument(
        "--not-ready",
        type=int,
        default=int(os.environ.get("NOT_READY", "0")),
        help="answers of 202 the simulator plays before the day is ready",
    )
    parser.add_argument(
        "--delay",
        type=int,
        default=int(os.environ.get("DELAY", "2")),
        help="NOT_READY_DELAY_SECONDS for this run (small, so you can watch the re-schedule)",
    )
    parser.add_argument("--max-attempts", type=int, default=int(os.environ.get("MAX_ATTEMPTS", "16")))
    parser.add_argument("--page-size", type=int, default=1000)
    parser.add_argument("--verbose", action="store_true", help="show the function's JSON logs")
    parser.add_argument(
        "--keep",
        action="store_true",
        help="after the run, keep moto and the simulator running until Ctrl-C and print the `export VAR=value` "
        "lines (endpoint, fake credentials, region, the function's environment) with which `seq-export` "
        "commands in another shell use this local stack",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = _args(argv)
    started = time.perf_counter()
    scenario = Scenario(subusers=args.subusers, not_ready=args.not_ready)
    with local_stack(scenario) as (simulator, resources, endpoint):
        env = resources.env(
            simulator.url,
            NOT_READY_DELAY_SECONDS=str(args.delay),
            MAX_NOT_READY_ATTEMPTS=str(args.max_attempts),
            SEQ_PAGE_SIZE=str(args.page_size),
            POWERTOOLS_LOG_LEVEL="INFO" if args.verbose else "WARNING",
            POWERTOOLS_METRICS_DISABLED="false" if args.verbose else "true",
        )
        with patched_environ(env):
            from seq_export import handler, wiring  # noqa: PLC0415 - Powertools reads the log level at import

            wiring.use_dependencies(None)
            event: dict[str, Any] = (
                {"date": args.date}
                if args.date
                else {"scheduled_time": datetime.now(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")}
            )
            print(f"moto server   {endpoint}\nSEQ simulator {simulator.url}  ({args.subusers} subusers)")
            print(f"invoke        {json.dumps(event)}")
            try:
                summary = handler.lambda_handler(event, FakeLambdaContext())
            except Exception as exc:  # noqa: BLE001 - a person reads this, not a program
                print(f"FAILED        {type(exc).__name__}: {exc}", file=sys.stderr)
                return 1
            print(f"answer        {json.dumps(summary)}")
            _drain(handler, resources, summary)
            code = _report(resources, summary["date"], simulator, time.perf_counter() - started)
            if args.keep:
                _keep({**AWS_TEST_ENV, "AWS_ENDPOINT_URL": endpoint, **env}, summary["date"])
            return code


def _drain(handler: Any, resources: Resources, summary: dict[str, Any]) -> None:
    """Act as the SQS event source until the retry queue is empty: re-runs after a 202 (when
    their delay has passed) and the parent account's own day, which the daily run queues."""
    source = SqsEventSource(boto3.client("sqs"), resources.queue_url)
    if summary.get("status") == "not_ready":
        print(f"202           re-scheduled; the SQS message is delayed {summary['next_attempt_delay_seconds']}s")
    while True:
        waiting = source.waiting()
        if not waiting["visible"] and not waiting["delayed"]:
            return
        print(f"retry queue   {waiting['visible']} visible, {waiting['delayed']} delayed; receiving...")
        response = source.deliver_once(lambda e: handler.lambda_handler(e, FakeLambdaContext()))
        if response is None:
            continue
        failures = response.get("batchItemFailures", [])
        print(f"SQS event     handled{' with failures ' + json.dumps(failures) if failures else ''}")
        if failures:
            return


def _keep(env: dict[str, str], day: str) -> None:
    """Keep the stack up for another shell's `seq-export` commands until Ctrl-C."""
    print("\nThe local stack stays up until Ctrl-C. In another shell, paste:")
    for name, value in env.items():
        print(f"export {name}={shlex.quote(value)}")
    print(f"then, for example: .venv/bin/seq-export status --date {day}; .venv/bin/seq-export lookup 100001;")
    print(f"  .venv/bin/seq-export low-scores --max 1 --limit 5; .venv/bin/seq-export run --local --date {day}")
    sys.stdout.flush()
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        print("\nstopping the local stack")


def _report(resources: Resources, day: str, simulator: SeqSimulator, seconds: float) -> int:
    s3 = boto3.client("s3")
    key = day_key(DEFAULT_PREFIX, day)
    try:
        body = s3.get_object(Bucket=resources.bucket, Key=key)["Body"].read().decode()
    except s3.exceptions.NoSuchKey:
        dlq = boto3.client("sqs").receive_message(QueueUrl=resources.dlq_url).get("Messages", [])
        print(f"NOT EXPORTED  {day}; dead-letter queue holds: {[m['Body'] for m in dlq]}", file=sys.stderr)
        return 1
    records = [json.loads(line) for line in body.splitlines()]
    scored = [r for r in records if r["score"] is not None]
    served = sum(1 for r in simulator.requests if r["status"] == 200 and r["params"].get("date") == day)
    print(
        f"\nexported      {day}: {len(records)} records ({len(records) - len(scored)} ineligible) "
        f"from {served} pages; {len(simulator.requests)} SendGrid requests in all"
    )
    print(f"S3 object     s3://{resources.bucket}/{key} ({len(body.encode())} bytes)")
    print(f"first line    {body.splitlines()[0] if records else '(empty day)'}")
    if scored:
        sample = scored[0]["user_id"]
        dynamodb = boto3.client("dynamodb")
        item = dynamodb.get_item(TableName=resources.table, Key={"user_id": {"S": sample}})["Item"]
        scan = dynamodb.get_paginator("scan").paginate(
            TableName=resources.table, Select="COUNT", FilterExpression="attribute_exists(score)"
        )
        count = sum(page["Count"] for page in scan)
        print(f"DynamoDB      {count} subusers with a latest score; lookup user_id {sample}:")
        print(f"              {json.dumps(item, sort_keys=True)}")
    account_key = day_key(DEFAULT_ACCOUNT_PREFIX, day)
    try:
        account = s3.get_object(Bucket=resources.bucket, Key=account_key)["Body"].read().decode().strip()
        print(f"account       s3://{resources.bucket}/{account_key}: {account}")
    except s3.exceptions.NoSuchKey:
        print("account       (the parent account's own scores were not exported)")
    print(f"took          {seconds:.2f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
