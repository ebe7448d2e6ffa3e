"""Helpers for CDK tests: an app that skips bundling, logical ids, CloudFormation expressions as text,
and the findings of the validation plugins (cdk-nag's AwsSolutions checks, cfn-guard's Control Tower
rules) read from the validation report.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import aws_cdk as cdk
from aws_cdk.assertions import Template
from cdk_nag import AwsSolutionsChecks
from cdklabs.cdk_validator_cfnguard import CfnGuardValidator
from constructs import IConstruct

ROOT = Path(__file__).resolve().parents[2]


def feature_flags() -> dict[str, Any]:
    """cdk.json's feature flags, so tests synthesize what `cdk synth` does (not the `collector` settings)."""
    context: dict[str, Any] = json.loads((ROOT / "cdk.json").read_text())["context"]
    return {key: value for key, value in context.items() if key.startswith("@")}


def new_app(outdir: Path | None = None, context: dict[str, Any] | None = None) -> cdk.App:
    """An app with cdk.json's flags that never bundles Lambda code: tests need the template, not the assets."""
    return cdk.App(
        outdir=str(outdir) if outdir else None,
        context={**feature_flags(), **(context or {}), "aws:cdk:bundling-stacks": []},
    )


def logical_id(construct: IConstruct) -> str:
    """Logical id of an L1 resource, or of an L2 construct's default child."""
    resource = construct if isinstance(construct, cdk.CfnElement) else construct.node.default_child
    assert isinstance(resource, cdk.CfnElement), f"{construct.node.path} has no CloudFormation resource"
    return cdk.Stack.of(resource).get_logical_id(resource)


def resource(template: Template, logical: str) -> dict[str, Any]:
    found: dict[str, Any] = template.to_json()["Resources"][logical]
    return found


def properties(template: Template, construct: IConstruct) -> dict[str, Any]:
    """The CloudFormation `Properties` of a construct's resource in `template`."""
    found: dict[str, Any] = resource(template, logical_id(construct))["Properties"]
    return found


def render(value: Any) -> Any:
    """A CloudFormation string expression as text: Ref X → <X>, Fn::GetAtt [X, Arn] → <X.Arn>, joins joined.

    Unlike cdk-nag's flattening (`infra.nag`), literal text is kept as written: `${dt}` stays `${dt}`.
    """
    if isinstance(value, dict) and "Fn::Join" in value:
        separator, parts = value["Fn::Join"]
        return separator.join(str(render(part)) for part in parts)
    if isinstance(value, dict) and "Ref" in value:
        return f"<{value['Ref']}>"
    if isinstance(value, dict) and "Fn::GetAtt" in value:
        return "<{}.{}>".format(*value["Fn::GetAtt"])
    return value


def nag_findings(app: cdk.App, outdir: Path) -> list[tuple[str, str]]:
    """(rule, construct path) of every unacknowledged AwsSolutions finding; `app` must write to `outdir`.

    cdk-nag 3 runs as a CDK validation plugin: findings fail `synth` and are written to
    `validation-report.json`. (`AwsSolutionsChecks.validate_scope` ignores acknowledgements, so it
    is not used here.)
    """
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    return synth_findings(app, outdir)


def synth_findings(app: cdk.App, outdir: Path) -> list[tuple[str, str]]:
    """Synthesize `app` (its validation plugins already added) and return the findings they reported."""
    return [(finding.rule, finding.path) for finding in synth_report(app, outdir).findings]


def control_tower_checks() -> cdk.IPolicyValidationPlugin:
    """cfn-guard with every Control Tower proactive control the package bundles, as a validation plugin.

    It runs the bundled cfn-guard binary on each template of the app, offline; findings fail synth like
    cdk-nag's and are acknowledged the same way (`infra.nag.acknowledge_guard`).
    """
    # The package still declares CDK's deprecated `IPolicyValidationPluginBeta1`, whose members are the
    # current interface's; `Validations.add_plugins` runs it as one.
    return cast(cdk.IPolicyValidationPlugin, CfnGuardValidator())


@dataclass(frozen=True)
class Finding:
    plugin: str  # the validation plugin's name: AwsSolutions, cdk-validator-cfnguard
    rule: str
    path: str  # the violating resource's construct path
    acknowledged_at: str | None = None  # where the acknowledgement that accepted it is, if one did


@dataclass(frozen=True)
class ValidationReport:
    findings: list[Finding]  # not acknowledged: these fail synth
    suppressed: list[Finding]  # accepted by an acknowledgement


def synth_report(app: cdk.App, outdir: Path) -> ValidationReport:
    """Synthesize `app` (its validation plugins already added) and read what they reported."""
    try:
        app.synth()
    except RuntimeError as error:
        if "ValidationFailed" not in str(error):
            raise
    report_path = outdir / "validation-report.json"
    if not report_path.exists():
        return ValidationReport([], [])
    plugins = json.loads(report_path.read_text())["pluginReports"]

    def read(key: str) -> list[Finding]:
        return [
            Finding(
                plugin["pluginName"], violation["ruleName"], construct["constructPath"], violation.get("acknowledgedAt")
            )
            for plugin in plugins
            for violation in plugin.get(key, [])
            for construct in violation["violatingConstructs"]
        ]

    return ValidationReport(read("violations"), read("suppressedViolations"))
