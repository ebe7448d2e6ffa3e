"""The functions' S3 grants, end to end: every S3 call a function makes is one its execution role allows.

moto does not enforce IAM: the functions run here in-process with the test's credentials, so a role that
lacks a grant its code needs passes every other test and fails in AWS (as discover did, reading the latest
days' report_jobs with s3:PutObject on `runs/*` only, and the batch stages, reading their checkpoints and
deleting parts under `runs/` with s3:PutObject only). Here the deployed state machine runs every S3 code
path: a first day, that day moved back, a second day (which reads the first), a same-day rerun with every
account due (which replaces the day's files), and a run of the root alone through generate, poll and fetch
in which the first rows part a batch stage writes kills that invocation (Step Functions retries it; the
retry reads its checkpoint and deletes what the killed attempt wrote past it). Every call of the functions'
one S3 client (`services().s3`) is recorded with the function making it (a wrapper of the harness's
`InProcessLambdas.invoke` notes it per thread: the Distributed Map's batches run side by side); each call
becomes the requests S3 authorizes for it (action, resource ARN), and each request
is evaluated against the function's execution role in the synthesized template: its inline policies and
the AWS::IAM::Policy resources attached to it, wildcards as IAM matches them, an explicit Deny (the data
bucket policy's too) overriding any Allow.

The evaluator would have caught both bugs: against the template with the fixes taken out (the batch stages'
and discover's read, list and delete grants removed), it reports exactly those calls denied.
"""

from __future__ import annotations

import copy
import re
import threading
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from typing import Any

import pyarrow as pa
import pytest

from harness.clients import client
from harness.runner import Resolver
from iam_report_emulator.access_reports import AccessReportStore
from lambdas.collector.names import Function, Layout
from lambdas.collector.services import services
from lambdas.collector.store.schema import REPORT_JOBS
from lambdas.collector.store.storage import list_keys, put_table
from tests.e2e.conftest import FAST, Collector, move_back_one_day

S3 = "arn:aws:s3:::"
BATCH_STAGES = (Function.GENERATE, Function.POLL, Function.FETCH)
EVERY_ACCOUNT_DUE = {**FAST, "account_refresh_days": 1}
PAGE = 100
# The IAM action S3 authorizes for each operation the functions may call: on the object (each object of a
# DeleteObjects; CopyObject needs s3:GetObject on its source too), or on the bucket (a listing, whatever prefix).
OBJECT_ACTIONS = {
    "PutObject": "s3:PutObject",
    "CreateMultipartUpload": "s3:PutObject",
    "UploadPart": "s3:PutObject",
    "CompleteMultipartUpload": "s3:PutObject",
    "CopyObject": "s3:PutObject",
    "AbortMultipartUpload": "s3:AbortMultipartUpload",
    "GetObject": "s3:GetObject",
    "HeadObject": "s3:GetObject",
    "DeleteObject": "s3:DeleteObject",
    "DeleteObjects": "s3:DeleteObject",
}
BUCKET_ACTIONS = {
    "ListObjectsV2": "s3:ListBucket",
    "ListObjects": "s3:ListBucket",
    "ListObjectVersions": "s3:ListBucketVersions",
}
# The Deny conditions of the data bucket's policy that never hold for the functions' requests (boto3 uses
# HTTPS, TLS 1.2 or later): such a statement denies nothing here.
TRANSPORT_ONLY = [{"Bool": {"aws:SecureTransport": "false"}}, {"NumericLessThan": {"s3:TlsVersion": 1.2}}]
# Lambda's own name for an invocation it killed at its timeout (the harness reports an exception by its type).
Timedout: type[Exception] = type("Sandbox.Timedout", (Exception,), {"__doc__": "Lambda's timeout"})


@dataclass(frozen=True)
class Request:
    """What IAM authorizes for an S3 call: an action on a resource; `shown` is the key or prefix, generalized."""

    function: str
    action: str
    resource: str
    shown: str


