"""Fault case 2 through the deployed definition: S3 answering the collector's writes with 503 SlowDown now and
then (botocore's standard retries absorb it: nothing lost, nothing twice), and with 403 AccessDenied (the run
fails cleanly: the earlier days as they were, nothing under a dataset prefix, one "run failed" message whose
`StorageAccessError` names the operation, the object and the grants to check).

Each test first runs a day and moves it back one day (`move_back_one_day`), then runs the faulty day. The
faults answer the functions' own S3 client (`services().s3`, the functions run in-process) in place of moto:
`harness.faults`.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from harness.clients import client
from harness.faults import ACCESS_DENIED, S3_WRITES, SLOW_DOWN, Bursts, Fault, FaultInjector, under
from iam_report_emulator.seed import OrganizationSpec
from lambdas.collector.names import Layout
from lambdas.collector.services import services
from lambdas.collector.store.schema import ACCESS_DETAILS, DATASETS, REPORT_JOBS
from tests.e2e.conftest import Collector, move_back_one_day
from tests.helpers import organization_targets

FAILED_SUBJECT = "Org access report collector: run failed"


@pytest.fixture
def faults(aws: None) -> Iterator[FaultInjector]:
    """Faults for the functions' S3 client (the one `services()` keeps for every in-process function)."""
    with FaultInjector(services().s3) as injector:
        yield injector


def objects(collector: Collector, prefix: str = "") -> dict[str, str]:
    """Every object under `prefix` of the data bucket, with its ETag (what changes when it is rewritten)."""
    s3, bucket = client("s3"), collector.deployment.bucket
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    return {item["Key"]: item["ETag"] for page in pages for item in page.get("Contents", ())}


def datasets(collector: Collector) -> dict[str, str]:
    """The objects under every dataset prefix: what queries read."""
    layout = Layout(collector.deployment.data_prefix)
    return {key: tag for dataset in DATASETS for key, tag in objects(collector, layout.dataset(dataset)).items()}


def yesterday(collector: Collector) -> str:
    """A first day's run, moved back one day; returns its day."""
    first = collector.run()
    assert first.status == "SUCCEEDED", first.cause
    day = move_back_one_day(collector, first.run["dt"])
    collector.alerts()  # the first day's alert read: the queue holds only what the faulty day sends
    return day


def day_of(tables: dict[str, pa.Table], dataset: str, dt: str) -> pa.Table:
    return tables[dataset].filter(pc.equal(tables[dataset]["dt"], dt))


def assert_every_target_once(tables: dict[str, pa.Table], dt: str, targets: int) -> tuple[int, int]:
    """The day holds each target's one completed report and exactly its rows; returns (targets, rows)."""
    jobs = day_of(tables, REPORT_JOBS.name, dt).to_pylist()
    details = day_of(tables, ACCESS_DETAILS.name, dt)
    assert len({(j["target_path"], j["policy_id"]) for j in jobs}) == len(jobs) == targets
    assert {j["job_status"] for j in jobs} == {"COMPLETED"}
    rows_per_job = Counter(details["job_id"].to_pylist())
    assert set(rows_per_job) <= {j["job_id"] for j in jobs}
    for job in jobs:  # none lost, none twice
        assert rows_per_job[job["job_id"]] == job["services_accessible"] == job["rows_written"]
    pairs = details.select(["job_id", "service_namespace"]).to_pylist()
    assert len({(row["job_id"], row["service_namespace"]) for row in pairs}) == details.num_rows
    return len(jobs), details.num_rows


def failure_message(collector: Collector) -> dict[str, Any]:
    """The run's one message, which must be the "run failed" one; its JSON."""
    (message,) = collector.alerts()
    assert message["Subject"] == FAILED_SUBJECT
    failure: dict[str, Any] = json.loads(message["Message"])
    return failure


