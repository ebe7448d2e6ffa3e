"""The deployed state machine, run offline: the CDK app's template, resolved and stood up on the emulator.

`synthesize()` runs the CDK app in-process (bundling skipped: the code runs here, not from the asset) and
returns the collector stack's template. `stand_up()` reads that template and creates what the run needs
in moto: the data bucket, the alert topic with an SQS queue subscribed (to capture alerts), the reporter
role with the template's own policy (so the emulator checks our role has the reads IAM's report jobs
need), one Lambda function per function in the template, and the state machine with the template's
definition, references resolved to moto's names and ARNs. Nothing in the definition is edited.

Lambda invocations from moto's Step Functions interpreter are dispatched in-process to the real handler
named by the template, with the environment the template gives that function (plus what the Lambda
runtime itself would set), for as long as `InProcessLambdas.installed()` is entered (without it moto's
Lambda answers with its echo stub). A handler's exception becomes a Lambda function error with its type
as `errorType`, so the definition's Retry and Catch match by name as in AWS.

moto runs it with `MOTO_CONFIG`: `mock_aws(config=MOTO_CONFIG)` in-process, or
`EmulatorServer(moto_config=MOTO_CONFIG)` for an endpoint.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from unittest import mock

from moto.awslambda_simple.models import LambdaSimpleBackend

from harness.clients import REGION, client, role_session_client
from iam_report_emulator.trust import policy_principal
from lambdas.collector.names import Function
from lambdas.collector.services import services
from lambdas.collector.settings import Location

ROOT = Path(__file__).resolve().parent.parent
COLLECTOR_STACK = "OrgAccessReportCollector"
ACCOUNT = "123456789012"  # moto's default account: where the collector is "deployed"
NAME = "org-access-report"
# moto executes state machines (off by default) and invokes Lambda without Docker.
MOTO_CONFIG: dict[str, Any] = {"stepfunctions": {"execute_state_machine": True}, "lambda": {"use_docker": False}}
LAMBDA_RUNTIME = {
    # What Lambda's runtime sets, or what stands in for its services locally (no X-Ray daemon here).
    "AWS_REGION": REGION,
    "AWS_DEFAULT_REGION": REGION,
    "POWERTOOLS_TRACE_DISABLED": "true",
}


class TemplateError(ValueError):
    """The template holds something the local runner cannot stand up (named in the message)."""


def synthesize(collector: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The collector stack's template as `app.build` synthesizes it from cdk.json, `collector` overriding
    keys of its `collector` context. Bundling is skipped: nothing here deploys the asset."""
    import aws_cdk as cdk  # noqa: PLC0415 - jsii starts node: only when a template is asked for

    from app import build  # noqa: PLC0415

    context: dict[str, Any] = json.loads((ROOT / "cdk.json").read_text())["context"]
    context["collector"] = {**context.get("collector", {}), **(collector or {})}
    with tempfile.TemporaryDirectory() as outdir:
        app = build(cdk.App(outdir=outdir, context={**context, "aws:cdk:bundling-stacks": []}))
        app.synth()
        template: dict[str, Any] = json.loads((Path(outdir) / f"{COLLECTOR_STACK}.template.json").read_text())
    return template


@dataclass(frozen=True)
class LocalFunction:
    name: str  # deployed function name
    handler: str  # e.g. lambdas.handlers.poll.handler
    environment: dict[str, str]
    timeout_seconds: int
    memory_mb: int

    @property
    def stage(self) -> str:
        return self.handler.split(".")[-2]


