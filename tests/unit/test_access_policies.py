"""The stack's access policies, ready to attach, held against what their readers call.

``OperatorPolicy`` is held against the code: every AWS call of ``seq_export_cli/`` (but its
``--local`` emulation of Lambda, ``LOCAL_ONLY``) is found in its source (an AST scan for calls of
the SDK operations of the services it makes clients for, and their paginators), mapped to the IAM
action that authorises it, and the policy must grant exactly
those actions, so a new call without its permission fails here, and so does a permission no code
uses. ``LatestScoresReaderPolicy`` is held against ``seq-export lookup``'s reads.
``LakeReaderPolicy`` is held against what an Athena query on the stack's tables needs, a fixed
set (no code of ours calls Athena), and its resources against the Glue tables' locations and the
workgroup's result location. Resources are checked on a deployment with non-default prefixes, so
a policy that ignores a parameter fails.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from fnmatch import fnmatch
from pathlib import Path
from typing import Any, cast

import botocore.session
import pytest
from botocore import xform_name

from seq_export import layout
from seq_export.layout import OBJECT_NAME, USERNAME_INDEX
from seq_export_cli.app import OUTPUT_NAMES
from tests.support.template import Deployment, load_template

ROOT = Path(__file__).resolve().parents[2]
CLI = ROOT / "seq_export_cli"
LAKE_READER, LATEST_READER, OPERATOR = "LakeReaderPolicy", "LatestScoresReaderPolicy", "OperatorPolicy"
POLICIES = {
    LAKE_READER: "LakeReaderPolicyArn",
    LATEST_READER: "LatestScoresReaderPolicyArn",
    OPERATOR: "OperatorPolicyArn",
}
STACK_ID = "arn:aws:cloudformation:us-east-1:123456789012:stack/seq-export/0a1b2c3d"
#: Prefixes other than the defaults: a resource spelled with a default instead of its parameter fails.
PREFIXES = {"ScoresPrefix": "lake/subusers", "AccountScoresPrefix": "lake/account"}
DAY = "2026-11-22"
#: CLI modules whose AWS calls are not an operator's: ``--local`` plays Lambda's SQS event source
#: in the CLI's process to run the function's own code, which needs the function's permissions
#: (its secret, its writes) and runs against the local stack, not a deployed one.
LOCAL_ONLY = {"local_lambda.py"}

#: The IAM action of an SDK operation where it is not ``service:Operation`` (IAM's Service
#: Authorization Reference): Lambda's Invoke, S3's HeadObject (read) and listings.
AUTHORISED_BY = {
    ("lambda", "Invoke"): "lambda:InvokeFunction",
    ("s3", "HeadObject"): "s3:GetObject",
    ("s3", "HeadBucket"): "s3:ListBucket",
    ("s3", "ListObjectsV2"): "s3:ListBucket",
}
#: Actions a call needs besides its own: SQS runs a message move task with the caller's
#: permissions, receiving and deleting on the source queue and sending to the destination (SQS
#: Developer Guide, dead-letter queue redrive permissions).
ALSO_NEEDED = {
    "sqs:StartMessageMoveTask": {
        "sqs:ReceiveMessage",
        "sqs:DeleteMessage",
        "sqs:GetQueueAttributes",
        "sqs:SendMessage",
    },
}
#: What a query in the stack's workgroup needs of its caller, fixed here because no code of ours
#: calls Athena (Athena User Guide: "Access to Amazon S3", "Configure access to databases and
#: tables in the AWS Glue Data Catalog", "Work with query results"):
ATHENA_QUERY_NEEDS = {
    # the caller's own calls: run a query in the workgroup, follow it, stop it, read its answer,
    # and find the workgroup's saved queries
    "athena:StartQueryExecution",
    "athena:GetQueryExecution",
    "athena:StopQueryExecution",
    "athena:GetQueryResults",
    "athena:GetWorkGroup",
    "athena:ListNamedQueries",
    "athena:GetNamedQuery",
    "athena:BatchGetNamedQuery",
    # Athena, as the caller, resolves the tables in the Glue Data Catalog ...
    "glue:GetDatabase",
    "glue:GetTable",
    "glue:GetTables",
    "glue:GetPartition",
    "glue:GetPartitions",
    # ... lists and reads the partitions, and writes the results, then GetQueryResults reads them
    "s3:GetBucketLocation",
    "s3:ListBucket",
    "s3:GetObject",
    "s3:PutObject",
    "s3:AbortMultipartUpload",
    "s3:ListMultipartUploadParts",
}


# -- the CLI's AWS calls, from its source ------------------------------------------------------
@dataclass(frozen=True)
class SdkCall:
    """One call of an SDK operation in the CLI's source."""

    where: str  # module:line
    service: str
    operation: str  # as the API names it, e.g. HeadObject

    @property
    def action(self) -> str:
        return AUTHORISED_BY.get((self.service, self.operation), f"{self.service}:{self.operation}")


