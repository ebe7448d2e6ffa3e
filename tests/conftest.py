"""Shared fixtures: an isolated AWS environment, the emulator under mock_aws, seeded organizations."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from botocore.config import Config
from moto import mock_aws

import iam_report_emulator
from harness.clients import client, role_session_client
from iam_report_emulator.access_reports import AccessReportStore
from iam_report_emulator.presets import apply_preset
from iam_report_emulator.seed import OrganizationSpec

REPORTER_ROLE = "OrgAccessReportReader"
NO_RETRIES = Config(retries={"mode": "standard", "total_max_attempts": 1})
RAW = Config(retries={"mode": "standard", "total_max_attempts": 1}, parameter_validation=False)


@pytest.fixture(autouse=True)
def _aws_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Never reach a real account: fake credentials, a fixed region, no endpoint override."""
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "MOTO_ACCOUNT_ID"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")


@pytest.fixture
def aws() -> Iterator[None]:
    iam_report_emulator.install()
    with mock_aws():
        yield


@pytest.fixture
def demo_org(aws: None) -> OrganizationSpec:
    spec = apply_preset("demo", seed=7)
    iam_report_emulator.store_for_account(spec.management_account_id).configure(job_seconds=0)
    return spec


@pytest.fixture
def store(demo_org: OrganizationSpec) -> AccessReportStore:
    return iam_report_emulator.store_for_account(demo_org.management_account_id)


ReporterFactory = Callable[..., Any]


@pytest.fixture
def reporter(demo_org: OrganizationSpec) -> ReporterFactory:
    """IAM clients acting as a session of the reporter role in the management account."""

    def make(session: str = "run-1", config: Config | None = None) -> Any:
        role_arn = f"arn:aws:iam::{demo_org.management_account_id}:role/{REPORTER_ROLE}"
        return role_session_client("iam", role_arn, session, config=config)

    return make


@pytest.fixture
def iam(aws: None) -> Any:
    return client("iam", config=NO_RETRIES)
