"""Fault case 4 through the deployed definition: STS denies the reporter role (its trust or the ExternalId is
wrong). The emulator evaluates the role's trust policy on `sts:AssumeRole` as STS does; discover's first
AssumeRole is refused, the collector raises `ReporterRoleDeniedError` (not retried: retrying cannot change
a trust decision), the run ends FAILED before any report job, nothing is written under any dataset, and one
"run failed" message names the role, the caller and what to check.

First, the templates themselves: their trust policies admit the collector's own functions and no one else.
"""

from __future__ import annotations

import json
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk import assertions

from harness.clients import client
from harness.runner import (
    ACCOUNT,
    COLLECTOR_STACK,
    NAME,
    InProcessLambdas,
    Resolver,
    _create_reporter_role,
    _resolved,
    stand_up,
)
from harness.runner import synthesize as synthesize_collector
from iam_report_emulator import store_for_account
from iam_report_emulator.access_reports import AccessReportStore
from iam_report_emulator.seed import OrganizationSpec
from iam_report_emulator.trust import AssumeRoleRequest, Caller, admits
from infra.reporter_role import ReporterRoleStack
from lambdas.collector.names import Function, Layout
from lambdas.collector.services import services
from lambdas.collector.store.schema import DATASETS
from lambdas.collector.store.storage import list_keys
from tests.conftest import REPORTER_ROLE
from tests.e2e.conftest import FAST, TIME_SCALE, Collector

ROLE_ARN = f"arn:aws:iam::{ACCOUNT}:role/{REPORTER_ROLE}"  # the demo organization's management account
ROLE_SIDE_ID = "org-access-report-7f3a"  # the reporter role stack's ExternalId
COLLECTOR_SIDE_ID = "org-access-report-7f3b"  # the collector's external_id: one character off
CHECKS = (
    "the role's trust policy names the collector's account or",
    "external_id equals the trust policy's sts:ExternalId",
    "the reporter stack deployed in the organization's management account",
    "no SCP or permissions boundary denies",
)
REPORTING = (Function.DISCOVER, Function.GENERATE, Function.POLL, Function.FETCH)


# -- the templates' trust policies -------------------------------------------------------------


def role_of(template: dict[str, Any], function: Function) -> str:
    """The logical id of `function`'s execution role in `template`."""
    (found,) = (
        r["Properties"]["Role"]["Fn::GetAtt"][0]
        for r in template["Resources"].values()
        if r["Type"] == "AWS::Lambda::Function" and r["Properties"]["Handler"] == f"lambdas.handlers.{function}.handler"
    )
    return str(found)


def deployed_arn(logical_id: str) -> str:
    """The ARN CloudFormation gives a role it names: `<stack>-<logical id>-<suffix>`, at most 64 characters."""
    return f"arn:aws:iam::{ACCOUNT}:role/{f'{COLLECTOR_STACK}-{logical_id}'[:51]}-A1B2C3D4E5F6"


def session_of(role_arn: str, function: Function) -> Caller:
    """A Lambda function's principal: a session of its execution role named for the function."""
    role = role_arn.rsplit("/", 1)[-1]
    return Caller(f"arn:aws:sts::{ACCOUNT}:assumed-role/{role}/{NAME}-{function}", ACCOUNT, role_arn, "AssumedRole")


def reporter_stack_role() -> dict[str, Any]:
    """The reporter role of `ReporterRoleStack` (management account), trusting the collector's account."""
    stack = ReporterRoleStack(cdk.App(), "Reporter", collector_account=ACCOUNT, external_id=ROLE_SIDE_ID)
    (role,) = assertions.Template.from_stack(stack).find_resources("AWS::IAM::Role").values()
    return dict(role["Properties"])


@pytest.fixture(scope="module")
def reporter_role_properties() -> dict[str, Any]:
    return reporter_stack_role()


@pytest.fixture(scope="module")
def cross_account_template() -> dict[str, Any]:
    """The collector stack in cross-account mode: the reporter role is given, with the collector's ExternalId."""
    return synthesize_collector({"reporter_role_arn": ROLE_ARN, "external_id": COLLECTOR_SIDE_ID})


def test_the_same_account_trust_admits_the_four_reporting_functions_and_no_other(template: dict[str, Any]) -> None:
    # Given the template's reporter role, its trust resolved with the names CloudFormation gives the roles
    resolve = Resolver()
    roles = {function: role_of(template, function) for function in Function}
    for logical_id in roles.values():
        resolve.attributes[(logical_id, "Arn")] = deployed_arn(logical_id)
    (reporter,) = (
        r["Properties"]
        for r in template["Resources"].values()
        if r["Type"] == "AWS::IAM::Role"
        and any(p["PolicyName"] == "reports" for p in r["Properties"].get("Policies", []))
    )
    trust = _resolved(reporter["AssumeRolePolicyDocument"], resolve)
    # Then a session of a function's execution role may assume it for the four functions that report
    request = AssumeRoleRequest(ROLE_ARN, "org-access-report-run-1")
    admitted = {f for f, lid in roles.items() if admits(trust, session_of(deployed_arn(lid), f), request)}
    assert admitted == set(REPORTING)