def cli_modules() -> dict[str, ast.Module]:
    """The CLI's modules, less ``LOCAL_ONLY``."""
    paths = [path for path in sorted(CLI.glob("*.py")) if path.name not in LOCAL_ONLY]
    return {path.name: ast.parse(path.read_text(encoding="utf-8")) for path in paths}


def client_services(modules: Mapping[str, ast.Module]) -> set[str]:
    """The services the CLI makes clients for: the literal first argument of every ``.client(...)``
    but the one in ``App.client`` itself, which passes its caller's on."""
    services = set()
    for tree in modules.values():
        wrappers = [n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef) and n.name == "client"]
        passed_on = {id(n) for wrapper in wrappers for n in ast.walk(wrapper)}
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "client":
                (service, *_) = node.args
                if isinstance(service, ast.Constant):
                    services.add(str(service.value))
                else:
                    assert id(node) in passed_on, f"a client of a service named at run time: {ast.unparse(node)}"
    return services


def operations(services: Iterable[str]) -> dict[str, list[tuple[str, str]]]:
    """Each SDK method name (``head_object``) of these services, with (service, Operation)."""
    session = botocore.session.get_session()
    found: dict[str, list[tuple[str, str]]] = {}
    for service in sorted(services):
        for operation in session.get_service_model(service).operation_names:
            found.setdefault(xform_name(operation), []).append((service, operation))
    return found


def sdk_calls(modules: Mapping[str, ast.Module], nodes: Mapping[str, Iterable[ast.AST]] | None = None) -> list[SdkCall]:
    """Every call of an operation of the CLI's services (``s3.head_object(...)``, and
    ``get_paginator("list_objects_v2")``) in ``nodes`` (default: the whole of every module)."""
    known = operations(client_services(modules))
    calls = []
    for module, roots in (nodes or {name: [tree] for name, tree in modules.items()}).items():
        for root in roots:
            for node in ast.walk(root):
                if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
                    continue
                name = node.func.attr
                if name == "get_paginator":
                    (paginated, *_) = node.args
                    assert isinstance(paginated, ast.Constant), ast.unparse(node)
                    name = str(paginated.value)
                if name not in known:
                    continue
                assert len(known[name]) == 1, f"{module}:{node.lineno}: {name} is an operation of {known[name]}"
                ((service, operation),) = known[name]
                calls.append(SdkCall(f"{module}:{node.lineno}", service, operation))
    return calls


def needed(calls: Iterable[SdkCall]) -> dict[str, list[str]]:
    """Each IAM action the calls need, with where the code needs it."""
    actions: dict[str, list[str]] = {}
    for call in calls:
        for action in (call.action, *sorted(ALSO_NEEDED.get(call.action, ()))):
            actions.setdefault(action, []).append(call.where)
    return actions


def called_from(tree: ast.Module, entry: str) -> list[ast.AST]:
    """``entry`` and every function of the module it calls, directly or not."""
    functions = {n.name: n for n in tree.body if isinstance(n, ast.FunctionDef)}
    seen: set[str] = set()
    todo = [entry]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        todo += [
            n.func.id
            for n in ast.walk(functions[name])
            if isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id in functions
        ]
    return [functions[name] for name in sorted(seen)]


