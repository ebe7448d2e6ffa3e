"""The collector's environment for integration tests: data bucket, reporter role, Powertools."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from harness.clients import client
from iam_report_emulator import store_for_account
from iam_report_emulator.seed import OrganizationSpec
from lambdas.collector.services import services
from tests.collector_run import BUCKET, LIMITS_TABLE, create_limits_table
from tests.conftest import REPORTER_ROLE


@pytest.fixture
def s3(demo_org: OrganizationSpec, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """The data bucket, with the functions' environment set as the CDK app sets it."""
    env = {
        "DATA_BUCKET": BUCKET,
        "REPORT_ROLE_ARN": f"arn:aws:iam::{demo_org.management_account_id}:role/{REPORTER_ROLE}",
        "LIMITS_TABLE": LIMITS_TABLE,
        "IAM_CALLS_PER_SECOND": "1000",  # pacing has its own tests; here it would only slow them down
        "POWERTOOLS_SERVICE_NAME": "org-access-report",
        "POWERTOOLS_METRICS_NAMESPACE": "OrgAccessReport",
        "POWERTOOLS_TRACE_DISABLED": "true",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    s3 = client("s3")
    s3.create_bucket(Bucket=BUCKET)
    create_limits_table()
    services.cache_clear()  # clients cached by an earlier test belong to an earlier mock
    # The emulator's clock is the time: tests move it (on_wait) instead of sleeping. So the collector
    # meets IAM's observed model at its real latencies (one job at a time, reports of 5-12 s) at no cost.
    store = store_for_account(demo_org.management_account_id)
    store.configure(job_seconds=None, time_scale=1.0)
    services().clock, services().sleep = store.clock.now, store.clock.advance
    yield s3
    services.cache_clear()
