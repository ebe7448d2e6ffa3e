"""Session naming and the reporter session's reuse and renewal."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, cast

import pytest

from lambdas.collector.collect.report_session import SESSION_NAME_MAX, ReportSession, ThrottleCounter, session_name

if TYPE_CHECKING:
    from mypy_boto3_sts import STSClient

STS_NAME = re.compile(r"^[\w+=,.@-]{2,64}$", re.ASCII)


@pytest.mark.parametrize(
    "run_id",
    [
        "run-1",
        "2a1f0c3e-6b0d-4f5e-9a51-1f2d3c4b5a69",
        "manual rerun: Nov 24 (after fix)",
        "x" * 80,
        "ünïcödé-run",
    ],
)
def test_session_names_are_valid_for_sts_and_stable(run_id: str) -> None:
    name = session_name(run_id)
    assert STS_NAME.match(name), name
    assert len(name) <= SESSION_NAME_MAX
    assert session_name(run_id) == name  # every stage of the run derives the same name


def test_a_short_clean_run_id_is_kept_readable() -> None:
    assert (
        session_name("2a1f0c3e-6b0d-4f5e-9a51-1f2d3c4b5a69") == "org-access-report-2a1f0c3e-6b0d-4f5e-9a51-1f2d3c4b5a69"
    )


def test_run_ids_that_differ_only_beyond_the_limit_or_in_replaced_characters_get_distinct_names() -> None:
    assert session_name("a" * 70 + "1") != session_name("a" * 70 + "2")
    assert session_name("run:1") != session_name("run;1")


@dataclass
class FakeSts:
    lifetime: timedelta
    now: datetime
    calls: list[dict[str, Any]] = field(default_factory=list)

    def assume_role(self, **request: Any) -> dict[str, Any]:
        self.calls.append(request)
        n = len(self.calls)
        return {
            "Credentials": {
                "AccessKeyId": f"ASIA{n:016d}",
                "SecretAccessKey": "secret",
                "SessionToken": "token",
                "Expiration": self.now + self.lifetime,
            }
        }


def test_the_role_is_assumed_once_per_run_with_the_external_id_and_renewed_before_expiry() -> None:
    now = datetime(2026, 11, 24, tzinfo=UTC)
    sts = FakeSts(lifetime=timedelta(hours=1), now=now)
    clock = [now]
    session = ReportSession(  # the fake answers the one STS call a session makes: assume_role
        sts=cast("STSClient", sts),
        role_arn="arn:aws:iam::123456789012:role/Reader",
        external_id="ext-42",
        duration_seconds=3600,
        clock=lambda: clock[0],
    )
    iam = session.iam("run-1")
    assert session.iam("run-1") is iam
    assert session.organizations("run-1") is not None
    assert len(sts.calls) == 1
    assert sts.calls[0] == {
        "RoleArn": "arn:aws:iam::123456789012:role/Reader",
        "RoleSessionName": "org-access-report-run-1",
        "DurationSeconds": 3600,
        "ExternalId": "ext-42",
    }
    clock[0] = now + timedelta(minutes=50)  # 10 minutes left: less than an invocation may last
    renewed = session.iam("run-1")
    assert renewed is not iam
    assert [call["RoleSessionName"] for call in sts.calls] == ["org-access-report-run-1"] * 2


def test_the_throttle_counter_counts_throttling_answers_and_never_decides_retries() -> None:
    counter = ThrottleCounter()
    answers = [
        counter(response=(None, {"Error": {"Code": "Throttling"}})),  # type: ignore[func-returns-value]
        counter(response=(None, {"Error": {"Code": "NoSuchEntity"}})),  # type: ignore[func-returns-value]
        counter(response=None),  # type: ignore[func-returns-value]
        counter(response=(None, {"JobStatus": "COMPLETED"})),  # type: ignore[func-returns-value]
    ]
    assert answers == [None] * 4  # botocore takes the first non-None answer as the retry decision
    assert counter.count == 1