# -- the policies ------------------------------------------------------------------------------
class Stack(Deployment):
    """A deployment in which ``AWS::StackId`` has a value too."""

    def ref(self, name: str) -> Any:
        return STACK_ID if name == "AWS::StackId" else super().ref(name)


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return load_template()


@pytest.fixture(scope="module")
def stack(template: dict[str, Any]) -> Stack:
    return Stack(template, **PREFIXES)


def statements(resource: Mapping[str, Any]) -> list[dict[str, Any]]:
    return cast(list[dict[str, Any]], resource["Properties"]["PolicyDocument"]["Statement"])


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def granted(policy: Mapping[str, Any]) -> dict[str, list[Any]]:
    """Each action the policy allows, with the resources it allows it on."""
    actions: dict[str, list[Any]] = {}
    for statement in statements(policy):
        assert statement["Effect"] == "Allow", statement
        for action in as_list(statement["Action"]):
            actions.setdefault(action, []).extend(as_list(statement["Resource"]))
    return actions


def deployed(stack: Stack, name: str) -> dict[str, list[str]]:
    """``granted`` of the policy as ``stack`` deploys it: resources are ARNs, GetAtts ``<X.Arn>``."""
    return granted(stack.evaluate(stack.template["Resources"][name]))


def listed_prefixes(stack: Stack, name: str) -> tuple[str, list[str]]:
    """(bucket, s3:prefix patterns) of the policy's one s3:ListBucket statement."""
    (listing,) = [
        s for s in statements(stack.evaluate(stack.template["Resources"][name])) if s["Action"] == "s3:ListBucket"
    ]
    return listing["Resource"], listing["Condition"]["StringLike"]["s3:prefix"]


def covers(resources: Iterable[str], arn: str) -> bool:
    return any(fnmatch(arn, resource) for resource in resources)


def output_resource(template: Mapping[str, Any], output: str) -> str:
    """The resource a stack output names by ``!Ref``."""
    value = template["Outputs"][output]["Value"]
    assert set(value) == {"Ref"}, value
    return cast(str, value["Ref"])


def bucket_arn(template: Mapping[str, Any]) -> str:
    return f"<{output_resource(template, OUTPUT_NAMES['bucket'])}.Arn>"


def objects(template: Mapping[str, Any], key: str) -> str:
    return f"{bucket_arn(template)}/{key}"


# -- every policy ------------------------------------------------------------------------------
def test_each_policy_is_a_managed_policy_attached_to_no_one_with_its_arn_as_an_output(template: dict[str, Any]) -> None:
    for name, output in POLICIES.items():
        policy = template["Resources"][name]

        assert policy["Type"] == "AWS::IAM::ManagedPolicy", name
        # ready to attach: no principal of the stack's own, and a generated name (several stacks per account)
        assert not {"Roles", "Users", "Groups", "ManagedPolicyName"} & set(policy["Properties"]), name
        assert policy["Properties"]["Description"], name
        assert output_resource(template, output) == name


def test_no_policy_grants_a_wildcard_action_or_any_resource(template: dict[str, Any]) -> None:
    for name in POLICIES:
        for action, resources in granted(template["Resources"][name]).items():
            assert "*" not in action, (name, action)
            assert "*" not in resources, (name, action)


# -- the operator ------------------------------------------------------------------------------
def test_the_scan_finds_the_calls_the_cli_is_known_to_make() -> None:
    calls = {(call.service, call.operation) for call in sdk_calls(cli_modules())}

    # what it leaves out is there to be left out
    assert all((CLI / name).is_file() for name in LOCAL_ONLY)

    # one of each kind of call site: a client call, a paginator, a call through a wrapper (App.invoke)
    assert {
        ("cloudformation", "DescribeStacks"),
        ("s3", "HeadObject"),
        ("s3", "ListObjectsV2"),
        ("dynamodb", "Query"),
        ("lambda", "Invoke"),
    } <= calls


