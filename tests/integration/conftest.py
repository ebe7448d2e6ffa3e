"""The collector's environment for integration tests: data bucket, reporter role, Powertools."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from lambdas.collector.services import services
from sandbox.clients import client
from sandbox.seed import OrganizationSpec
from tests.collector_run import BUCKET
from tests.conftest import REPORTER_ROLE


@pytest.fixture
def s3(demo_org: OrganizationSpec, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """The data bucket, with the functions' environment set as the CDK app sets it."""
    env = {
        "DATA_BUCKET": BUCKET,
        "REPORT_ROLE_ARN": f"arn:aws:iam::{demo_org.management_account_id}:role/{REPORTER_ROLE}",
        "POWERTOOLS_SERVICE_NAME": "org-access-report",
        "POWERTOOLS_METRICS_NAMESPACE": "OrgAccessReport",
        "POWERTOOLS_TRACE_DISABLED": "true",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    s3 = client("s3")
    s3.create_bucket(Bucket=BUCKET)
    services.cache_clear()  # clients cached by an earlier test belong to an earlier mock
    yield s3
    services.cache_clear()
