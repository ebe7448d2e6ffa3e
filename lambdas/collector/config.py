"""Each function's configuration: a pydantic model of its environment variables.

A missing or invalid setting fails at the start of the invocation, before any side effect, with
`ConfigurationError` naming the variable. There are no hidden defaults for anything that locates
data or grants access (bucket, role, topic); tunables have documented defaults.
"""

from __future__ import annotations

import json
import re
from typing import Annotated, Any, TypeVar

from pydantic import Field, StringConstraints, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from lambdas.collector.errors import ConfigurationError
from lambdas.collector.models import POLICY_ID, TARGET_ID, Polling, Scope
from lambdas.collector.store.storage import Layout

ROLE_ARN = r"^arn:aws[a-z-]*:iam::\d{12}:role/[A-Za-z0-9_+=,.@/-]{1,512}$"
TOPIC_ARN = r"^arn:aws[a-z-]*:sns:[a-z0-9-]+:\d{12}:[A-Za-z0-9_-]{1,256}$"
BUCKET = r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$"
NAMESPACE = r"^[a-z0-9-]{1,64}$"

CommaList = Annotated[list[str], NoDecode]


def _split(value: Any) -> Any:
    if isinstance(value, str):
        return [item.strip() for item in value.split(",") if item.strip()]
    return value


class _Settings(BaseSettings):
    model_config = SettingsConfigDict(case_sensitive=False, extra="ignore", frozen=True)


class DataSettings(_Settings):
    """Where the data lives: every function that reads or writes S3."""

    data_bucket: Annotated[str, StringConstraints(pattern=BUCKET)]
    data_prefix: Annotated[str, StringConstraints(pattern=r"^([A-Za-z0-9_.=-]+/)*$")] = ""

    @property
    def layout(self) -> Layout:
        return Layout(self.data_prefix)


class ReporterSettings(DataSettings):
    """The reporter role every IAM report and Organizations call goes through."""

    report_role_arn: Annotated[str, StringConstraints(pattern=ROLE_ARN)]
    report_external_id: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_+=,.@:/-]{2,1224}$")] | None = None
    report_session_seconds: int = Field(default=3600, ge=900, le=43200)
    # Generate, poll and fetch stop starting IAM calls when less than this remains of the
    # invocation, and hand the rest of the batch back to the state machine.
    safety_margin_seconds: int = Field(default=30, ge=1, le=600)


class DiscoverSettings(ReporterSettings):
    scope: Scope = Scope.ALL
    include_ids: CommaList = []
    exclude_ids: CommaList = []
    policy_ids: CommaList = []
    include_management_account: bool = False
    batch_size: int = Field(default=100, ge=1, le=250)
    # The account's budget for IAM's report calls, shared by the batches that run at once.
    iam_calls_per_second: float = Field(default=20, gt=0, le=1000)
    max_concurrency: int = Field(default=2, ge=1, le=1000)
    # IAM's cap on report jobs in progress per account (not documented; refusals are retried)
    iam_max_jobs_in_progress: int = Field(default=50, ge=1, le=10_000)
    poll_initial_wait_seconds: int = Field(default=3, ge=0, le=3600)
    poll_max_wait_seconds: int = Field(default=60, ge=0, le=3600)
    poll_max_attempts: int = Field(default=40, ge=1, le=500)

    _split_lists = field_validator("include_ids", "exclude_ids", "policy_ids", mode="before")(_split)

    @field_validator("include_ids", "exclude_ids")
    @classmethod
    def _target_ids(cls, ids: list[str]) -> list[str]:
        return _matching(ids, TARGET_ID, "a root (r-…), OU (ou-…) or account (12 digits) id")

    @field_validator("policy_ids")
    @classmethod
    def _policy_ids(cls, ids: list[str]) -> list[str]:
        return _matching(ids, POLICY_ID, "an SCP id (p-…)")

    @property
    def polling(self) -> Polling:
        return Polling(
            initial_wait_seconds=self.poll_initial_wait_seconds,
            max_wait_seconds=self.poll_max_wait_seconds,
            max_attempts=self.poll_max_attempts,
        )


class FinalizeSettings(DataSettings):
    rows_per_file: int = Field(default=4_000_000, ge=1_000, le=50_000_000)


class AlertSettings(DataSettings):
    alert_topic_arn: Annotated[str, StringConstraints(pattern=TOPIC_ARN)]
    unused_after_days: int = Field(default=90, ge=1, le=400)
    allowlist: CommaList = []
    allowlist_by_target: Annotated[dict[str, list[str]], NoDecode] = {}
    always_send_summary: bool = False
    alert_min_unused: int = Field(default=1, ge=1)
    alert_max_targets: int = Field(default=25, ge=1, le=500)
    alert_top_services: int = Field(default=10, ge=1, le=100)

    _split_allowlist = field_validator("allowlist", mode="before")(_split)

    @field_validator("allowlist_by_target", mode="before")
    @classmethod
    def _parse_by_target(cls, value: Any) -> Any:
        if isinstance(value, str):
            try:
                return json.loads(value) if value.strip() else {}
            except json.JSONDecodeError as error:
                raise ValueError(f'must be JSON like {{"ou-…": ["gamelift"]}}: {error}') from error
        return value

    @field_validator("allowlist")
    @classmethod
    def _namespaces(cls, namespaces: list[str]) -> list[str]:
        return _matching(namespaces, NAMESPACE, "an IAM service prefix")

    @field_validator("allowlist_by_target")
    @classmethod
    def _namespaces_by_target(cls, by_target: dict[str, list[str]]) -> dict[str, list[str]]:
        for target_id, namespaces in by_target.items():
            _matching([target_id], TARGET_ID, "a root, OU or account id")
            _matching(namespaces, NAMESPACE, "an IAM service prefix")
        return by_target


def _matching(values: list[str], pattern: str, what: str) -> list[str]:
    wrong = [value for value in values if not re.match(pattern, value)]
    if wrong:
        raise ValueError(f"{', '.join(repr(v) for v in wrong)} is not {what}")
    return values


S = TypeVar("S", bound=_Settings)


def load(settings: type[S]) -> S:
    """Read `settings` from the environment; errors name the variables."""
    try:
        return settings()
    except ValidationError as error:
        problems = "; ".join(f"{str(e['loc'][0]).upper() if e['loc'] else '?'}: {e['msg']}" for e in error.errors())
        raise ConfigurationError(f"{settings.__name__}: {problems}") from None