@dataclass
class Resolver:
    """CloudFormation references of the template, resolved to the values of what `stand_up` created."""

    refs: dict[str, str] = field(default_factory=dict)
    attributes: dict[tuple[str, str], str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.refs.update(
            {
                "AWS::Partition": "aws",
                "AWS::Region": REGION,
                "AWS::AccountId": ACCOUNT,
                "AWS::URLSuffix": "amazonaws.com",
            }
        )

    def __call__(self, value: Any) -> str:
        if isinstance(value, str):
            return value
        if isinstance(value, dict) and "Fn::Join" in value:
            separator, parts = value["Fn::Join"]
            return str(separator).join(self(part) for part in parts)
        if isinstance(value, dict) and "Ref" in value:
            if value["Ref"] not in self.refs:
                raise TemplateError(f"the runner does not stand up {value['Ref']!r} (referenced by the definition)")
            return self.refs[value["Ref"]]
        if isinstance(value, dict) and "Fn::GetAtt" in value:
            key = (value["Fn::GetAtt"][0], value["Fn::GetAtt"][1])
            if key not in self.attributes:
                raise TemplateError(f"the runner does not stand up {'.'.join(key)!r} (referenced by the definition)")
            return self.attributes[key]
        raise TemplateError(f"cannot resolve {json.dumps(value)[:200]}")


@dataclass
class Deployment:
    """What `stand_up` created in moto."""

    state_machine_arn: str
    definition: dict[str, Any]
    bucket: str
    topic_arn: str
    queue_url: str
    functions: dict[str, LocalFunction]

    @property
    def data_prefix(self) -> str:
        """Where the data sits in the bucket: discover's `data_prefix` setting (it decides it for each run),
        read from its environment through the setting's own declaration."""
        (discover,) = (f for f in self.functions.values() if f.stage == Function.DISCOVER)
        settings = {name.lower(): value for name, value in discover.environment.items()}
        return Location.model_validate(settings).data_prefix


def _of_type(template: Mapping[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {lid: r for lid, r in template["Resources"].items() if r["Type"] == kind}


def _the(template: Mapping[str, Any], kind: str, prefix: str = "") -> str:
    found = [lid for lid in _of_type(template, kind) if lid.startswith(prefix)]
    if len(found) != 1:
        raise TemplateError(f"expected one {kind} {prefix}…, found {found}")
    return found[0]


def stand_up(template: Mapping[str, Any], reporter_role_arn: str) -> Deployment:
    """Create the template's data bucket, topic (+ capture queue), functions and state machine in
    moto; the reporter role the template creates is `reporter_role_arn` (in the emulated organization's
    management account), created there with the template's policies unless a role of its name is."""
    resolve = Resolver()
    s3, sns, sqs, iam, lambda_, sfn = (client(s) for s in ("s3", "sns", "sqs", "iam", "lambda", "stepfunctions"))

    bucket = f"{NAME}-data-{ACCOUNT}"
    s3.create_bucket(Bucket=bucket)
    resolve.refs[_the(template, "AWS::S3::Bucket", "StorageDataBucket")] = bucket

    for lid, table in _of_type(template, "AWS::DynamoDB::Table").items():  # the learned limits
        name = f"{NAME}-{lid}"[:255]
        client("dynamodb").create_table(
            TableName=name,
            KeySchema=table["Properties"]["KeySchema"],
            AttributeDefinitions=table["Properties"]["AttributeDefinitions"],
            BillingMode="PAY_PER_REQUEST",
        )
        resolve.refs[lid] = name

    topic_arn = sns.create_topic(Name=f"{NAME}-alerts")["TopicArn"]
    resolve.refs[_the(template, "AWS::SNS::Topic")] = topic_arn
    queue_url = sqs.create_queue(QueueName=f"{NAME}-alerts-capture")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=queue_arn)

    for lid, role in _of_type(template, "AWS::IAM::Role").items():
        if any(policy["PolicyName"] == "reports" for policy in role["Properties"].get("Policies", [])):
            resolve.attributes[(lid, "Arn")] = reporter_role_arn
            _create_reporter_role(role["Properties"], reporter_role_arn)
    execution_role = iam.create_role(
        RoleName=f"{NAME}-execution",
        AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": []}),
    )["Role"]["Arn"]

    functions: dict[str, LocalFunction] = {}
    pending = {}
    for lid, resource in _of_type(template, "AWS::Lambda::Function").items():
        properties = resource["Properties"]
        stage = properties["Handler"].split(".")[-2]
        name = f"{NAME}-{stage}"
        arn = lambda_.create_function(
            FunctionName=name,
            Runtime=properties["Runtime"],
            Role=execution_role,
            Handler=properties["Handler"],
            Code={"ZipFile": b"runs in-process"},
            Timeout=properties["Timeout"],
            MemorySize=properties["MemorySize"],
        )["FunctionArn"]
        resolve.refs[lid] = name
        resolve.attributes[(lid, "Arn")] = arn
        pending[name] = properties
    for name, properties in pending.items():  # environments may reference any function, bucket or topic
        variables = properties.get("Environment", {}).get("Variables", {})
        functions[name] = LocalFunction(
            name=name,
            handler=properties["Handler"],
            environment={key: resolve(value) for key, value in variables.items()},
            timeout_seconds=int(properties["Timeout"]),
            memory_mb=int(properties["MemorySize"]),
        )

    machine = _of_type(template, "AWS::StepFunctions::StateMachine")
    if len(machine) != 1:
        raise TemplateError(f"expected one state machine, found {sorted(machine)}")
    (properties,) = (r["Properties"] for r in machine.values())
    definition = resolve(properties["DefinitionString"])
    state_machine_arn = sfn.create_state_machine(
        name=f"{NAME}-collector", definition=definition, roleArn=execution_role
    )["stateMachineArn"]
    return Deployment(state_machine_arn, json.loads(definition), bucket, topic_arn, queue_url, functions)


def _create_reporter_role(properties: Mapping[str, Any], role_arn: str) -> None:
    """The template's reporter role in moto as `role_arn` (in its account), with the template's trust
    policy and inline policies: the emulator evaluates the trust policy when a function assumes the role
    (`iam_report_emulator.sts_extension`), and the inline policies to decide whether a report job may make
    its Organizations reads. A role of that name already there (one a test made) is left as it is.

    The trust policy names the functions' execution roles (`Fn::GetAtt` of the template's roles). The
    functions run here in-process with the harness's credentials, so each of those roles is the principal
    those credentials are (moto's default principal of the collector's account): the template's
    statements and conditions are evaluated as written, for the identity the functions have here."""
    account = role_arn.split(":")[4]
    path, _, name = role_arn.split(":", 5)[5].removeprefix("role/").rpartition("/")
    # The stack that creates the role runs in the role's account: its AWS::AccountId is that account.
    resolve = Resolver()
    resolve.refs["AWS::AccountId"] = account
    functions = policy_principal(client("sts").get_caller_identity()["Arn"])
    for role in _attribute_owners(properties["AssumeRolePolicyDocument"]):
        resolve.attributes[(role, "Arn")] = functions
    trust = _deduplicated(_resolved(properties["AssumeRolePolicyDocument"], resolve))
    # A session of a role acts in the role's account; a role moto does not hold yet may be assumed.
    iam = client("iam") if account == ACCOUNT else role_session_client("iam", role_arn, f"{NAME}-stand-up")
    try:
        iam.create_role(RoleName=name, Path=f"/{path}/" if path else "/", AssumeRolePolicyDocument=json.dumps(trust))
    except iam.exceptions.EntityAlreadyExistsException:
        return
    for policy in properties.get("Policies", []):
        document = _resolved(policy["PolicyDocument"], resolve)
        iam.put_role_policy(RoleName=name, PolicyName=policy["PolicyName"], PolicyDocument=json.dumps(document))


def _attribute_owners(value: Any) -> set[str]:
    """The logical ids whose attributes `value` (a policy document, say) references with `Fn::GetAtt`."""
    if isinstance(value, dict):
        if set(value) == {"Fn::GetAtt"}:
            return {value["Fn::GetAtt"][0]}
        return {owner for item in value.values() for owner in _attribute_owners(item)}
    if isinstance(value, list):
        return {owner for item in value for owner in _attribute_owners(item)}
    return set()


def _deduplicated(document: dict[str, Any]) -> dict[str, Any]:
    """`document` with each statement's principals named once (several roles may have become one)."""
    for statement in document.get("Statement", []):
        for kind, names in statement.get("Principal", {}).items():
            if isinstance(names, list):
                statement["Principal"][kind] = list(dict.fromkeys(names))
    return document


def _resolved(value: Any, resolve: Resolver) -> Any:
    """`value` (a policy document, say) with every CloudFormation intrinsic in it resolved."""
    if isinstance(value, dict):
        if len(value) == 1 and (next(iter(value)) == "Ref" or next(iter(value)).startswith("Fn::")):
            return resolve(value)
        return {key: _resolved(item, resolve) for key, item in value.items()}
    if isinstance(value, list):
        return [_resolved(item, resolve) for item in value]
    return value


class LambdaContext:
    """The context object a handler gets: its name, memory, request id and a deadline of its timeout.

    The deadline is on the functions' own clock (`services().clock`, unless `clock` is given): real
    time, or the virtual clock of a simulated run (`harness.virtual_time`), where a 15-minute function
    has 15 minutes of virtual time."""

    def __init__(self, function: LocalFunction, request_id: str, clock: Callable[[], datetime] | None = None) -> None:
        self.function_name = function.name
        self.memory_limit_in_mb = function.memory_mb
        self.invoked_function_arn = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{function.name}"
        self.aws_request_id = request_id
        self._clock = clock or services().clock
        self._deadline = self._clock() + timedelta(seconds=function.timeout_seconds)

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - self._clock()).total_seconds() * 1000))