def test_the_operator_policy_grants_exactly_the_actions_the_cli_calls(template: dict[str, Any]) -> None:
    calls = needed(sdk_calls(cli_modules()))
    actions = set(granted(template["Resources"][OPERATOR]))

    missing = {action: where for action, where in calls.items() if action not in actions}
    unused = actions - set(calls)
    assert not missing, f"the CLI calls these, the operator policy lacks them: {missing}"
    assert not unused, f"the operator policy grants these, no CLI code calls them: {sorted(unused)}"


def test_the_operator_reads_the_stack_and_invokes_the_function_the_outputs_name(stack: Stack) -> None:
    actions = deployed(stack, OPERATOR)
    function = output_resource(stack.template, OUTPUT_NAMES["function_name"])

    assert actions["cloudformation:DescribeStacks"] == [STACK_ID]
    for action in ("lambda:InvokeFunction", "lambda:GetFunctionConfiguration"):
        assert actions[action] == [f"<{function}.Arn>"], action


def test_the_operator_reads_the_latest_score_table_and_queries_only_its_username_index(stack: Stack) -> None:
    actions = deployed(stack, OPERATOR)
    table = output_resource(stack.template, OUTPUT_NAMES["table"])
    (index,) = stack.template["Resources"][table]["Properties"]["GlobalSecondaryIndexes"]

    for action in ("dynamodb:GetItem", "dynamodb:Scan", "dynamodb:UpdateItem"):
        assert actions[action] == [f"<{table}.Arn>"], action
    assert index["IndexName"] == USERNAME_INDEX
    assert actions["dynamodb:Query"] == [f"<{table}.Arn>/index/{USERNAME_INDEX}"]


def test_the_operator_reads_days_of_every_source_and_the_layout_from_before_sources(stack: Stack) -> None:
    actions = deployed(stack, OPERATOR)
    bucket, prefixes = listed_prefixes(stack, OPERATOR)

    assert bucket == bucket_arn(stack.template)
    for prefix in PREFIXES.values():
        day, legacy = layout.day_key(prefix, "brand-b", DAY), layout.legacy_day_key(prefix, DAY)
        # HeadObject and GetObject of a day, and of a day still in the layout from before sources
        assert covers(actions["s3:GetObject"], objects(stack.template, day))
        assert covers(actions["s3:GetObject"], objects(stack.template, legacy))
        # what the CLI lists (sources, a source's days, the old layout's days), and each day's key,
        # so that S3 answers 404, not 403, for a day that is not exported
        for listed in (
            layout.sources_prefix(prefix),
            layout.partitions_prefix(prefix, "brand-b"),
            layout.legacy_partitions_prefix(prefix),
            day,
        ):
            assert covers(prefixes, listed), listed
        # never the answers kept aside, nor the lines the function staged
        for aside in (layout.staging_key(prefix, "eu", DAY, "tail"), layout.quarantine_key(prefix, "eu", DAY, "page")):
            assert not covers(actions["s3:GetObject"], objects(stack.template, aside)), aside
            assert not covers(prefixes, aside), aside
    assert not covers(actions["s3:GetObject"], objects(stack.template, "athena-results/q.csv"))


def test_the_operator_writes_days_only_under_a_source_and_deletes_only_days_from_before_sources(stack: Stack) -> None:
    actions = deployed(stack, OPERATOR)

    for prefix in PREFIXES.values():
        day, legacy = layout.day_key(prefix, "eu", DAY), layout.legacy_day_key(prefix, DAY)
        # migrate-lake: the old day written under its source, then the old object deleted
        assert covers(actions["s3:PutObject"], objects(stack.template, day))
        assert covers(actions["s3:DeleteObject"], objects(stack.template, legacy))
        assert not covers(actions["s3:DeleteObject"], objects(stack.template, day))
        assert not covers(actions["s3:PutObject"], objects(stack.template, legacy))
    assert {"s3:DeleteObjectVersion", "s3:PutObjectAcl"}.isdisjoint(actions)


