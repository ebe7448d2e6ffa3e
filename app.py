"""CDK entry point: the collector's stack (and, for the cross-account mode, the reporter role stack).

`cdk.json` context key `collector` configures the collector (see README, "Configuration");
`reporter_stack` (`{"collector_account": "...", "external_id": "..."}`) adds `ReporterRoleStack`
for the management account. Synth is pure: no AWS calls, no git.
"""

import aws_cdk as cdk
from cdk_nag import AwsSolutionsChecks

from infra.config import load_config, load_reporter_stack
from infra.reporter_role import ReporterRoleStack
from infra.stack import CollectorStack
from lambdas.collector.names import COLLECTOR_STACK, REPORTER_STACK


def build(app: cdk.App) -> cdk.App:
    config = load_config(app.node.try_get_context("collector"))
    CollectorStack(app, COLLECTOR_STACK, config=config, description="IAM Organizations access report collector")
    reporter = load_reporter_stack(app.node.try_get_context("reporter_stack"))
    if reporter:
        ReporterRoleStack(
            app,
            REPORTER_STACK,
            collector_account=reporter.collector_account,
            external_id=reporter.external_id,
            description="Reporter role for the IAM Organizations access report collector (management account)",
        )
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    return app


def main() -> None:
    build(cdk.App()).synth()


if __name__ == "__main__":
    main()