def test_s3_answering_slow_down_to_some_writes_loses_and_duplicates_nothing(
    collector: Collector, demo_org: OrganizationSpec, faults: FaultInjector
) -> None:
    day1 = yesterday(collector)
    before = datasets(collector)
    # S3 answers 503 SlowDown to 2 writes after every 3: the functions' retries (standard mode, 8 attempts)
    slow = faults.add(Fault(SLOW_DOWN, ("PutObject", "DeleteObjects"), when=Bursts(ok=3, failing=2)))
    execution = collector.run()
    assert execution.status == "SUCCEEDED", execution.cause
    assert slow.injected >= 10  # on the parts, the snapshot, the recommendations, the page
    assert {operation for operation, _ in slow.answered} == {"PutObject"}  # finalize deletes only on a rerun
    assert 2 in Counter(slow.answered).values()  # a write answered SlowDown twice in a row, then stored
    tables = collector.tables()
    targets = organization_targets(demo_org)
    assert_every_target_once(tables, execution.run["dt"], targets)
    assert {key: tag for key, tag in datasets(collector).items() if f"dt={day1}/" in key} == before  # untouched
    (alert,) = collector.alerts()
    assert alert["Subject"] != FAILED_SUBJECT


def test_s3_denying_every_write_fails_the_run_at_discover_with_one_message_naming_the_object_and_the_fix(
    collector: Collector, faults: FaultInjector
) -> None:
    yesterday(collector)
    before = objects(collector)
    denied = faults.add(Fault(ACCESS_DENIED, S3_WRITES))
    execution = collector.run()
    assert execution.status == "FAILED"
    assert denied.injected == 1  # discover's first write, not retried; nothing after it ran
    (operation, key) = denied.answered[0]
    assert objects(collector) == before  # not one object written, the earlier day as it was
    failure = failure_message(collector)
    assert failure["error"] == "StorageAccessError"
    cause = json.loads(failure["cause"])["errorMessage"]
    assert f"S3 refused {operation} of s3://{collector.deployment.bucket}/{key} (AccessDenied" in cause
    assert key.endswith("/organization.json")
    assert "the data bucket's policy" in cause
    assert "the function role's s3:PutObject grant" in cause
    assert "the key policy's kms:GenerateDataKey" in cause


def test_s3_denying_the_snapshots_writes_fails_finalize_and_leaves_the_days_files_and_the_scratch(
    collector: Collector, demo_org: OrganizationSpec, faults: FaultInjector
) -> None:
    # Given yesterday, and today's first run
    day1 = yesterday(collector)
    first = collector.run()
    assert first.status == "SUCCEEDED", first.cause
    collector.alerts()
    before = datasets(collector)
    tables = collector.tables()
    targets = organization_targets(demo_org)
    counts = {day: assert_every_target_once(tables, day, targets) for day in (day1, first.run["dt"])}
    # When a second run of the day may write anything but the snapshot
    layout = Layout(collector.deployment.data_prefix)
    snapshot = under(layout.dataset(ACCESS_DETAILS), layout.dataset(REPORT_JOBS))
    denied = faults.add(Fault(ACCESS_DENIED, S3_WRITES, keys=snapshot))
    second = collector.run()
    # Then it fails at finalize's first write, with both days' files as they were and its parts left in place
    assert second.status == "FAILED"
    assert "Finalize" in second.states_entered
    assert denied.injected == 1
    (_, key) = denied.answered[0]
    assert key.startswith(layout.partition(ACCESS_DETAILS, first.run["dt"]))  # the first file of the snapshot
    assert datasets(collector) == before
    tables = collector.tables()
    assert {day: assert_every_target_once(tables, day, targets) for day in counts} == counts
    assert objects(collector, layout.parts(second.run["run_id"], REPORT_JOBS))  # left for the lifecycle rule
    failure = failure_message(collector)
    assert failure["error"] == "StorageAccessError"
    assert f"S3 refused PutObject of s3://{collector.deployment.bucket}/{key}" in failure["cause"]
