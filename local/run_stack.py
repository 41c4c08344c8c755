"""The stack ``python -m local.run`` starts: its simulated sources (``--sources``), the function's
environment for the run's options, the lines that say where each service listens, and what
``--keep`` prints (and writes to ``--env-file``) for the ``seq-export`` commands of another shell.
"""

from __future__ import annotations

import shlex
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from local.seq_simulator import Scenario
from local.stack import LocalStack, SourcePlan
from seq_export.config import Env
from seq_export.layout import DEFAULT_ACCOUNT_PREFIX, DEFAULT_SOURCE
from seq_export_cli.app import ENV_NAMES

#: The second source of ``--sources 2``: EU-pinned subusers at the EU host, with a key of their
#: own, ids of their own, a fifth as many subusers, and no parent account of their own there.
EU_SOURCE, EU_FIRST_USER_ID, EU_SHARE = "eu", 900_001, 5
#: The fake credentials the banner warns of: loaded into a shell, they replace its own.
FAKE_CREDENTIALS = frozenset({"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"})


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


def seq_export_command() -> str:
    """How another shell calls ``seq-export``, from any directory: the command beside this
    interpreter (the venv's), by its absolute path, or this interpreter running the package."""
    installed = Path(sys.executable).parent / "seq-export"
    if installed.is_file():
        return shlex.quote(str(installed))
    return f"{shlex.quote(sys.executable)} -m seq_export_cli"


def env_lines(env: Mapping[str, str]) -> list[str]:
    """``export NAME=value`` for every variable the ``seq-export`` commands read (all but the
    function's name, there being no deployed function): what a shell pastes, sources or evals."""
    function_variable = ENV_NAMES["function_name"]
    return [f"export {name}={shlex.quote(value)}" for name, value in env.items() if name != function_variable]


def write_env_file(path: Path, env: Mapping[str, str]) -> Path:
    """Write :func:`env_lines` to ``path`` (readable by its owner only); returns its absolute path."""
    path = path.expanduser().resolve()
    path.write_text("\n".join(env_lines(env)) + "\n", encoding="utf-8")
    path.chmod(0o600)
    return path


def keep_banner(
    env: Mapping[str, str], day: str, user_ids: Sequence[str] = ("100001",), *, env_file: Path | None = None
) -> list[str]:
    """What ``--keep`` prints: every variable the ``seq-export`` commands read, with its value
    (boto3's endpoint, credentials and region; the stack's resources; the function's environment
    for ``--local``, ``SEQ_SOURCES`` included when there are several sources), how to load them
    (the ``env_file`` written, if any), a warning that they replace the shell's own AWS
    credentials, and how to call the function, which has no deployed Lambda here. ``user_ids``: a
    subuser of each source. Every command it suggests works from any directory."""
    function_variable = ENV_NAMES["function_name"]
    cli = seq_export_command()
    how = (
        f"In another shell, load them with `. {shlex.quote(str(env_file))}` (or paste them):"
        if env_file is not None
        else "In another shell, paste:"
    )
    return [
        "",
        f"The local stack stays up until Ctrl-C (or SIGTERM). {how}",
        *env_lines(env),
        f"Warning: these set fake AWS credentials ({', '.join(sorted(set(env) & FAKE_CREDENTIALS))}) and "
        "AWS_ENDPOINT_URL: in any shell that loads them, they override that shell's own AWS credentials and send "
        "its AWS calls to this local stack. Load them in a shell of their own.",
        f"There is no deployed Lambda here, so no {function_variable}: `run` and `backfill` take --local",
        "and call the function's handler in the CLI's own process. For example:",
        f"  {cli} status --date {day}",
        *(f"  {cli} lookup {user_id}" for user_id in user_ids),
        f"  {cli} low-scores --max 1 --limit 5",
        f"  {cli} run --local --date {day}",
        f"  {cli} backfill --local --wait --force --from {day} --to {day}",
    ]
