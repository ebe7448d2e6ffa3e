"""The AWS clients of a function: created on first use, kept for the container's life, injectable.

Logic modules take clients as arguments; handlers get them from `services()`, a cached factory.
Tests either pass their own clients to the logic or clear the cache (`services.cache_clear()`); a
sandbox whose clock is moved sets `services().clock` and `services().sleep` to it.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import boto3
from botocore.config import Config

from lambdas.collector.collect.report_session import ReportSession
from lambdas.collector.config import ReporterSettings

# S3, SNS and STS: standard mode, set explicitly (botocore's default is `legacy`).
STANDARD_RETRIES = Config(retries={"mode": "standard", "total_max_attempts": 8})


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class Services:
    session: boto3.Session = field(default_factory=boto3.Session)
    # What "now" is: when a report job becomes due for a poll (a sandbox with a moved clock sets its own).
    clock: Callable[[], datetime] = utc_now
    sleep: Callable[[float], None] = time.sleep  # moves `clock` on: a sandbox with its own clock sets both
    _clients: dict[str, Any] = field(default_factory=dict)
    _reporters: dict[tuple[str, str | None, int], ReportSession] = field(default_factory=dict)

    def client(self, service: str) -> Any:
        if service not in self._clients:
            self._clients[service] = self.session.client(service, config=STANDARD_RETRIES)  # type: ignore[call-overload]
        return self._clients[service]

    @property
    def s3(self) -> Any:
        return self.client("s3")

    @property
    def sns(self) -> Any:
        return self.client("sns")

    def reporter(self, settings: ReporterSettings) -> ReportSession:
        key = (settings.report_role_arn, settings.report_external_id, settings.report_session_seconds)
        if key not in self._reporters:
            self._reporters[key] = ReportSession(
                sts=self.client("sts"),
                role_arn=settings.report_role_arn,
                external_id=settings.report_external_id,
                duration_seconds=settings.report_session_seconds,
            )
        return self._reporters[key]


@functools.cache
def services() -> Services:
    return Services()
