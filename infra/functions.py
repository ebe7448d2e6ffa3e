"""The collector's Lambda functions: one factory, one shared code asset, a spec per function."""

from __future__ import annotations

from dataclasses import dataclass, field

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from infra.bundling import PYTHON_VERSION, RUNTIME, lambda_code
from infra.log_groups import encrypted_log_group
from infra.nag import acknowledge, acknowledge_guard
from lambdas.collector.names import NAMESPACE, SERVICE

# CT.LAMBDA.PR.3, and why each function is left outside a VPC.
_OUTSIDE_A_VPC = {
    "lambda_inside_vpc_check": "no VPC: the function calls only AWS APIs (IAM, Organizations, STS, S3, "
    "DynamoDB, SNS, Step Functions, X-Ray), no private resource; a VPC would need a NAT gateway or an interface "
    "endpoint per service and narrow nothing: what it may call is its role's to limit"
}


@dataclass(frozen=True)
class FunctionSpec:
    name: str  # also the handler module: lambdas.handlers.<name>.handler
    description: str
    memory_mb: int
    timeout: cdk.Duration
    environment: dict[str, str] = field(default_factory=dict)


class Functions(Construct):
    """Python 3.13 on arm64, JSON logs into an encrypted log group with retention, X-Ray, Powertools settings.

    Each function has its own role that may write only to its own log group (no AWS managed
    policy); callers add the rest with grants.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        specs: list[FunctionSpec],
        log_retention: logs.RetentionDays,
        code: lambda_.Code | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        shared_code = code or lambda_code()
        self.by_name: dict[str, lambda_.Function] = {}
        self.roles: dict[str, iam.Role] = {}
        for spec in specs:
            log_group = encrypted_log_group(
                self, f"{spec.name}-logs", retention=log_retention, removal_policy=cdk.RemovalPolicy.DESTROY
            )
            role = iam.Role(
                self,
                f"{spec.name}-role",
                assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
                description=f"Execution role of the collector's {spec.name} function",
            )
            log_group.grant_write(role)
            self.roles[spec.name] = role
            acknowledge(
                role,
                {
                    "IAM5[Resource::*]": "X-Ray tracing: xray:PutTraceSegments and xray:PutTelemetryRecords have "
                    "no resource-level permissions; every other statement names its resource"
                },
            )
            self.by_name[spec.name] = lambda_.Function(
                self,
                spec.name,
                role=role,
                description=spec.description,
                runtime=RUNTIME,
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
                    **spec.environment,
                },
            )
            acknowledge_guard(self.by_name[spec.name], _OUTSIDE_A_VPC)

        acknowledge(
            self,
            {
                "L1": f"Python {PYTHON_VERSION} is the runtime the code and its bundled wheels (cp313, "
                "manylinux aarch64) are built and tested for; a newer runtime is a deliberate upgrade of "
                "bundling.PYTHON_VERSION and this construct together"
            },
        )

    def __getitem__(self, name: str) -> lambda_.Function:
        return self.by_name[name]

    @property
    def all(self) -> list[lambda_.Function]:
        return list(self.by_name.values())
