"""Scale: 100,000 subusers export exactly with flat memory; a million continue across invocations."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from local.seq_simulator import Scenario
from seq_export import record_codec
from tests.support import Stack, days_ago, run_to_completion

#: Measured at 96 s and 54 s on 2 busy cores: these scale with the machine, so beyond the suite's 300 s.
pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(900)]
ROOT = Path(__file__).parents[2]


def invoke_in_own_process(event: dict[str, Any]) -> dict[str, Any]:
    """Run the handler in a fresh interpreter so its memory is measured alone (moto stays here)."""
    env = os.environ | {"PYTHONPATH": os.pathsep.join([str(ROOT / "functions"), str(ROOT)])}
    done = subprocess.run(  # noqa: S603 - our own interpreter and module
        [sys.executable, "-m", "local.invoke", json.dumps(event)],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
        check=True,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_100k_subusers_export_exactly_with_memory_that_does_not_grow_with_pages(stack: Stack) -> None:
    stack.simulator.reset(Scenario(subusers=10_000))
    small = invoke_in_own_process({"date": days_ago(2)})
    stack.simulator.reset(Scenario(subusers=100_000))
    large = invoke_in_own_process({"date": days_ago(1)})

    assert (small["answer"]["pages"], large["answer"]["pages"]) == (10, 100)
    lines = stack.lines(days_ago(1))
    assert len(lines) == large["answer"]["records"] == 100_000
    assert [line["user_id"] for line in lines] == [str(100_001 + i) for i in range(100_000)]
    print(f"\npeak RSS: 10 pages {small['max_rss_mib']:.1f} MiB, 100 pages {large['max_rss_mib']:.1f} MiB")
    assert large["max_rss_mib"] <= 1.3 * small["max_rss_mib"]


def test_a_million_subusers_export_through_continuations(stack: Stack) -> None:
    day = days_ago(1)
    # every subuser ineligible keeps moto's DynamoDB out of the way; the 100k test covers it
    stack.simulator.reset(Scenario(subusers=1_000_000, ineligible_every=1))

    first, continuations = run_to_completion(stack, day, pages=400)

    assert first["status"] == "continued"
    assert len(continuations) == 2
    assert [len(c["checkpoint"]["parts"]) for c in continuations] == [1, 2]
    body = stack.session.client("s3").get_object(Bucket=stack.resources.bucket, Key=stack.key(day))["Body"]
    count = 0
    expected = 100_001
    for line in record_codec.decode_stream(body.iter_chunks(1024 * 1024)):
        assert line["user_id"] == str(expected)
        expected += 1
        count += 1
    assert count == 1_000_000
