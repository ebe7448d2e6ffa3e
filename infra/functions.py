"""The collector's Lambda functions: one factory, one shared code asset, a spec per function."""

from __future__ import annotations

from dataclasses import dataclass, field

import aws_cdk as cdk
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from infra.bundling import lambda_code
from lambdas.collector.observability import NAMESPACE, SERVICE


@dataclass(frozen=True)
class FunctionSpec:
    name: str  # also the handler module: lambdas.handlers.<name>.handler
    description: str
    memory_mb: int
    timeout: cdk.Duration
    environment: dict[str, str] = field(default_factory=dict)


class Functions(Construct):
    """Python 3.13 on arm64, JSON logs into a log group with retention, X-Ray, Powertools settings."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        specs: list[FunctionSpec],
        environment: dict[str, str],
        log_retention: logs.RetentionDays,
        code: lambda_.Code | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        shared_code = code or lambda_code()
        self.by_name: dict[str, lambda_.Function] = {}
        for spec in specs:
            log_group = logs.LogGroup(
                self, f"{spec.name}-logs", retention=log_retention, removal_policy=cdk.RemovalPolicy.DESTROY
            )
            self.by_name[spec.name] = lambda_.Function(
                self,
                spec.name,
                description=spec.description,
                runtime=lambda_.Runtime.PYTHON_3_13,
                architecture=lambda_.Architecture.ARM_64,
                code=shared_code,
                handler=f"lambdas.handlers.{spec.name}.handler",
                memory_size=spec.memory_mb,
                timeout=spec.timeout,
                tracing=lambda_.Tracing.ACTIVE,
                logging_format=lambda_.LoggingFormat.JSON,
                log_group=log_group,
                environment={
                    "POWERTOOLS_SERVICE_NAME": SERVICE,
                    "POWERTOOLS_METRICS_NAMESPACE": NAMESPACE,
                    "POWERTOOLS_LOG_LEVEL": "INFO",
                    **environment,
                    **spec.environment,
                },
            )

    def __getitem__(self, name: str) -> lambda_.Function:
        return self.by_name[name]

    @property
    def all(self) -> list[lambda_.Function]:
        return list(self.by_name.values())
