"""The whole app as `app.py` builds it from cdk.json-style context, checked on its CloudFormation.

Two apps per module: the same-account mode (reporter role created here, plus the management-account
`ReporterRoleStack`) and the cross-account mode (an existing reporter role with an ExternalId).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from cdk_nag import AwsSolutionsChecks

from app import build
from infra.config import CollectorConfig, ConfigError, load_config
from infra.keys import DENY_GRANTS_SID
from infra.log_groups import encrypted_log_group
from infra.nag import GUARD, PACK, acknowledge_guard
from infra.reporter_role import ORGANIZATIONS_READS, REPORT_ACTIONS
from lambdas.collector import config as settings
from lambdas.collector.names import REPORTER_ROLE as ROLE_NAME
from lambdas.collector.names import Function
from lambdas.collector.settings import LOG_RETENTION
from tests.infra.synth import ROOT, Finding, control_tower_checks, new_app, render, synth_report

COLLECTOR: dict[str, Any] = {
    "schedule": "cron(30 2 * * ? *)",
    "time_zone": "Europe/Paris",
    "scope": "ous",
    "include_ids": ["ou-ab12-abcdefgh"],
    "policy_ids": ["p-abcd1234"],
    "unused_after_days": 60,
    "allowlist": ["sts"],
    "allowlist_by_target": {"111122223333": ["gamelift"]},
    "alert_emails": ["security@example.com"],
    "data_prefix": "org-access/",
    "log_retention_days": 90,
    "batch_size": 50,
    "max_concurrency": 4,
    "tolerated_failures": 1,
    "poll_max_attempts": 20,
}
MANAGEMENT = "999988887777"
CROSS_ACCOUNT = {
    **COLLECTOR,
    "reporter_role_arn": f"arn:aws:iam::{MANAGEMENT}:role/{ROLE_NAME}",
    "external_id": "org-access-report-7f3a",
}
REPORTER_STACK = {"collector_account": "111122223333", "external_id": "org-access-report-7f3a"}
PUT = {  # CDK's grant_put
    "s3:PutObject",
    "s3:PutObjectLegalHold",
    "s3:PutObjectRetention",
    "s3:PutObjectTagging",
    "s3:PutObjectVersionTagging",
    "s3:Abort*",
}
FUNCTIONS = tuple(Function)
REPORTING = ("discover", "generate", "poll", "fetch")
# Actions IAM offers no resource-level permission for (Service Authorization Reference): the only ones
# a reviewer should accept on "Resource": "*".
UNSCOPABLE = {
    "xray:PutTraceSegments",
    "xray:PutTelemetryRecords",
    "xray:GetSamplingRules",
    "xray:GetSamplingTargets",
    "logs:CreateLogDelivery",
    "logs:GetLogDelivery",
    "logs:UpdateLogDelivery",
    "logs:DeleteLogDelivery",
    "logs:ListLogDeliveries",
    "logs:PutResourcePolicy",
    "logs:DescribeResourcePolicies",
    "logs:DescribeLogGroups",
    "iam:GetOrganizationsAccessReport",
    *ORGANIZATIONS_READS,
}


@dataclass(frozen=True)
class Synthesized:
    app: cdk.App
    outdir: Path
    stacks: dict[str, cdk.Stack]
    templates: dict[str, dict[str, Any]]
    findings: list[tuple[str, str]]  # (rule, construct path) not acknowledged, of cdk-nag and the Control Tower rules
    suppressed: list[Finding]  # the findings an acknowledgement accepted


def synthesize(outdir: Path, context: dict[str, Any]) -> Synthesized:
    """`app.build` (cdk-nag included) as `cdk synth` runs it, minus bundling, plus cfn-guard's Control
    Tower rules; findings from the report."""
    app = build(new_app(outdir, context))
    cdk.Validations.of(app).add_plugins(control_tower_checks())
    report = synth_report(app, outdir)
    stacks = {child.node.id: child for child in app.node.children if isinstance(child, cdk.Stack)}
    templates = {name: json.loads((outdir / f"{name}.template.json").read_text()) for name in stacks}
    findings = [(finding.rule, finding.path) for finding in report.findings]
    return Synthesized(app, outdir, stacks, templates, findings, report.suppressed)


@pytest.fixture(scope="module")
def same_account(tmp_path_factory: pytest.TempPathFactory) -> Synthesized:
    return synthesize(tmp_path_factory.mktemp("same"), {"collector": COLLECTOR, "reporter_stack": REPORTER_STACK})


@pytest.fixture(scope="module")
def cross_account(tmp_path_factory: pytest.TempPathFactory) -> Synthesized:
    return synthesize(tmp_path_factory.mktemp("cross"), {"collector": CROSS_ACCOUNT})


@pytest.fixture(scope="module")
def template(same_account: Synthesized) -> dict[str, Any]:
    return same_account.templates["OrgAccessReportCollector"]


def of_type(template: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {lid: r for lid, r in template["Resources"].items() if r["Type"] == kind}


def functions(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Function properties by handler name (the handler is lambdas.handlers.<name>.handler)."""
    found = {
        r["Properties"]["Handler"].split(".")[2]: r["Properties"]
        for r in of_type(template, "AWS::Lambda::Function").values()
    }
    assert sorted(found) == sorted(FUNCTIONS)
    return found