def test_the_reporter_stack_trust_admits_the_collectors_functions_only_with_the_external_id(
    reporter_role_properties: dict[str, Any], cross_account_template: dict[str, Any]
) -> None:
    # Given the reporter stack's role, trusting the collector's account with an ExternalId
    trust = _resolved(reporter_role_properties["AssumeRolePolicyDocument"], Resolver())
    discover = session_of(deployed_arn(role_of(cross_account_template, Function.DISCOVER)), Function.DISCOVER)
    stranger = session_of(f"arn:aws:iam::{ACCOUNT}:role/SomeOtherStack-Role-A1B2C3D4E5F6", Function.DISCOVER)

    def request(external_id: str | None) -> AssumeRoleRequest:
        return AssumeRoleRequest(ROLE_ARN, "org-access-report-run-1", external_id)

    # Then the collector's functions may assume it with that ExternalId only, another role never
    assert admits(trust, discover, request(ROLE_SIDE_ID))
    assert not admits(trust, discover, request(COLLECTOR_SIDE_ID))
    assert not admits(trust, discover, request(None))
    assert not admits(trust, stranger, request(ROLE_SIDE_ID))  # another role of the collector's account


# -- the runs ------------------------------------------------------------------------------------


def assert_failed_before_any_job(collector: Collector, store: AccessReportStore, caller: str) -> dict[str, Any]:
    """The run failed at discover, once, with nothing started or written; the one alert, parsed."""
    assert [(i.stage, i.error) for i in collector.lambdas.invocations] == [("discover", "ReporterRoleDeniedError")]
    assert store.jobs == {}
    assert sum(store.throttler.counters.calls.values()) == 0  # no IAM report call at all
    s3, deployment = client("s3"), collector.deployment
    layout = Layout(deployment.data_prefix)
    assert [key for dataset in DATASETS for key in list_keys(s3, deployment.bucket, layout.dataset(dataset))] == []
    (message,) = collector.alerts()
    assert message["Subject"] == "Org access report collector: run failed"
    failure: dict[str, Any] = json.loads(message["Message"])
    assert failure["error"] == "ReporterRoleDeniedError"
    cause = failure["cause"]
    assert f"cannot assume the reporter role {ROLE_ARN} as {caller}: STS answered AccessDenied" in cause
    assert all(check in cause for check in CHECKS), cause
    return failure


def test_a_trust_policy_that_does_not_name_the_caller_fails_the_run_once_saying_what_to_check(
    collector: Collector, store: AccessReportStore
) -> None:
    # Given the reporter role's trust changed to name another account (the collector's account is not it)
    elsewhere = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::111122223333:root"}, "Action": "sts:AssumeRole"}
        ],
    }
    client("iam").update_assume_role_policy(RoleName=REPORTER_ROLE, PolicyDocument=json.dumps(elsewhere))
    # When a run starts
    execution = collector.run()
    # Then it fails at discover's AssumeRole, never retried, with the caller named as STS saw it
    assert execution.status == "FAILED"
    caller = client("sts").get_caller_identity()["Arn"]
    failure = assert_failed_before_any_job(collector, store, caller)
    assert f"User: arn:aws:iam::{ACCOUNT}:user/moto is not authorized to perform: sts:AssumeRole" in failure["cause"]


@pytest.fixture
def as_the_discover_role(
    demo_org: OrganizationSpec, cross_account_template: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> dict[str, str]:
    """The functions' credentials (the environment their clients read, as Lambda sets it) are a session of
    discover's execution role (moto holds no such role, so it issues the session); returns them."""
    role = deployed_arn(role_of(cross_account_template, Function.DISCOVER))
    credentials: dict[str, str] = client("sts").assume_role(RoleArn=role, RoleSessionName=f"{NAME}-discover")[
        "Credentials"
    ]
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", credentials["AccessKeyId"])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", credentials["SecretAccessKey"])
    monkeypatch.setenv("AWS_SESSION_TOKEN", credentials["SessionToken"])
    services.cache_clear()  # the functions' clients are made afresh, from these
    return credentials


def test_a_wrong_external_id_fails_the_run_once_saying_what_to_check(
    demo_org: OrganizationSpec,
    store: AccessReportStore,
    as_the_discover_role: dict[str, str],
    reporter_role_properties: dict[str, Any],
    cross_account_template: dict[str, Any],
) -> None:
    # Given the reporter role as the reporter stack deploys it (trusting the collector's functions with
    # its ExternalId), and the collector deployed in cross-account mode with another external_id
    store_for_account(demo_org.management_account_id).configure(job_seconds=None, time_scale=TIME_SCALE)
    _create_reporter_role(reporter_role_properties, ROLE_ARN)
    deployment = stand_up(cross_account_template, ROLE_ARN)
    assert {f.environment.get("EXTERNAL_ID") for f in deployment.functions.values() if f.stage in REPORTING} == {
        COLLECTOR_SIDE_ID
    }
    collector = Collector(deployment, InProcessLambdas(deployment.functions))
    # And only the ExternalId is wrong: the same caller with the role's ExternalId is admitted
    sts = client("sts", credentials=as_the_discover_role)
    caller = sts.get_caller_identity()["Arn"]
    assert caller.startswith(f"arn:aws:sts::{ACCOUNT}:assumed-role/{COLLECTOR_STACK}-Functionsdiscoverrole")
    sts.assume_role(RoleArn=ROLE_ARN, RoleSessionName="control", ExternalId=ROLE_SIDE_ID)
    with pytest.raises(sts.exceptions.ClientError, match="AccessDenied"):
        sts.assume_role(RoleArn=ROLE_ARN, RoleSessionName="control", ExternalId=COLLECTOR_SIDE_ID)
    # When a run starts
    execution = collector.run(FAST)
    # Then it fails at discover's AssumeRole, never retried, saying an ExternalId was sent
    assert execution.status == "FAILED"
    failure = assert_failed_before_any_job(collector, store, caller)
    assert "This call sent an ExternalId (setting external_id)." in failure["cause"]
