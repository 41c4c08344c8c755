"""The stack ``python -m local.run`` starts: its simulated sources (``--sources``), the function's
environment for the run's options, the lines that say where each service listens, and what
``--keep`` prints for the ``seq-export`` commands of another shell.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping, Sequence

from local.seq_simulator import Scenario
from local.stack import LocalStack, SourcePlan
from seq_export.config import Env
from seq_export.layout import DEFAULT_ACCOUNT_PREFIX, DEFAULT_SOURCE
from seq_export_cli.app import ENV_NAMES

#: The second source of ``--sources 2``: EU-pinned subusers at the EU host, with a key of their
#: own, ids of their own, a fifth as many subusers, and no parent account of their own there.
EU_SOURCE, EU_FIRST_USER_ID, EU_SHARE = "eu", 900_001, 5


def plans(sources: int, subusers: int, not_ready: int) -> tuple[SourcePlan, ...]:
    """The simulated sources: ``default`` alone (a single-source stack, no ``SEQ_SOURCES``), or
    ``global`` and ``eu``, each on a host of its own."""
    first = Scenario(subusers=subusers, not_ready=not_ready)
    if sources == 1:
        return (SourcePlan(DEFAULT_SOURCE, first),)
    eu = Scenario(subusers=max(1, subusers // EU_SHARE), not_ready=not_ready, first_user_id=EU_FIRST_USER_ID)
    return SourcePlan("global", first), SourcePlan(EU_SOURCE, eu, account_scores=False)


def function_env(stack: LocalStack, *, delay: int, max_attempts: int, page_size: int) -> dict[str, str]:
    """The function's environment on ``stack``, with the run's delay, attempts and page size."""
    return stack.function_env(
        **{
            Env.ACCOUNT_SCORES_PREFIX: DEFAULT_ACCOUNT_PREFIX,
            Env.NOT_READY_DELAY_SECONDS: str(delay),
            Env.MAX_NOT_READY_ATTEMPTS: str(max_attempts),
            Env.SEQ_PAGE_SIZE: str(page_size),
        },
        POWERTOOLS_LOG_LEVEL="INFO",  # as deployed (template.yaml); --verbose shows these records
    )


def print_hosts(stack: LocalStack) -> None:
    """Where moto and each simulated SendGrid host listen, and what each host serves."""
    print(f"moto server   {stack.endpoint}")
    if len(stack.sources) == 1:
        print(f"SEQ simulator {stack.simulator.url}  ({stack.simulator.scenario.subusers} subusers)")
        return
    for source in stack.sources:
        account = "" if source.plan.account_scores else ", no parent account scores"
        print(f"SEQ simulator {source.url}  (source {source.name}: {source.plan.scenario.subusers} subusers{account})")


def keep_banner(env: Mapping[str, str], day: str, user_ids: Sequence[str] = ("100001",)) -> list[str]:
    """What ``--keep`` prints: every variable the ``seq-export`` commands read, with its value
    (boto3's endpoint, credentials and region; the stack's resources; the function's environment
    for ``--local``, ``SEQ_SOURCES`` included when there are several sources), and how to call
    the function, which has no deployed Lambda here. ``user_ids``: a subuser of each source."""
    function_variable = ENV_NAMES["function_name"]
    return [
        "",
        "The local stack stays up until Ctrl-C (or SIGTERM). In another shell, paste:",
        *(f"export {name}={shlex.quote(value)}" for name, value in env.items() if name != function_variable),
        f"There is no deployed Lambda here, so no {function_variable}: `run` and `backfill` take --local",
        "and call the function's handler in the CLI's own process. For example:",
        f"  .venv/bin/seq-export status --date {day}",
        *(f"  .venv/bin/seq-export lookup {user_id}" for user_id in user_ids),
        "  .venv/bin/seq-export low-scores --max 1 --limit 5",
        f"  .venv/bin/seq-export run --local --date {day}",
        f"  .venv/bin/seq-export backfill --local --wait --force --from {day} --to {day}",
    ]