def role_of(template: dict[str, Any], function: str) -> str:
    return str(functions(template)[function]["Role"]["Fn::GetAtt"][0])


def statements(template: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """(logical id, kind, statement) of every policy statement anywhere: identity, trust and resource policies."""
    documents = {
        "AWS::IAM::Policy": ["PolicyDocument"],
        "AWS::S3::BucketPolicy": ["PolicyDocument"],
        "AWS::SNS::TopicPolicy": ["PolicyDocument"],
        "AWS::SQS::QueuePolicy": ["PolicyDocument"],
        "AWS::KMS::Key": ["KeyPolicy"],
        "AWS::IAM::Role": ["AssumeRolePolicyDocument"],
    }
    for lid, resource in template["Resources"].items():
        properties = resource.get("Properties", {})
        docs = [properties[key] for key in documents.get(resource["Type"], []) if key in properties]
        if resource["Type"] == "AWS::IAM::Role":
            docs += [policy["PolicyDocument"] for policy in properties.get("Policies", [])]
        for doc in docs:
            for statement in doc["Statement"]:
                yield lid, resource["Type"], statement


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def identity_statements_of_role(template: dict[str, Any], role: str) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for resource in template["Resources"].values():
        properties = resource.get("Properties", {})
        if resource["Type"] == "AWS::IAM::Policy" and {"Ref": role} in properties["Roles"]:
            found += properties["PolicyDocument"]["Statement"]
    role_properties = template["Resources"][role]["Properties"]
    found += [s for p in role_properties.get("Policies", []) for s in p["PolicyDocument"]["Statement"]]
    return found


def actions_of_role(template: dict[str, Any], role: str) -> set[str]:
    return {action for s in identity_statements_of_role(template, role) for action in as_list(s["Action"])}


def reporter_role(template: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    (found,) = [
        (lid, r)
        for lid, r in of_type(template, "AWS::IAM::Role").items()
        if any(p["PolicyName"] == "reports" for p in r["Properties"].get("Policies", []))
    ]
    return found


# --- cdk-nag and cfn-lint ----------------------------------------------------------------------------


def test_the_app_has_no_unacknowledged_cdk_nag_or_control_tower_findings(
    same_account: Synthesized, cross_account: Synthesized
) -> None:
    assert same_account.findings == []
    assert cross_account.findings == []
    assert set(same_account.stacks) == {"OrgAccessReportCollector", "OrgAccessReportReporterRole"}


def acknowledgements(stack: cdk.Stack, plugin: str) -> dict[str, dict[str, str]]:
    """{construct path: {acknowledged id: reason}} of one plugin's acknowledgements (ids `plugin::rule`)."""
    found: dict[str, dict[str, str]] = {}
    for construct in stack.node.find_all():
        for entry in construct.node.metadata:
            if entry.type == cdk.Validations.ACKNOWLEDGED_RULES_METADATA_KEY:
                found.setdefault(construct.node.path, {}).update(
                    {rule: reason for rule, reason in entry.data.items() if rule.startswith(f"{plugin}::")}
                )
    return {path: rules for path, rules in found.items() if rules}


def test_every_acknowledgement_accepts_a_real_finding_for_a_stated_reason(same_account: Synthesized) -> None:
    """Acknowledgements are exact: each one matches a finding cdk-nag raises below it (none is stale or
    blanket), and every raw finding is covered by one. `validate_scope` reports findings as if none
    were acknowledged."""
    for stack in same_account.stacks.values():
        raw = {
            (violation.rule_name, str(resource.construct_path))
            for violation in AwsSolutionsChecks().validate_scope(stack).violations
            for resource in violation.violating_resources
        }
        acknowledged = acknowledgements(stack, PACK)
        assert raw, "cdk-nag raised nothing: the check did not run"
        for path, rules in acknowledged.items():
            for rule_id, reason in rules.items():
                rule = rule_id.removeprefix("AwsSolutions::")
                assert len(reason) >= 40, f"{path}: {rule} needs a reason a reviewer can check"
                assert any(r == rule and p.startswith(f"{path}/") for r, p in raw), f"{path}: {rule} is stale"
        for rule, resource_path in raw:
            covering = [
                path
                for path, rules in acknowledged.items()
                if f"AwsSolutions::{rule}" in rules and resource_path.startswith(f"{path}/")
            ]
            assert covering, f"{rule} on {resource_path} is not acknowledged"


def cfn_lint(*templates: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(Path(sys.executable).parent / "cfn-lint"), *map(str, templates)],
        cwd=ROOT,  # picks up .cfnlintrc.yaml (the ignored rules, listed in README)
        capture_output=True,
        text=True,
        check=False,
    )


def test_cfn_lint_passes_on_every_synthesized_template(same_account: Synthesized, cross_account: Synthesized) -> None:
    templates = [s.outdir / f"{name}.template.json" for s in (same_account, cross_account) for name in s.stacks]
    result = cfn_lint(*templates)
    assert result.returncode == 0, result.stdout + result.stderr


def test_cfn_lint_would_catch_a_broken_template(tmp_path: Path, template: dict[str, Any]) -> None:
    broken = json.loads(json.dumps(template))
    function = next(iter(of_type(broken, "AWS::Lambda::Function").values()))
    function["Properties"]["Runtime"] = "python2.6"
    path = tmp_path / "broken.template.json"
    path.write_text(json.dumps(broken))
    result = cfn_lint(path)
    assert result.returncode != 0
    assert "python2.6" in result.stdout


# --- policies ----------------------------------------------------------------------------------------


def test_no_policy_anywhere_allows_every_action_of_a_service(
    same_account: Synthesized, cross_account: Synthesized
) -> None:
    """No `*` action at all, and `service:*` only where AWS requires it: a KMS key policy's statement that
    hands the key's administration to the account's IAM (the AWS default key policy)."""
    for synthesized in (same_account, cross_account):
        for template in synthesized.templates.values():
            for lid, kind, statement in statements(template):
                if statement["Effect"] != "Allow":
                    continue
                for action in as_list(statement.get("Action", [])):
                    assert action != "*", f"{lid}: '*' action"
                    if action.endswith(":*"):
                        assert (kind, action) == ("AWS::KMS::Key", "kms:*"), f"{lid}: {action}"
                        assert render(statement["Principal"]["AWS"]).endswith(":root")


def test_resource_star_is_granted_only_for_actions_without_resource_level_permissions(
    template: dict[str, Any],
) -> None:
    checked = 0
    for lid, kind, statement in statements(template):
        if kind in ("AWS::IAM::Policy", "AWS::IAM::Role") and statement.get("Resource") == "*":
            assert set(as_list(statement["Action"])) <= UNSCOPABLE, lid
            checked += 1
    assert checked > 0


def test_the_reporter_role_has_exactly_the_report_and_organizations_read_actions(template: dict[str, Any]) -> None:
    lid, role = reporter_role(template)
    actions = actions_of_role(template, lid)
    assert actions == set(REPORT_ACTIONS) | set(ORGANIZATIONS_READS)
    generate = [s for s in identity_statements_of_role(template, lid) if s["Action"] == REPORT_ACTIONS[0]]
    assert [render(s["Resource"]) for s in generate] == ["arn:<AWS::Partition>:iam::<AWS::AccountId>:access-report/*"]
    assert role["Properties"]["MaxSessionDuration"] == 3600


def test_only_the_reporting_functions_can_assume_the_reporter_role(template: dict[str, Any]) -> None:
    lid, role = reporter_role(template)
    (trust,) = role["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    trusted = {render(arn) for arn in as_list(trust["Principal"]["AWS"])}
    assert trusted == {f"<{role_of(template, name)}.Arn>" for name in REPORTING}
    for name in FUNCTIONS:
        assumes = [
            s for s in identity_statements_of_role(template, role_of(template, name)) if s["Action"] == "sts:AssumeRole"
        ]
        expected = [f"<{lid}.Arn>"] if name in REPORTING else []
        assert [render(s["Resource"]) for s in assumes] == expected, name


def test_each_function_writes_only_what_its_stage_writes(template: dict[str, Any]) -> None:
    def s3_grants(name: str) -> dict[str, set[str]]:
        grants: dict[str, set[str]] = {}
        for statement in identity_statements_of_role(template, role_of(template, name)):
            actions = [a for a in as_list(statement["Action"]) if a.startswith("s3:")]
            for resource in as_list(statement["Resource"]) if actions else []:
                grants.setdefault(render(resource), set()).update(actions)
        return grants

    (bucket,) = [lid for lid in of_type(template, "AWS::S3::Bucket") if lid.startswith("StorageDataBucket")]
    scratch, everything = f"<{bucket}.Arn>/org-access/runs/*", f"<{bucket}.Arn>/org-access/*"
    for name in REPORTING:
        grants = s3_grants(name)
        assert grants[scratch] >= PUT, name
        writes = {r for r, actions in grants.items() if any(a.startswith(("s3:Put", "s3:Delete")) for a in actions)}
        assert writes == {scratch}, name  # they write and delete only the run's scratch
    # discover plans from the latest days' report_jobs: it reads (never writes) the data
    assert "s3:GetObject*" in s3_grants("discover")[everything]
    assert not any("s3:DeleteObject*" in actions for actions in s3_grants("discover").values())
    # a retried batch stage reads its checkpoint (listing, so a missing one is a 404) and deletes later parts
    for name in (Function.GENERATE, Function.POLL, Function.FETCH):
        grants = s3_grants(name)
        assert {"s3:GetObject*", "s3:DeleteObject*"} <= grants[scratch], name
        assert "s3:List*" in grants[f"<{bucket}.Arn>"], name
        assert everything not in grants, name
    alert = s3_grants("alert")
    assert set(alert) == {f"<{bucket}.Arn>", everything}
    assert all(not action.startswith(("s3:Put", "s3:Delete")) for actions in alert.values() for action in actions)
    finalize = s3_grants("finalize")
    assert {"s3:PutObject", "s3:DeleteObject*", "s3:GetObject*"} <= finalize[everything]
    assert set(finalize) == {f"<{bucket}.Arn>", everything}


def test_discover_alone_may_list_the_executions_of_exactly_this_state_machine(template: dict[str, Any]) -> None:
    (machine,) = of_type(template, "AWS::StepFunctions::StateMachine")
    for name in FUNCTIONS:
        states = [
            (action, s["Resource"])
            for s in identity_statements_of_role(template, role_of(template, name))
            for action in as_list(s["Action"])
            if action.startswith("states:")
        ]
        expected = [("states:ListExecutions", {"Ref": machine})] if name == "discover" else []
        assert states == expected, name
    # In a policy of its own, which the function does not wait for: the state machine names the function,
    # so a dependency of the function on it would be a cycle (cfn-lint's E3004 checks the whole template).
    (policy,) = [
        lid
        for lid, r in of_type(template, "AWS::IAM::Policy").items()
        if "states:ListExecutions" in json.dumps(r["Properties"]["PolicyDocument"])
    ]
    (discover,) = [
        lid
        for lid, r in of_type(template, "AWS::Lambda::Function").items()
        if ".discover." in r["Properties"]["Handler"]
    ]
    assert policy not in template["Resources"][discover].get("DependsOn", [])


def test_the_limits_table_is_on_demand_recoverable_and_learned_only_by_the_reporting_stages(
    template: dict[str, Any],
) -> None:
    (table_id, table), *others = of_type(template, "AWS::DynamoDB::Table").items()
    assert not others
    properties = table["Properties"]
    assert properties["BillingMode"] == "PAY_PER_REQUEST"
    assert properties["KeySchema"] == [{"AttributeName": "pk", "KeyType": "HASH"}]
    assert properties["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    assert properties["SSESpecification"]["SSEEnabled"] is True
    for name in FUNCTIONS:
        actions = sorted(
            action
            for s in identity_statements_of_role(template, role_of(template, name))
            for action in as_list(s["Action"])
            if action.startswith("dynamodb:") and any(table_id in json.dumps(r) for r in as_list(s["Resource"]))
        )
        expected = {
            "discover": ["dynamodb:GetItem", "dynamodb:PutItem"],
            "generate": ["dynamodb:GetItem", "dynamodb:PutItem"],
            "poll": ["dynamodb:GetItem", "dynamodb:PutItem"],
            "fetch": ["dynamodb:GetItem", "dynamodb:PutItem"],
        }.get(name, [])
        assert actions == expected, name
        variables = functions(template)[name]["Environment"]["Variables"]
        assert (variables.get("LIMITS_TABLE") == {"Ref": table_id}) == bool(expected), name


def test_no_function_role_uses_a_managed_policy_and_each_writes_only_its_own_logs(template: dict[str, Any]) -> None:
    for name, function in functions(template).items():
        role = role_of(template, name)
        assert "ManagedPolicyArns" not in template["Resources"][role]["Properties"]
        logs = [s for s in identity_statements_of_role(template, role) if "logs:PutLogEvents" in as_list(s["Action"])]
        log_group = function["LoggingConfig"]["LogGroup"]["Ref"]
        assert [render(s["Resource"]) for s in logs] == [f"<{log_group}.Arn>"], name


def test_the_alert_and_the_failure_notification_can_publish_to_the_encrypted_topic(template: dict[str, Any]) -> None:
    (topic,) = of_type(template, "AWS::SNS::Topic")
    key = template["Resources"][topic]["Properties"]["KmsMasterKeyId"]["Fn::GetAtt"][0]
    (machine,) = of_type(template, "AWS::StepFunctions::StateMachine").values()
    for role in (role_of(template, "alert"), machine["Properties"]["RoleArn"]["Fn::GetAtt"][0]):
        granted = {
            (action, render(resource))
            for s in identity_statements_of_role(template, role)
            for action in as_list(s["Action"])
            for resource in as_list(s["Resource"])
        }
        assert {("sns:Publish", f"<{topic}>"), ("kms:GenerateDataKey*", f"<{key}.Arn>")} <= granted, role


# --- functions, schedule, workflow, monitoring -------------------------------------------------------


def test_every_function_runs_python_313_on_arm64_traced_with_json_logs_kept_as_configured(
    template: dict[str, Any],
) -> None:
    for name, function in functions(template).items():
        assert (function["Runtime"], function["Architectures"]) == ("python3.13", ["arm64"]), name
        assert function["TracingConfig"] == {"Mode": "Active"}
        assert function["LoggingConfig"]["LogFormat"] == "JSON"
        log_group = template["Resources"][function["LoggingConfig"]["LogGroup"]["Ref"]]
        assert log_group["Properties"]["RetentionInDays"] == COLLECTOR["log_retention_days"]
        assert function["Environment"]["Variables"]["POWERTOOLS_SERVICE_NAME"] == "org-access-report"


def environment(function: dict[str, Any]) -> dict[str, str]:
    """A function's variables with CloudFormation references replaced by values of the right shape."""
    shaped = {
        "DATA_BUCKET": "org-access-data-bucket",
        "REPORT_ROLE_ARN": "arn:aws:iam::111122223333:role/reporter",
        "ALERT_TOPIC_ARN": "arn:aws:sns:eu-west-1:111122223333:alerts",
        "LIMITS_TABLE": "OrgAccessReportCollector-LimitsTable-1A2B3C",
    }
    return {k: v if isinstance(v, str) else shaped[k] for k, v in function["Environment"]["Variables"].items()}


@pytest.mark.parametrize("name", FUNCTIONS)
def test_each_functions_environment_is_what_its_handler_reads(
    template: dict[str, Any], name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for variable in list(os.environ):
        monkeypatch.delenv(variable)
    for variable, value in environment(functions(template)[name]).items():
        monkeypatch.setenv(variable, value)
    loaded = settings.load(settings.BY_FUNCTION[Function(name)])
    # Every tunable the function reads has the configured value (defaults included), none missing
    config = load_config(COLLECTOR)
    tunables = set(type(loaded).model_fields) & set(type(config).model_fields)
    assert tunables
    assert {k: getattr(loaded, k) for k in tunables} == {k: getattr(config, k) for k in tunables}
    if isinstance(loaded, settings.DiscoverSettings):
        assert (loaded.scope.value, loaded.include_ids, loaded.policy_ids) == (
            "ous",
            ["ou-ab12-abcdefgh"],
            ["p-abcd1234"],
        )
        assert (loaded.batch_size, loaded.poll_max_attempts, loaded.data_prefix) == (50, 20, "org-access/")
    if isinstance(loaded, settings.AlertSettings):
        assert (loaded.unused_after_days, loaded.allowlist) == (60, ["sts"])
        assert loaded.allowlist_by_target == {"111122223333": ["gamelift"]}


def test_the_schedule_starts_the_state_machine_in_the_time_zone_with_retries_and_a_dead_letter_queue(
    template: dict[str, Any],
) -> None:
    (schedule,) = of_type(template, "AWS::Scheduler::Schedule").values()
    properties = schedule["Properties"]
    assert properties["ScheduleExpression"] == COLLECTOR["schedule"]
    assert properties["ScheduleExpressionTimezone"] == COLLECTOR["time_zone"]
    (machine,) = of_type(template, "AWS::StepFunctions::StateMachine")
    target = properties["Target"]
    assert target["Arn"] == {"Ref": machine}
    assert target["RetryPolicy"]["MaximumRetryAttempts"] == 3
    (queue,) = of_type(template, "AWS::SQS::Queue")
    assert target["DeadLetterConfig"]["Arn"] == {"Fn::GetAtt": [queue, "Arn"]}


def test_the_state_machine_takes_its_bounds_from_the_configuration(template: dict[str, Any]) -> None:
    (machine,) = of_type(template, "AWS::StepFunctions::StateMachine").values()
    definition = json.loads(render(machine["Properties"]["DefinitionString"]))
    collect = definition["States"]["CollectBatches"]
    assert (collect["MaxConcurrencyPath"], collect["ToleratedFailureCount"]) == ("$.run.lanes", 1)
    progress = collect["ItemProcessor"]["States"]["BatchProgress"]
    bound = load_config(COLLECTOR).max_rounds
    assert {"Variable": "$.round", "NumericGreaterThanEquals": bound, "Next": "BatchLoopBound"} in progress["Choices"]
    assert bound > 2 * COLLECTOR["poll_max_attempts"]  # poll's own limit times out jobs first


def test_alarms_cover_executions_every_function_and_the_schedule_and_notify_the_topic(
    template: dict[str, Any],
) -> None:
    (topic,) = of_type(template, "AWS::SNS::Topic")
    alarms = of_type(template, "AWS::CloudWatch::Alarm").values()
    watched = {(a["Properties"]["Namespace"], a["Properties"]["MetricName"]) for a in alarms}
    assert {("AWS/States", m) for m in ("ExecutionsFailed", "ExecutionsTimedOut", "ExecutionsAborted")} <= watched
    assert ("AWS/SQS", "ApproximateNumberOfMessagesVisible") in watched
    errors = [a for a in alarms if a["Properties"]["MetricName"] == "Errors"]
    assert len(errors) == len(FUNCTIONS)
    assert all(a["Properties"]["AlarmActions"] == [{"Ref": topic}] for a in alarms)
    assert of_type(template, "AWS::CloudWatch::Dashboard")


# --- the cross-account mode and the reporter role stack -----------------------------------------------


def test_cross_account_mode_uses_the_given_role_with_its_external_id(cross_account: Synthesized) -> None:
    template = cross_account.templates["OrgAccessReportCollector"]
    with pytest.raises(ValueError, match="not enough values"):
        reporter_role(template)  # none in this stack
    for name in REPORTING:
        variables = functions(template)[name]["Environment"]["Variables"]
        assert variables["REPORT_ROLE_ARN"] == CROSS_ACCOUNT["reporter_role_arn"]
        assert variables["EXTERNAL_ID"] == CROSS_ACCOUNT["external_id"]
        assumes = [
            s for s in identity_statements_of_role(template, role_of(template, name)) if s["Action"] == "sts:AssumeRole"
        ]
        assert [s["Resource"] for s in assumes] == [CROSS_ACCOUNT["reporter_role_arn"]]


def test_the_reporter_role_stack_trusts_the_collector_account_with_the_external_id(same_account: Synthesized) -> None:
    template = same_account.templates["OrgAccessReportReporterRole"]
    lid, role = reporter_role(template)
    assert role["Properties"]["RoleName"] == ROLE_NAME
    (trust,) = role["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    assert render(trust["Principal"]["AWS"]) == "arn:<AWS::Partition>:iam::111122223333:root"
    condition = {key: {k: render(v) for k, v in value.items()} for key, value in trust["Condition"].items()}
    assert condition == {
        "StringEquals": {"sts:ExternalId": REPORTER_STACK["external_id"]},
        "ArnLike": {
            "aws:PrincipalArn": "arn:<AWS::Partition>:iam::111122223333:role/OrgAccessReportCollector-Functions*"
        },
    }
    assert actions_of_role(template, lid) == set(REPORT_ACTIONS) | set(ORGANIZATIONS_READS)


# --- configuration -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("context", "named"),
    [
        ({"schedual": "rate(1 day)"}, "schedual"),
        ({"scope": "everything"}, "scope"),
        ({"include_ids": ["ou-nope"]}, "include_ids.0"),
        ({"unused_after_days": 0}, "unused_after_days"),
        ({"alert_emails": ["not-an-address"]}, "alert_emails.0"),
        ({"log_retention_days": 31}, "log_retention_days"),
        ({"batch_size": 251}, "batch_size"),
        ({"reporter_role_arn": "arn:aws:iam::1:role/x"}, "reporter_role_arn"),
        ({"external_id": "abc"}, "external_id is only used with reporter_role_arn"),
    ],
)
def test_a_bad_context_key_fails_the_synth_naming_it(context: dict[str, Any], named: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(named)):
        load_config(context)
    with pytest.raises(ConfigError, match=re.escape(named)):
        build(new_app(context={"collector": context}))


def test_no_context_means_the_documented_defaults() -> None:
    assert load_config(None) == CollectorConfig()
    assert load_config(json.loads((ROOT / "cdk.json").read_text())["context"]["collector"]) == CollectorConfig()


def test_every_configuration_key_is_in_the_readme_with_its_default() -> None:
    readme = (ROOT / "README.md").read_text()
    rows = dict(re.findall(r"^\| `(\w+)` \| `([^`]*)` \|", readme, flags=re.MULTILINE))
    defaults = {name: json.dumps(field.default) for name, field in CollectorConfig.model_fields.items()}
    documented = {name: rows.get(name) for name in defaults}
    assert documented == defaults


def test_every_allowed_log_retention_is_a_cdk_retention_period() -> None:
    assert set(LOG_RETENTION.values()) <= {r.name for r in cdk.aws_logs.RetentionDays}
    assert len(LOG_RETENTION) == len(set(LOG_RETENTION.values()))


def _resolved(value: Any) -> Any:
    """A CloudFormation string expression as a deployed value would read: functions, bucket and topic as ARNs
    and names of this account, so validators that check ARNs see real-shaped ones."""
    if isinstance(value, dict) and "Fn::Join" in value:
        separator, parts = value["Fn::Join"]
        return separator.join(str(_resolved(part)) for part in parts)
    if isinstance(value, dict) and "Ref" in value:
        ref = value["Ref"]
        pseudo = {"AWS::Partition": "aws", "AWS::Region": "us-east-1", "AWS::AccountId": "123456789012"}
        if ref in pseudo:
            return pseudo[ref]
        if "Topic" in ref:
            return f"arn:aws:sns:us-east-1:123456789012:{ref}"
        return ref.lower()[:63]  # a bucket's name
    if isinstance(value, dict) and "Fn::GetAtt" in value:
        return f"arn:aws:lambda:us-east-1:123456789012:function:{value['Fn::GetAtt'][0]}"
    return value


def asl_validator(definition: dict[str, Any], directory: Path) -> subprocess.CompletedProcess[str]:
    """The npm asl-validator (pinned in package.json, like the CDK CLI) on a definition."""
    path = directory / "definition.json"
    path.write_text(json.dumps(definition))
    return subprocess.run(
        ["npx", "--no-install", "asl-validator", "--json-path", str(path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


def state_machine_definition(template: dict[str, Any]) -> dict[str, Any]:
    (machine,) = (r for r in template["Resources"].values() if r["Type"] == "AWS::StepFunctions::StateMachine")
    return dict(json.loads(_resolved(machine["Properties"]["DefinitionString"])))


def test_the_synthesized_state_machine_is_valid_amazon_states_language(
    template: dict[str, Any], tmp_path: Path
) -> None:
    # cfn-lint does not read a definition CDK writes as an Fn::Join string: an independent validator does,
    # the parent and the Distributed Map's item processor (inline in it) alike.
    definition = state_machine_definition(template)
    assert "ItemProcessor" in definition["States"]["CollectBatches"]
    result = asl_validator(definition, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "valid" in result.stdout.lower()


def test_the_asl_validator_catches_a_planted_defect(template: dict[str, Any], tmp_path: Path) -> None:
    # Control: the same definition with the batch loop's Choice sent to a state that does not exist.
    definition = state_machine_definition(template)
    processor = definition["States"]["CollectBatches"]["ItemProcessor"]
    processor["States"]["BatchProgress"]["Default"] = "NoSuchState"
    result = asl_validator(definition, tmp_path)
    assert result.returncode != 0
    assert "NoSuchState" in result.stdout + result.stderr


# --- cfn-guard with the Control Tower rules: a template scanner independent of cdk-nag --------------------


def guard_acknowledgements(app: cdk.App) -> dict[tuple[str, str], str]:
    """{(guard rule, construct path): reason} of every Control Tower acknowledgement in `app`."""
    return {
        (rule.removeprefix(f"{GUARD}::"), path): reason
        for stack in app.node.children
        if isinstance(stack, cdk.Stack)
        for path, rules in acknowledgements(stack, GUARD).items()
        for rule, reason in rules.items()
    }


def guard_stale(app: cdk.App, suppressed: list[Finding]) -> set[tuple[str, str]]:
    """Acknowledgements (rule, construct path) that accepted no finding of the Control Tower rules."""
    used = {(finding.rule, finding.acknowledged_at) for finding in suppressed if finding.plugin == GUARD}
    return set(guard_acknowledgements(app)) - used


def test_every_control_tower_acknowledgement_accepts_one_finding_on_its_own_resource(
    same_account: Synthesized, cross_account: Synthesized
) -> None:
    """Both modes' templates (the collector, the reporter role stack): each acknowledgement accepted a
    finding (none is stale), on the resource of the construct it is written on and no other, for a
    stated reason; and the rules did run (they had findings to accept)."""
    for synthesized in (same_account, cross_account):
        accepted = [finding for finding in synthesized.suppressed if finding.plugin == GUARD]
        assert accepted, "the Control Tower rules reported nothing: the plugin did not run"
        assert guard_stale(synthesized.app, synthesized.suppressed) == set()
        for finding in accepted:
            assert finding.path in (f"{finding.acknowledged_at}/Resource", finding.acknowledged_at), finding
        for (rule, path), reason in guard_acknowledgements(synthesized.app).items():
            assert len(reason) >= 40, f"{path}: {rule} needs a reason a reviewer can check"


def test_the_hardening_the_control_tower_rules_asked_for(template: dict[str, Any]) -> None:
    """Every log group is encrypted with the one logs key, whose policy admits CloudWatch Logs only for
    log groups of this account and region; both keys rotate and refuse grants but by AWS services; the
    access-log bucket is versioned."""
    keys = of_type(template, "AWS::KMS::Key")
    (logs_key,) = [lid for lid in keys if lid.startswith("LogsKey")]
    log_groups = of_type(template, "AWS::Logs::LogGroup")
    assert len(log_groups) == len(FUNCTIONS) + 1
    assert {json.dumps(g["Properties"]["KmsKeyId"]) for g in log_groups.values()} == {
        json.dumps({"Fn::GetAtt": [logs_key, "Arn"]})
    }
    (logs_service,) = [
        s for s in keys[logs_key]["Properties"]["KeyPolicy"]["Statement"] if "Service" in s.get("Principal", {})
    ]
    assert render(logs_service["Principal"]["Service"]) == "logs.<AWS::Region>.amazonaws.com"
    assert render(logs_service["Condition"]["ArnLike"]["kms:EncryptionContext:aws:logs:arn"]) == (
        "arn:<AWS::Partition>:logs:<AWS::Region>:<AWS::AccountId>:log-group:*"
    )
    assert "kms:CreateGrant" not in json.dumps(logs_service)
    for key in keys.values():
        assert key["Properties"]["EnableKeyRotation"] is True
        (deny,) = [s for s in key["Properties"]["KeyPolicy"]["Statement"] if s["Effect"] == "Deny"]
        assert (deny["Action"], deny["Principal"], deny["Resource"]) == ("kms:CreateGrant", {"AWS": "*"}, "*")
        assert deny["Condition"] == {
            "BoolIfExists": {"kms:GrantIsForAWSResource": "false", "aws:PrincipalIsAWSService": "false"}
        }
    (log_bucket,) = [r for lid, r in of_type(template, "AWS::S3::Bucket").items() if lid.startswith("StorageLogBucket")]
    assert log_bucket["Properties"]["VersioningConfiguration"] == {"Status": "Enabled"}


def test_a_retention_of_a_year_needs_no_acknowledgement() -> None:
    stack = cdk.Stack(new_app(), "Retention")
    short = encrypted_log_group(stack, "Short", retention=logs.RetentionDays.SIX_MONTHS)
    year = encrypted_log_group(stack, "Year", retention=logs.RetentionDays.ONE_YEAR)
    acknowledged = acknowledgements(stack, GUARD)
    assert list(acknowledged.get(short.node.path, {})) == [f"{GUARD}::cloudwatch_log_group_retention_period_check"]
    assert year.node.path not in acknowledged


def test_the_control_tower_rules_catch_planted_defects_and_a_stale_acknowledgement(tmp_path: Path) -> None:
    """Control: the hardening undone, one defect in each stack (the state machine's execution log
    unencrypted, the alert key's grant restriction dropped, the access-log bucket unversioned, an
    `"Action": "*"` policy on the reporter role in its own stack), and an acknowledgement where there is
    no finding (the data bucket is versioned). Each is reported, and nothing else."""
    app = build(new_app(tmp_path, {"collector": COLLECTOR, "reporter_stack": REPORTER_STACK}))
    collector = app.node.find_child("OrgAccessReportCollector")
    execution_logs = collector.node.find_child("Workflow").node.find_child("ExecutionLogs").node.default_child
    assert isinstance(execution_logs, logs.CfnLogGroup)
    execution_logs.add_property_deletion_override("KmsKeyId")
    topic_key = collector.node.find_child("Alerting").node.find_child("TopicKey").node.default_child
    assert isinstance(topic_key, kms.CfnKey)
    policy = cdk.Stack.of(topic_key).resolve(topic_key.key_policy)
    topic_key.add_property_override(
        "KeyPolicy.Statement", [s for s in policy["Statement"] if s.get("Sid") != DENY_GRANTS_SID]
    )
    storage = collector.node.find_child("Storage")
    log_bucket = storage.node.find_child("LogBucket").node.default_child
    assert isinstance(log_bucket, s3.CfnBucket)
    log_bucket.add_property_deletion_override("VersioningConfiguration")
    acknowledge_guard(
        storage.node.find_child("DataBucket"),
        {"s3_bucket_versioning_enabled_check": "planted: the data bucket is versioned, so this accepts nothing"},
    )
    reporter = app.node.find_child("OrgAccessReportReporterRole").node.find_child("Reporter").node.find_child("Role")
    assert isinstance(reporter, iam.Role)
    reporter.add_to_principal_policy(iam.PolicyStatement(actions=["*"], resources=["*"]))
    cdk.Validations.of(app).add_plugins(control_tower_checks())

    report = synth_report(app, tmp_path)

    assert {(f.rule, f.path) for f in report.findings if f.plugin == GUARD} == {
        ("cloudwatch_log_group_encrypted_check", "OrgAccessReportCollector/Workflow/ExecutionLogs/Resource"),
        ("kms_create_grant_aws_service_check", "OrgAccessReportCollector/Alerting/TopicKey/Resource"),
        ("s3_bucket_versioning_enabled_check", "OrgAccessReportCollector/Storage/LogBucket/Resource"),
        *(
            (
                f"iam_inline_policy_no_statements_with_{access}_check",
                "OrgAccessReportReporterRole/Reporter/Role/DefaultPolicy/Resource",
            )
            for access in ("admin_access", "full_access")  # "*" on "*" is both
        ),
    }
    assert guard_stale(app, report.suppressed) == {
        ("s3_bucket_versioning_enabled_check", "OrgAccessReportCollector/Storage/DataBucket")
    }