@dataclass
class Invocation:
    function: str
    stage: str
    seconds: float
    error: str | None


class InProcessLambdas:
    """Dispatches moto's Lambda invocations to the handlers, each in its function's environment.

    `os.environ` is one per process, so invocations run concurrently only while they need the same
    environment (generate, poll and fetch have identical ones: the Distributed Map's batches run side
    by side, as in AWS); an invocation that needs another waits until the running ones end.
    """

    def __init__(self, functions: Mapping[str, LocalFunction]) -> None:
        self.functions = dict(functions)
        self.invocations: list[Invocation] = []
        self._turn = threading.Condition()
        self._running = 0
        self._environment: dict[str, str] | None = None
        self._saved: dict[str, str] = {}
        self._handlers: dict[str, Callable[[Any, Any], Any]] = {}
        # Fault injection for tests: called with a stage's result after each of its invocations returns.
        self.after: dict[str, list[Callable[[Any], None]]] = {}

    def _handler(self, function: LocalFunction) -> Callable[[Any, Any], Any]:
        if function.handler not in self._handlers:
            module, attribute = function.handler.rsplit(".", 1)
            self._handlers[function.handler] = getattr(importlib.import_module(module), attribute)
        return self._handlers[function.handler]

    def load_handlers(self) -> None:
        """Import every function's handler now (as Lambda's init phase would)."""
        for function in self.functions.values():
            self._handler(function)

    @contextlib.contextmanager
    def _environment_of(self, function: LocalFunction) -> Iterator[None]:
        wanted = {**function.environment, **LAMBDA_RUNTIME}
        with self._turn:
            self._turn.wait_for(lambda: self._running == 0 or self._environment == wanted)
            if self._running == 0:
                self._saved = dict(os.environ)
                for key in {key for f in self.functions.values() for key in f.environment}:
                    os.environ.pop(key, None)  # no leaks between functions
                os.environ.update(wanted)
                self._environment = wanted
            self._running += 1
        try:
            yield
        finally:
            with self._turn:
                self._running -= 1
                if self._running == 0:
                    os.environ.clear()
                    os.environ.update(self._saved)
                    self._environment = None
                self._turn.notify_all()

    def invoke(self, function_name: str, body: Any, response_headers: dict[str, str]) -> bytes:
        name = function_name.rsplit(":", 1)[-1] if function_name.startswith("arn:") else function_name
        function = self.functions[name]
        event = json.loads(body) if body else {}
        with self._environment_of(function):
            started = time.monotonic()
            request_id = str(uuid.uuid4())
            try:
                result = self._handler(function)(event, LambdaContext(function, request_id))
                error = None
                payload = json.dumps(result)
                for hook in self.after.get(function.stage, ()):
                    hook(result)
            except Exception as exception:
                error = type(exception).__name__
                response_headers["x-amz-function-error"] = "Unhandled"
                payload = json.dumps({"errorType": error, "errorMessage": str(exception)})
            self.invocations.append(Invocation(name, function.stage, time.monotonic() - started, error))
        return payload.encode()

    @contextlib.contextmanager
    def installed(self) -> Iterator[InProcessLambdas]:
        """While inside, moto's (Docker-free) Lambda backend runs these functions' handlers."""

        def invoke(_: Any, function_name: str, qualifier: Any, body: Any, headers: Any, response_headers: Any) -> bytes:
            return self.invoke(function_name, body, response_headers)

        with mock.patch.object(LambdaSimpleBackend, "invoke", invoke):
            yield self
