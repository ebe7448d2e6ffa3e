"""End to end: the state machine the CDK app synthesizes, run by moto's interpreter on the emulator."""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pytest
from moto import mock_aws

import iam_report_emulator
from harness.clients import client
from harness.collector_demo import received_alerts, snapshots
from harness.executions import Execution, start_and_follow
from harness.runner import MOTO_CONFIG, Deployment, InProcessLambdas, stand_up, synthesize
from iam_report_emulator import store_for_account
from iam_report_emulator.seed import OrganizationSpec
from lambdas.collector.names import Layout
from lambdas.collector.services import services
from lambdas.collector.store.schema import DATASETS, Kind
from lambdas.collector.store.storage import get_table, list_keys, put_table
from tests.conftest import REPORTER_ROLE

# Only inputs the state machine already reads make the run fast: a first wait of one second (then the
# learned latency), unpaced calls.
FAST: dict[str, Any] = {"poll_initial_wait_seconds": 1, "poll_max_wait_seconds": 1, "iam_calls_per_second": 1000}


@pytest.fixture(scope="session")
def template() -> dict[str, Any]:
    """The collector stack's template, synthesized once per test process by the real CDK app."""
    return synthesize()


@pytest.fixture
def aws() -> Iterator[None]:
    """The emulator in-process, with moto's Step Functions interpreter executing state machines."""
    iam_report_emulator.install()
    services.cache_clear()
    with mock_aws(config=MOTO_CONFIG):  # type: ignore[call-overload]  # moto types the config as a TypedDict
        yield
    services.cache_clear()


@dataclass
class Collector:
    deployment: Deployment
    lambdas: InProcessLambdas
    runs: int = 0

    def run(self, execution_input: dict[str, Any] | None = None) -> Execution:
        self.runs += 1
        return start_and_follow(
            self.deployment,
            self.lambdas,
            io.StringIO(),
            name=f"e2e-run-{self.runs}",
            execution_input=execution_input or FAST,
            log=io.StringIO(),
        )

    def tables(self) -> dict[str, pa.Table]:
        return snapshots(self.deployment)[0]

    def alerts(self) -> list[dict[str, Any]]:
        return received_alerts(self.deployment)


# IAM's observed model (one job at a time per account, observed latencies) at a fiftieth of real time:
# a report takes 0.02-0.23 s. Wait states really sleep in moto's interpreter, so time cannot be virtual here.
TIME_SCALE = 0.02


@pytest.fixture
def collector(demo_org: OrganizationSpec, template: dict[str, Any]) -> Collector:
    store_for_account(demo_org.management_account_id).configure(job_seconds=None, time_scale=TIME_SCALE)
    deployment = stand_up(template, f"arn:aws:iam::{demo_org.management_account_id}:role/{REPORTER_ROLE}")
    return Collector(deployment, InProcessLambdas(deployment.functions))


Runner = Callable[..., Execution]


def move_back_one_day(collector: Collector, dt: str) -> str:
    """The day's snapshot as if its run had started one day earlier; returns that day."""
    s3, deployment = client("s3"), collector.deployment
    layout, earlier = Layout(deployment.data_prefix), (date.fromisoformat(dt) - timedelta(days=1)).isoformat()
    for dataset in DATASETS:
        for key in list_keys(s3, deployment.bucket, layout.partition(dataset, dt)):
            table = get_table(s3, deployment.bucket, key, dataset)
            for name in (column.name for column in dataset.columns if column.kind is Kind.TIMESTAMP):
                index = table.schema.get_field_index(name)
                moved = pc.subtract(table[name], pa.scalar(timedelta(days=1), pa.duration("us")))
                table = table.set_column(index, table.schema.field(index), moved)
            target = key.replace(layout.partition(dataset, dt), layout.partition(dataset, earlier))
            put_table(s3, deployment.bucket, target, table)
            s3.delete_object(Bucket=deployment.bucket, Key=key)
    return earlier
