"""The AWS clients of a function: created on first use, kept for the container's life, injectable.

Logic modules take clients as arguments; handlers get them from `services()`, a cached factory.
Tests either pass their own clients to the logic or clear the cache (`services.cache_clear()`); a
an emulator whose clock is moved sets `services().clock` and `services().sleep` to it.
The client types come from the boto3 stubs, a development dependency only: they are imported for
the type checker, never at run time.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import boto3
from botocore.config import Config

from lambdas.collector.collect.limits import DynamoLimitStore
from lambdas.collector.collect.report_session import ReportSession
from lambdas.collector.config import ReporterSettings
from lambdas.collector.store.access import name_denials

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_sns import SNSClient
    from mypy_boto3_stepfunctions import SFNClient
    from mypy_boto3_sts import STSClient

# S3, SNS, STS and Step Functions: standard mode, set explicitly (botocore's default is `legacy`).
STANDARD_RETRIES = Config(retries={"mode": "standard", "total_max_attempts": 8})


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class Services:
    session: boto3.Session = field(default_factory=boto3.Session)
    # What "now" is: when a report job becomes due for a poll (an emulator with a moved clock sets its own).
    clock: Callable[[], datetime] = utc_now
    sleep: Callable[[float], None] = time.sleep  # moves `clock` on: an emulator with its own clock sets both
    _reporters: dict[tuple[str, str | None, int], ReportSession] = field(default_factory=dict)

    @functools.cached_property
    def s3(self) -> S3Client:
        """S3, with its refusals named (`StorageAccessError`: the operation, the object, what to check)."""
        return name_denials(self.session.client("s3", config=STANDARD_RETRIES))

    @functools.cached_property
    def sns(self) -> SNSClient:
        return self.session.client("sns", config=STANDARD_RETRIES)

    @functools.cached_property
    def stepfunctions(self) -> SFNClient:
        """The collector's own account (not the reporter role): discover lists its state machine's runs."""
        return self.session.client("stepfunctions", config=STANDARD_RETRIES)

    @functools.cached_property
    def dynamodb(self) -> DynamoDBClient:
        """The collector's own account: the limits table."""
        return self.session.client("dynamodb", config=STANDARD_RETRIES)

    def limits(self, table: str, organization_id: str) -> DynamoLimitStore:
        """The limits IAM has shown for an organization's management account, shared by every lane."""
        return DynamoLimitStore(self.dynamodb, table, organization_id)

    @functools.cached_property
    def sts(self) -> STSClient:
        return self.session.client("sts", config=STANDARD_RETRIES)

    def reporter(self, settings: ReporterSettings) -> ReportSession:
        key = (settings.report_role_arn, settings.external_id, settings.report_session_seconds)
        if key not in self._reporters:
            self._reporters[key] = ReportSession(
                sts=self.sts,
                role_arn=settings.report_role_arn,
                external_id=settings.external_id,
                duration_seconds=settings.report_session_seconds,
            )
        return self._reporters[key]


@functools.cache
def services() -> Services:
    return Services()