@dataclass(frozen=True)
class Call:
    """One S3 call of a function: its operation, bucket and key (a listing's prefix; DeleteObjects' keys)."""

    function: str
    operation: str
    bucket: str
    key: str
    keys: tuple[str, ...] = ()
    source: tuple[str, str] | None = None  # CopyObject's bucket and key
    version: bool = False
    missing: bool = False  # a read S3 answered 404: it answers that only with s3:ListBucket (else 403)

    def requests(self) -> list[Request]:
        bucket = f"{S3}{self.bucket}"

        def on(action: str, key: str, arn: str | None = None, note: str = "") -> Request:
            return Request(self.function, action, arn or f"{bucket}/{key}", generalized(key) + note)

        if self.operation in BUCKET_ACTIONS:
            return [on(BUCKET_ACTIONS[self.operation], self.key, bucket, "?")]
        action = OBJECT_ACTIONS.get(self.operation)
        assert action, f"{self.function} calls S3 {self.operation}: map it to its IAM actions here"
        if self.version and action in ("s3:GetObject", "s3:DeleteObject"):
            action += "Version"
        requests = [on(action, key) for key in self.keys or (self.key,)]
        if self.missing:
            requests.append(on("s3:ListBucket", self.key, bucket, " (404)"))
        if self.source:  # CopyObject reads its source
            source_bucket, source_key = self.source
            requests.append(on("s3:GetObject", source_key, f"{S3}{source_bucket}/{source_key}"))
        return requests


_VARIABLE = [
    (re.compile(r"(?<=runs/)[^/?]+"), "{run}"),
    (re.compile(r"\d{4}-\d{2}-\d{2}"), "{dt}"),
    (re.compile(r"(?<=batch=)\d+"), "{n}"),
    (re.compile(r"(?<=[a-z])-\d{4}(?:-\d{3})?(?=\.parquet$|\.json$|$)"), "-{round}"),
    (re.compile(r"part-\d+-of-\d+"), "part-{i}-of-{n}"),
    (re.compile(r"(?<=/)(?:r-|ou-|\d{12})[^/]*\.json$"), "{target}.json"),
]


def generalized(key: str) -> str:
    """A key or prefix with its run, day, batch, round, file and target replaced by names."""
    for pattern, name in _VARIABLE:
        key = pattern.sub(name, key)
    return key


class S3Calls:
    """Records every call of the functions' S3 client, with the function (stage) whose invocation makes it."""

    def __init__(self, collector: Collector, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls: list[Call] = []
        self._lock = threading.Lock()
        self._local = threading.local()
        lambdas = collector.lambdas
        invoke = lambdas.invoke

        def invoking(function_name: str, body: Any, response_headers: dict[str, str]) -> bytes:
            self._local.function = lambdas.functions[function_name.rsplit(":", 1)[-1]].stage
            try:
                return invoke(function_name, body, response_headers)
            finally:
                self._local.function = None

        monkeypatch.setattr(lambdas, "invoke", invoking)
        events = services().s3.meta.events  # the functions' one client (created here, after `aws` cleared it)
        events.register("before-parameter-build.s3", self._before, unique_id="test-function-grants-before")
        events.register("after-call.s3", self._after, unique_id="test-function-grants-after")

    def _before(self, params: Mapping[str, Any], model: Any, context: dict[str, Any], **_: Any) -> None:
        function = getattr(self._local, "function", None)
        if function is None:  # not a function's call
            return
        objects = params.get("Delete", {}).get("Objects", ())
        source = params.get("CopySource")  # "bucket/key", or a dict of its parts
        if isinstance(source, str):
            copied = tuple(source.lstrip("/").split("?")[0].split("/", 1))
        else:
            copied = (source["Bucket"], source["Key"]) if source else ()
        call = Call(
            function=function,
            operation=model.name,
            bucket=params.get("Bucket", "?"),
            key=params.get("Key", params.get("Prefix", "")),
            keys=tuple(item["Key"] for item in objects),
            source=(copied[0], copied[1]) if copied else None,
            version=bool(params.get("VersionId")) or any(item.get("VersionId") for item in objects),
        )
        with self._lock:
            context["test_function_grants_call"] = len(self.calls)
            self.calls.append(call)

    def _after(self, http_response: Any, model: Any, context: dict[str, Any], **_: Any) -> None:
        index = context.get("test_function_grants_call")
        if index is not None and model.name in ("GetObject", "HeadObject") and http_response.status_code == 404:
            with self._lock:
                self.calls[index] = replace(self.calls[index], missing=True)

    def requests(self) -> list[Request]:
        return [request for call in self.calls for request in call.requests()]


@dataclass(frozen=True)
class Statement:
    """An S3 statement of a policy, its resources resolved."""

    effect: str
    actions: tuple[str, ...]
    resources: tuple[str, ...]
    policy: str

    def matches(self, request: Request) -> bool:
        return any(like(pattern, request.action, ignore_case=True) for pattern in self.actions) and any(
            like(pattern, request.resource) for pattern in self.resources
        )


def like(pattern: str, value: str, *, ignore_case: bool = False) -> bool:
    """IAM's wildcard match: `*` any run of characters, `?` any one; actions ignore case, ARNs do not."""
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, value, re.IGNORECASE if ignore_case else 0) is not None


