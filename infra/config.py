"""The deployment's configuration: `cdk.json` context (key `collector`), validated before synth.

Every key has a documented default (README, "Configuration"); an unknown or invalid key fails the
synth with its name. Nothing here calls AWS.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError, model_validator

from lambdas.collector.config import ROLE_ARN
from lambdas.collector.models import POLICY_ID, TARGET_ID, Scope

Email = Annotated[str, StringConstraints(pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")]


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
    unused_after_days: int = Field(default=90, ge=1, le=400)
    allowlist: list[str] = []
    allowlist_by_target: dict[str, list[str]] = {}
    always_send_summary: bool = False
    alert_emails: list[Email] = []
    # Reporter role: created here (same account), or an existing role in the management account.
    reporter_role_arn: Annotated[str, StringConstraints(pattern=ROLE_ARN)] | None = None
    external_id: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_+=,.@:/-]{2,1224}$")] | None = None
    data_prefix: Annotated[str, StringConstraints(pattern=r"^([A-Za-z0-9_.=-]+/)*$")] = ""
    retention_days: int | None = Field(default=None, ge=1)
    scratch_days: int = Field(default=7, ge=1)
    log_retention_days: int = Field(default=30, ge=1)
    batch_size: int = Field(default=100, ge=1, le=250)
    max_concurrency: int = Field(default=10, ge=1, le=1000)
    tolerated_failures: int = Field(default=0, ge=0)
    poll_max_attempts: int = Field(default=40, ge=1, le=500)
    database_name: str = Field(default="org_access_report", pattern=r"^[a-z0-9_]{1,255}$")
    bytes_scanned_cutoff: int = Field(default=10 * 1024**3, ge=10 * 1024**2)

    @model_validator(mode="after")
    def _external_id_goes_with_a_role(self) -> CollectorConfig:
        if self.external_id and not self.reporter_role_arn:
            raise ValueError("external_id is only used with reporter_role_arn (the cross-account reporter role)")
        return self

    @property
    def max_rounds(self) -> int:
        """The Choice state's bound: poll's own limit, plus fetch rounds and slack."""
        return 2 * self.poll_max_attempts + 50


def load_config(context: Any) -> CollectorConfig:
    try:
        return CollectorConfig.model_validate(context or {})
    except ValidationError as error:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or '?'}: {e['msg']}" for e in error.errors())
        raise ConfigError(f"cdk.json context 'collector': {problems}") from None