def test_the_operator_reads_and_redrives_the_dead_letter_queue_into_the_retry_queue(stack: Stack) -> None:
    actions = deployed(stack, OPERATOR)
    queues = {n: r["Properties"] for n, r in stack.template["Resources"].items() if r["Type"] == "AWS::SQS::Queue"}
    # the dead-letter queue is the one the retry queue redrives to, and a redrive moves its messages back there
    (retry_queue,) = [name for name, queue in queues.items() if "RedrivePolicy" in queue]
    dead_letters = queues[retry_queue]["RedrivePolicy"]["deadLetterTargetArn"]["Fn::GetAtt"][0]

    # Which queue a call is for is not in the calls themselves (a URL variable), so it is spelled
    # here: the peek and the move task are on the dead-letter queue; the retry queue is read for
    # its ARN and RedrivePolicy (maxReceiveCount) and is where a redrive sends the messages.
    on_retry_queue = {"sqs:SendMessage": [retry_queue], "sqs:GetQueueAttributes": [dead_letters, retry_queue]}
    sqs = {action: resources for action, resources in actions.items() if action.startswith("sqs:")}
    assert sqs
    for action, resources in sqs.items():
        expected = on_retry_queue.get(action, [dead_letters])
        assert resources == [f"<{queue}.Arn>" for queue in expected], action


# -- latest-score readers ----------------------------------------------------------------------
def test_the_latest_scores_reader_may_do_what_lookup_does_and_no_more(template: dict[str, Any]) -> None:
    modules = cli_modules()
    lookup = sdk_calls(modules, {"scores.py": called_from(modules["scores.py"], "lookup")})
    reads = {call.action for call in lookup if call.service == "dynamodb"}

    assert reads == {"dynamodb:GetItem", "dynamodb:Query"}
    assert set(granted(template["Resources"][LATEST_READER])) == reads


def test_the_latest_scores_reader_gets_items_from_the_table_and_queries_it_and_its_username_index(
    stack: Stack,
) -> None:
    actions = deployed(stack, LATEST_READER)
    table = output_resource(stack.template, OUTPUT_NAMES["table"])

    assert actions["dynamodb:GetItem"] == [f"<{table}.Arn>"]
    assert actions["dynamodb:Query"] == [f"<{table}.Arn>", f"<{table}.Arn>/index/{USERNAME_INDEX}"]


# -- lake readers ------------------------------------------------------------------------------
def glue_tables(template: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        n: r["Properties"]["TableInput"] for n, r in template["Resources"].items() if r["Type"] == "AWS::Glue::Table"
    }


def key_of(stack: Stack, location: str) -> str:
    """The key (or key prefix) of an ``s3://BUCKET/...`` location in the stack's bucket."""
    bucket = stack.ref(output_resource(stack.template, OUTPUT_NAMES["bucket"]))
    assert location.startswith(f"s3://{bucket}/"), location
    return location.removeprefix(f"s3://{bucket}/")


def partitions(stack: Stack) -> Iterator[str]:
    """The key prefix of one partition of each Glue table, from its location template (what
    partition projection lists and reads)."""
    for name, table in glue_tables(stack.template).items():
        template = stack.evaluate(table["Parameters"])["storage.location.template"]
        partition = template.replace("${source}", "brand-b").replace("${dt}", DAY)
        assert "${" not in partition, (name, partition)
        yield key_of(stack, partition)


def results_prefix(stack: Stack) -> str:
    """Where the workgroup keeps query results (its enforced result location), as a key prefix."""
    workgroup = stack.evaluate(stack.template["Resources"]["AthenaWorkGroup"]["Properties"])
    configuration = workgroup["WorkGroupConfiguration"]
    assert configuration["EnforceWorkGroupConfiguration"] is True
    return key_of(stack, configuration["ResultConfiguration"]["OutputLocation"])