def of_type(template: Mapping[str, Any], kind: str) -> list[tuple[str, dict[str, Any]]]:
    """The template's resources of a type: logical id and properties."""
    return [(lid, r.get("Properties", {})) for lid, r in template["Resources"].items() if r["Type"] == kind]


def roles_of(template: Mapping[str, Any], functions: tuple[str, ...]) -> set[str]:
    """The logical ids of the execution roles of `functions` (stages)."""
    return {
        function["Role"]["Fn::GetAtt"][0]
        for _, function in of_type(template, "AWS::Lambda::Function")
        if function["Handler"].split(".")[-2] in functions
    }


def _listed(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _s3(actions: list[str]) -> bool:
    return any(action == "*" or action.split(":")[0].lower() == "s3" for action in actions)


class Grants:
    """Each function's S3 statements in a template, the data bucket resolved to the deployed bucket's name,
    and the data bucket policy's Deny statements that apply to the functions' requests."""

    def __init__(self, template: Mapping[str, Any], bucket: str) -> None:
        resources: dict[str, Any] = template["Resources"]
        resolve = Resolver()
        for lid in (lid for lid, r in resources.items() if r["Type"] == "AWS::S3::Bucket"):
            name = bucket if lid.startswith("StorageDataBucket") else f"other-{lid.lower()}"  # not the functions'
            resolve.refs[lid] = name
            resolve.attributes[(lid, "Arn")] = f"{S3}{name}"
        self.roles: dict[str, str] = {}  # role logical id: function (stage)
        for function in (r["Properties"] for r in resources.values() if r["Type"] == "AWS::Lambda::Function"):
            (role, attribute) = function["Role"]["Fn::GetAtt"]
            assert attribute == "Arn"
            self.roles[role] = function["Handler"].split(".")[-2]
        self.statements: dict[str, list[Statement]] = {function: [] for function in self.roles.values()}
        self.denied_to_all: list[Statement] = []

        def add(function: str, document: Mapping[str, Any], policy: str) -> None:
            for statement in _listed(document["Statement"]):
                if not _s3(_listed(statement.get("Action", statement.get("NotAction", [])))):
                    continue
                unread = {"NotAction", "NotResource", "Condition", "Principal", "NotPrincipal"} & set(statement)
                assert not unread, f"{policy}: the evaluator reads no {sorted(unread)} on an S3 statement"
                actions, arns = _listed(statement["Action"]), [resolve(r) for r in _listed(statement["Resource"])]
                self.statements[function].append(Statement(statement["Effect"], tuple(actions), tuple(arns), policy))

        for lid, resource in resources.items():
            properties = resource.get("Properties", {})
            if lid in self.roles:
                unread = {"ManagedPolicyArns", "PermissionsBoundary"} & set(properties)
                assert not unread, f"{lid}: the evaluator reads no {sorted(unread)}"
                for policy in properties.get("Policies", []):
                    add(self.roles[lid], policy["PolicyDocument"], f"{lid}.{policy['PolicyName']}")
            elif resource["Type"] in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
                for role in properties.get("Roles", []):
                    if role["Ref"] in self.roles:
                        add(self.roles[role["Ref"]], properties["PolicyDocument"], lid)
            elif resource["Type"] == "AWS::S3::BucketPolicy" and resolve(properties["Bucket"]) == bucket:
                for statement in _listed(properties["PolicyDocument"]["Statement"]):
                    if statement["Effect"] != "Deny":
                        continue  # the roles' own policies grant the functions (same account)
                    condition = statement.get("Condition")
                    if condition is not None:
                        assert condition in TRANSPORT_ONLY, f"{lid}: a Deny under a condition not read: {condition}"
                        continue
                    assert statement.get("Principal") in ("*", {"AWS": "*"}), f"{lid}: a Deny of some principals"
                    actions, arns = _listed(statement["Action"]), [resolve(r) for r in _listed(statement["Resource"])]
                    self.denied_to_all.append(Statement("Deny", tuple(actions), tuple(arns), lid))

    def refusal(self, request: Request) -> str | None:
        """Why the function's role may not make the request (None: it may)."""
        statements = [*self.statements[request.function], *self.denied_to_all]
        deny = next((s for s in statements if s.effect == "Deny" and s.matches(request)), None)
        if deny:
            return f"explicitly denied by {deny.policy}"
        if any(s.effect == "Allow" and s.matches(request) for s in statements):
            return None
        return "no statement allows it"


# The functions whose roles the fix gave reads, listings and deletes: before it, they could only put under `runs/`.
FIXED = (Function.DISCOVER, *BATCH_STAGES)
FIXED_ACTIONS = {"s3:GetObject", "s3:ListBucket", "s3:DeleteObject"}


def without_the_fix(template: Mapping[str, Any], functions: tuple[str, ...] = FIXED) -> dict[str, Any]:
    """The template as it was before the fix, for `functions`: their roles without any s3:GetObject*,
    s3:GetBucket*, s3:List* or s3:DeleteObject* grant (`grant_scratch_resume`, discover's `grant_snapshot_read`)."""
    reverted = copy.deepcopy(dict(template))
    roles = roles_of(reverted, functions)
    taken = {"s3:getobject*", "s3:getbucket*", "s3:list*", "s3:deleteobject*"}
    for _, policy in of_type(reverted, "AWS::IAM::Policy"):
        if not {role["Ref"] for role in policy["Roles"]} & roles:
            continue
        document = policy["PolicyDocument"]
        kept = []
        for statement in _listed(document["Statement"]):
            actions = [a for a in _listed(statement["Action"]) if a.lower() not in taken]
            if actions:
                kept.append({**statement, "Action": actions})
        document["Statement"] = kept
    return reverted


@pytest.fixture
def calls(collector: Collector, monkeypatch: pytest.MonkeyPatch) -> S3Calls:
    return S3Calls(collector, monkeypatch)


@dataclass
class KillFirstPart:
    """Once armed, kills the first batch-stage invocation that puts a rows part, right after that put (before
    its records part and its checkpoint): the retry deletes it and reads it again."""

    armed: bool = False
    killed: str | None = None

    def install(self) -> KillFirstPart:
        events = services().s3.meta.events
        events.register("before-parameter-build.s3.PutObject", self._note, unique_id="test-function-grants-note")
        events.register("after-call.s3.PutObject", self._die, unique_id="test-function-grants-kill")
        return self

    def _note(self, params: Mapping[str, Any], context: dict[str, Any], **_: Any) -> None:
        context["test_function_grants_key"] = params["Key"]

    def _die(self, context: dict[str, Any], **_: Any) -> None:
        key = context.get("test_function_grants_key", "")
        if self.armed and not self.killed and "/parts/access_details/" in key:
            self.killed = key
            raise Timedout(f"Task timed out (killed after the put of {key})")


def table(requests: list[Request]) -> Iterator[str]:
    order: dict[str, int] = {function: n for n, function in enumerate(Function)}
    counts = Counter((r.function, r.action, r.shown) for r in requests)
    width = max((len(shown) for _, _, shown in counts), default=0)
    yield f"{'function':<10} {'action':<18} {'key or prefix?':<{width}} calls"
    for (function, action, shown), count in sorted(counts.items(), key=lambda item: (order[item[0][0]], item[0])):
        yield f"{function:<10} {action:<18} {shown:<{width}} {count:>5}"


def test_every_s3_call_of_every_function_is_allowed_by_its_role_in_the_template(
    collector: Collector, calls: S3Calls, template: dict[str, Any], store: AccessReportStore
) -> None:
    kill = KillFirstPart().install()
    # A first day, moved back; the next day (it reads the previous day's report_jobs); a same-day rerun
    # with every account due (it replaces the day's files, one of them an older file it drops).
    first = collector.run()
    assert first.status == "SUCCEEDED", first.cause
    move_back_one_day(collector, first.run["dt"])
    second = collector.run()
    assert second.status == "SUCCEEDED", second.cause
    s3, bucket, layout = client("s3"), collector.deployment.bucket, Layout(collector.deployment.data_prefix)
    stray = f"{layout.partition(REPORT_JOBS, second.run['dt'])}replaced-by-the-rerun.parquet"
    put_table(s3, bucket, stray, pa.Table.from_pylist([], schema=REPORT_JOBS.arrow_schema))  # an older file
    rerun = collector.run(EVERY_ACCOUNT_DUE)
    assert rerun.status == "SUCCEEDED", rerun.cause
    assert list_keys(s3, bucket, stray) == []
    # The root alone, not waited for inline (poll reads it after the Wait state), in pages of 100 services
    # (fetch reads the rest); the first rows part kills its stage.
    store.configure(short_page_items=PAGE)
    kill.armed = True
    root = client("organizations").list_roots()["Roots"][0]["Id"]
    killed = collector.run({**FAST, "scope": "root", "include_ids": [root], "poll_inline_wait_seconds": 0})
    assert killed.status == "SUCCEEDED", killed.cause
    errors = [(i.stage, i.error) for i in collector.lambdas.invocations if i.error]
    assert kill.killed is not None
    ((killed_stage, error),) = errors
    assert error == "Sandbox.Timedout"  # retried by Step Functions, not caught

    requests = calls.requests()
    print(f"\n{killed_stage} killed after its put of {generalized(kill.killed)}, and retried")
    print("\n".join(table(requests)))
    # Every function ran, and the paths the bugs were on ran too.
    assert {r.function for r in requests} == set(Function)
    made = {(r.function, r.action, r.shown.split("/")[0]) for r in requests}
    assert (Function.DISCOVER, "s3:GetObject", "report_jobs") in made  # the plan reads the latest days
    assert {(s, "s3:GetObject", "runs") for s in BATCH_STAGES} <= made  # each one's checkpoint read
    assert (killed_stage, "s3:DeleteObject", "runs") in made  # the retry deleted the killed attempt's part
    assert (Function.FINALIZE, "s3:DeleteObject", "report_jobs") in made  # the rerun replaced a file

    grants = Grants(template, bucket)
    refused = Counter(f"{r.function} {r.action} {r.shown}: {why}" for r in requests if (why := grants.refusal(r)))
    assert not refused, "the execution role in the template refuses:\n" + "\n".join(
        f"  {line} (x{count})" for line, count in sorted(refused.items())
    )

    # Control: against the grants before the fix, the same calls are refused where the bugs were, and only there.
    before = Grants(without_the_fix(template), bucket)
    refused_before = {(r.function, r.action) for r in requests if before.refusal(r)}
    assert refused_before == {
        (r.function, r.action) for r in requests if r.function in FIXED and r.action in FIXED_ACTIONS
    }
    assert {(Function.DISCOVER, "s3:GetObject"), (killed_stage, "s3:DeleteObject")} <= refused_before
    assert {(s, a) for s in BATCH_STAGES for a in ("s3:GetObject", "s3:ListBucket")} <= refused_before


def test_the_evaluator_refuses_what_no_statement_allows_and_what_a_deny_denies(template: dict[str, Any]) -> None:
    bucket = "org-access-report-data-123456789012"

    def request(function: str, action: str, key: str, in_bucket: str = bucket) -> Request:
        return Request(function, action, f"{S3}{in_bucket}" + ("" if action == "s3:ListBucket" else f"/{key}"), key)

    snapshot = request(Function.DISCOVER, "s3:GetObject", "report_jobs/dt=2024-05-01/part-00000-of-00001.parquet")
    checkpoint = request(Function.FETCH, "s3:GetObject", "runs/r1/checkpoints/batch=00000/fetch-0001.json")
    grants = Grants(template, bucket)
    assert grants.refusal(snapshot) is None
    assert grants.refusal(checkpoint) is None
    assert grants.refusal(request(Function.FETCH, "s3:ListBucket", "runs/r1/")) is None
    # What no statement allows: a batch stage reading or writing a snapshot, the alert writing or deleting
    # one, a checkpoint of another bucket.
    nothing = "no statement allows it"
    assert grants.refusal(replace(snapshot, function=Function.GENERATE)) == nothing
    assert grants.refusal(replace(snapshot, function=Function.GENERATE, action="s3:PutObject")) == nothing
    assert grants.refusal(replace(snapshot, function=Function.ALERT, action="s3:PutObject")) == nothing
    assert grants.refusal(replace(snapshot, function=Function.ALERT, action="s3:DeleteObject")) == nothing
    assert grants.refusal(request(Function.FETCH, "s3:GetObject", checkpoint.shown, "another-bucket")) == nothing
    # A grant planted missing: discover's and fetch's without the fix.
    before = Grants(without_the_fix(template), bucket)
    assert before.refusal(snapshot) == nothing
    assert before.refusal(replace(checkpoint, action="s3:DeleteObject")) == nothing
    assert before.refusal(replace(checkpoint, action="s3:PutObject")) is None
    only_discover = Grants(without_the_fix(template, (Function.DISCOVER,)), bucket)
    assert only_discover.refusal(snapshot) == nothing
    assert only_discover.refusal(checkpoint) is None
    # An explicit Deny wins over an Allow: one in the data bucket's policy, one (its action in lower case)
    # in discover's role policy.
    denying = copy.deepcopy(template)
    resources = denying["Resources"]
    data = next(lid for lid, r in of_type(denying, "AWS::S3::Bucket") if lid.startswith("StorageDataBucket"))
    (bucket_policy,) = (lid for lid, r in of_type(denying, "AWS::S3::BucketPolicy") if r["Bucket"] == {"Ref": data})
    (role_policy,) = (
        lid
        for lid, r in of_type(denying, "AWS::IAM::Policy")
        if {"Ref": roles_of(denying, (Function.DISCOVER,)).pop()} in r["Roles"]
        and any(_s3(_listed(statement["Action"])) for statement in r["PolicyDocument"]["Statement"])
    )
    under = {"Fn::Join": ["", [{"Fn::GetAtt": [data, "Arn"]}, "/report_jobs/*"]]}
    resources[bucket_policy]["Properties"]["PolicyDocument"]["Statement"].append(
        {"Action": "s3:Get*", "Effect": "Deny", "Principal": {"AWS": "*"}, "Resource": under}
    )
    resources[role_policy]["Properties"]["PolicyDocument"]["Statement"].append(
        {"Action": "s3:deleteobject*", "Effect": "Deny", "Resource": under}
    )
    denied = Grants(denying, bucket)
    assert denied.refusal(snapshot) == f"explicitly denied by {bucket_policy}"
    assert denied.refusal(replace(snapshot, function=Function.FINALIZE)) == f"explicitly denied by {bucket_policy}"
    assert denied.refusal(replace(snapshot, function=Function.FINALIZE, action="s3:DeleteObject")) is None
    assert denied.refusal(replace(snapshot, action="s3:DeleteObject")) == f"explicitly denied by {role_policy}"
    assert denied.refusal(checkpoint) is None
