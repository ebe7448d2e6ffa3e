"""The deployment's configuration: `cdk.json` context (key `collector`), validated before synth.

Every key has a documented default (README, "Configuration"); an unknown or invalid key fails the
synth with its name. Nothing here calls AWS.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, TypeVar

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    field_validator,
    model_validator,
)

from lambdas.collector.config import ROLE_ARN
from lambdas.collector.models import POLICY_ID, TARGET_ID, Scope

ExternalId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_+=,.@:/-]{2,1224}$")]  # STS's own rule
Email = Annotated[str, StringConstraints(pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")]


# CloudWatch Logs' allowed retention periods, in days, with the name CDK's RetentionDays gives each.
LOG_RETENTION: dict[int, str] = {
    1: "ONE_DAY",
    3: "THREE_DAYS",
    5: "FIVE_DAYS",
    7: "ONE_WEEK",
    14: "TWO_WEEKS",
    30: "ONE_MONTH",
    60: "TWO_MONTHS",
    90: "THREE_MONTHS",
    120: "FOUR_MONTHS",
    150: "FIVE_MONTHS",
    180: "SIX_MONTHS",
    365: "ONE_YEAR",
    400: "THIRTEEN_MONTHS",
    545: "EIGHTEEN_MONTHS",
    731: "TWO_YEARS",
    1096: "THREE_YEARS",
    1827: "FIVE_YEARS",
    2192: "SIX_YEARS",
    2557: "SEVEN_YEARS",
    2922: "EIGHT_YEARS",
    3288: "NINE_YEARS",
    3653: "TEN_YEARS",
}


class ConfigError(ValueError):
    """The `collector` context in cdk.json is invalid; the message names the key."""


class CollectorConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    schedule: str = Field(default="cron(0 3 * * ? *)", pattern=r"^(cron|rate)\(.+\)$")
    time_zone: str = "UTC"
    scope: Scope = Scope.ALL
    include_ids: list[Annotated[str, StringConstraints(pattern=TARGET_ID)]] = []
    exclude_ids: list[Annotated[str, StringConstraints(pattern=TARGET_ID)]] = []
    policy_ids: list[Annotated[str, StringConstraints(pattern=POLICY_ID)]] = []
    include_management_account: bool = False
    unused_after_days: int = Field(default=90, ge=1, le=400)
    allowlist: list[str] = []
    allowlist_by_target: dict[str, list[str]] = {}
    always_send_summary: bool = False
    alert_min_unused: int = Field(default=1, ge=1)
    alert_max_targets: int = Field(default=25, ge=1, le=500)
    alert_top_services: int = Field(default=10, ge=1, le=100)
    alert_emails: list[Email] = []
    # Reporter role: created here (same account), or an existing role in the management account.
    reporter_role_arn: Annotated[str, StringConstraints(pattern=ROLE_ARN)] | None = None
    external_id: ExternalId | None = None
    data_prefix: Annotated[str, StringConstraints(pattern=r"^([A-Za-z0-9_.=-]+/)*$")] = ""
    retention_days: int | None = Field(default=None, ge=1)
    scratch_days: int = Field(default=7, ge=1)
    log_retention_days: int = 30
    batch_size: int = Field(default=100, ge=1, le=250)
    max_concurrency: int = Field(default=2, ge=1, le=1000)
    iam_calls_per_second: float = Field(default=20, gt=0, le=1000)
    iam_max_jobs_in_progress: int = Field(default=50, ge=1, le=10_000)
    tolerated_failures: int = Field(default=0, ge=0)
    poll_initial_wait_seconds: int = Field(default=3, ge=0, le=3600)
    poll_max_wait_seconds: int = Field(default=60, ge=0, le=3600)
    poll_max_attempts: int = Field(default=40, ge=1, le=500)
    database_name: str = Field(default="org_access_report", pattern=r"^[a-z0-9_]{1,255}$")
    bytes_scanned_cutoff: int = Field(default=10 * 1024**3, ge=10 * 1024**2)

    @model_validator(mode="after")
    def _external_id_goes_with_a_role(self) -> CollectorConfig:
        if self.external_id and not self.reporter_role_arn:
            raise ValueError("external_id is only used with reporter_role_arn (the cross-account reporter role)")
        return self

    @field_validator("log_retention_days")
    @classmethod
    def _a_cloudwatch_retention(cls, days: int) -> int:
        if days not in LOG_RETENTION:
            raise ValueError(f"must be one of CloudWatch Logs' retention periods: {sorted(LOG_RETENTION)}")
        return days

    @property
    def max_rounds(self) -> int:
        """The Choice state's bound: poll's own limit, plus fetch rounds and slack."""
        return 2 * self.poll_max_attempts + 50


class ReporterStackConfig(BaseModel):
    """Context key `reporter_stack`: the reporter role alone, for the management account."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    collector_account: Annotated[str, StringConstraints(pattern=r"^\d{12}$")]
    external_id: ExternalId


M = TypeVar("M", bound=BaseModel)


def load_config(context: Any) -> CollectorConfig:
    """Context key `collector` as cdk.json holds it, or as JSON text (`cdk synth -c collector='{...}'`)."""
    return _load(CollectorConfig, "collector", context or {})


def load_reporter_stack(context: Any) -> ReporterStackConfig | None:
    """Context key `reporter_stack`, if given (`-c reporter_stack='{"collector_account": ..., ...}'`)."""
    return _load(ReporterStackConfig, "reporter_stack", context) if context else None


def _load(model: type[M], key: str, context: Any) -> M:
    try:
        return model.model_validate(json.loads(context) if isinstance(context, str) else context)
    except json.JSONDecodeError as error:
        raise ConfigError(f"cdk.json context '{key}': not JSON: {error}") from None
    except ValidationError as error:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or '?'}: {e['msg']}" for e in error.errors())
        raise ConfigError(f"cdk.json context '{key}': {problems}") from None