def test_the_lake_reader_grants_what_an_athena_query_on_the_tables_needs(template: dict[str, Any]) -> None:
    assert set(granted(template["Resources"][LAKE_READER])) == ATHENA_QUERY_NEEDS


def test_the_lake_reader_lists_and_reads_every_tables_partitions_and_nothing_kept_aside(stack: Stack) -> None:
    actions = deployed(stack, LAKE_READER)
    bucket, prefixes = listed_prefixes(stack, LAKE_READER)
    found = list(partitions(stack))

    assert len(found) == 2
    assert bucket == bucket_arn(stack.template)
    for partition in found:
        assert covers(prefixes, partition), partition
        assert covers(actions["s3:GetObject"], objects(stack.template, partition + OBJECT_NAME)), partition
    for prefix in PREFIXES.values():
        kept_aside = [
            layout.staging_key(prefix, "eu", DAY, "tail"),
            layout.quarantine_key(prefix, "eu", DAY, "page"),
            layout.legacy_day_key(prefix, DAY),
        ]
        for key in kept_aside:
            assert not covers(actions["s3:GetObject"], objects(stack.template, key)), key
            assert not covers(prefixes, key), key
    assert actions["s3:GetBucketLocation"] == [bucket]


def test_the_lake_reader_writes_query_results_in_the_workgroups_result_location_only(stack: Stack) -> None:
    actions = deployed(stack, LAKE_READER)
    _, prefixes = listed_prefixes(stack, LAKE_READER)
    results = results_prefix(stack)
    answer = objects(stack.template, f"{results}0a1b2c3d.csv")

    assert results == "athena-results/"
    assert covers(prefixes, results)
    for action in ("s3:GetObject", "s3:PutObject", "s3:AbortMultipartUpload", "s3:ListMultipartUploadParts"):
        assert covers(actions[action], answer), action
    for action in ("s3:PutObject", "s3:AbortMultipartUpload", "s3:ListMultipartUploadParts"):
        assert actions[action] == [objects(stack.template, f"{results}*")], action
    # a lake reader writes nothing of the lake
    for partition in partitions(stack):
        assert not covers(actions["s3:PutObject"], objects(stack.template, partition + OBJECT_NAME))
    # the bucket's lifecycle expires exactly what the results location holds
    rules = stack.template["Resources"]["ScoresBucket"]["Properties"]["LifecycleConfiguration"]["Rules"]
    assert results in [rule.get("Prefix") for rule in rules]


def test_the_lake_reader_reads_the_stacks_database_and_tables_only(stack: Stack) -> None:
    actions = deployed(stack, LAKE_READER)
    glue = "arn:aws:glue:us-east-1:123456789012"
    database = stack.ref("ScoresDatabase")
    tables = [f"{glue}:table/{database}/{stack.ref(name)}" for name in glue_tables(stack.template)]

    for action in ("glue:GetDatabase", "glue:GetTable", "glue:GetTables", "glue:GetPartition", "glue:GetPartitions"):
        assert actions[action] == [f"{glue}:catalog", f"{glue}:database/{database}", *tables], action
    # every table of the lake is in that database
    for name in glue_tables(stack.template):
        assert stack.template["Resources"][name]["Properties"]["DatabaseName"] == {"Ref": "ScoresDatabase"}


def test_the_lake_reader_queries_in_the_workgroup_that_holds_the_saved_queries(stack: Stack) -> None:
    actions = deployed(stack, LAKE_READER)
    workgroup = f"arn:aws:athena:us-east-1:123456789012:workgroup/{stack.ref('AthenaWorkGroup')}"
    saved = [r["Properties"] for r in stack.template["Resources"].values() if r["Type"] == "AWS::Athena::NamedQuery"]

    assert saved
    assert all(query["WorkGroup"] == {"Ref": "AthenaWorkGroup"} for query in saved)
    for action in (a for a in ATHENA_QUERY_NEEDS if a.startswith("athena:")):
        assert actions[action] == [workgroup], action
