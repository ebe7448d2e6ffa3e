"""Helpers for CDK tests: an app that skips bundling, logical ids, CloudFormation expressions as text,
and the findings of cdk-nag's AwsSolutions checks read from the validation report.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import aws_cdk as cdk
from aws_cdk.assertions import Template
from cdk_nag import AwsSolutionsChecks
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
    try:
        app.synth()
    except RuntimeError as error:
        if "ValidationFailed" not in str(error):
            raise
    report_path = outdir / "validation-report.json"
    if not report_path.exists():
        return []
    report = json.loads(report_path.read_text())
    return [
        (violation["ruleName"], construct["constructPath"])
        for plugin in report["pluginReports"]
        for violation in plugin["violations"]
        for construct in violation["violatingConstructs"]
    ]
