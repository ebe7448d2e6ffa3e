"""A failed run started again: the same input on the same day, once the fault is lifted, ends with the day's
data an uninterrupted run would have written.

moto 5.2.5's Step Functions has no RedriveExecution, and our runs would not gain from it: every stage's error
is caught into NotifyFailure and the `Failed` state, so a redrive would resume at `Failed` and fail again (see
the README, "Redrive"). The recovery is a new execution with the same input. It is safe because a run that
fails before finalize's uploads leaves nothing a query reads (finalize writes the day's files locally and
uploads them last), the one-run-at-a-time guard waits only for RUNNING executions, and the plan reads the
days' partitions, never another run's scratch.
"""

from __future__ import annotations

import json
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from harness.clients import client
from harness.faults import ACCESS_DENIED, S3_WRITES, Fault, FaultInjector, under
from lambdas.collector.names import Layout
from lambdas.collector.services import services
from lambdas.collector.store.schema import ACCESS_DETAILS, DATASETS, REPORT_JOBS
from tests.e2e.conftest import FAST, Collector, move_back_one_day
from tests.e2e.test_fault_storage import FAILED_SUBJECT, datasets, objects
from tests.helpers import rows_of

# What a day's report_jobs says of each target, without what differs between runs (run and job ids, times).
JOB_COLUMNS = [
    "target_path",
    "policy_id",
    "target_type",
    "job_status",
    "services_accessible",
    "services_not_accessed",
    "rows_written",
    "carried_forward",
    "data_age_days",
    "plan",
    "error_code",
]


def day(collector: Collector, dt: str) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """The day's access rows and job records, comparable across runs."""
    tables = collector.tables()
    details = tables[ACCESS_DETAILS.name].filter(pc.equal(tables[ACCESS_DETAILS.name]["dt"], dt))
    jobs: pa.Table = tables[REPORT_JOBS.name].filter(pc.equal(tables[REPORT_JOBS.name]["dt"], dt))
    return rows_of(details), sorted(tuple(record.values()) for record in jobs.select(JOB_COLUMNS).to_pylist())


def forget(collector: Collector, dt: str) -> None:
    """The day's partitions removed: the bucket as before the day's first run (its scratch aside)."""
    s3, layout = client("s3"), Layout(collector.deployment.data_prefix)
    partitions = tuple(layout.partition(dataset, dt) for dataset in DATASETS)
    for key in [key for key in datasets(collector) if key.startswith(partitions)]:
        s3.delete_object(Bucket=collector.deployment.bucket, Key=key)


def test_a_run_failed_at_finalize_and_started_again_writes_what_an_uninterrupted_run_writes(
    collector: Collector,
) -> None:
    # Given yesterday, and today's data as an uninterrupted run writes it (then forgotten again)
    first = collector.run()
    assert first.status == "SUCCEEDED", first.cause
    yesterday = move_back_one_day(collector, first.run["dt"])
    uninterrupted = collector.run()
    assert uninterrupted.status == "SUCCEEDED", uninterrupted.cause
    today = uninterrupted.run["dt"]
    expected = day(collector, today)
    assert len(expected[0]) > 0
    forget(collector, today)
    collector.alerts()
    before = datasets(collector)
    # When S3 refuses the snapshot's writes: the run fails at finalize, after its batches wrote their parts
    layout = Layout(collector.deployment.data_prefix)
    faults = FaultInjector(services().s3)
    denied = faults.add(Fault(ACCESS_DENIED, S3_WRITES, keys=under(*(layout.dataset(d) for d in DATASETS))))
    failed = collector.run()
    # Then the run fails, yesterday as it was, nothing for today, one message naming the refusal
    assert failed.status == "FAILED"
    assert denied.injected == 1
    assert objects(collector, layout.parts(failed.run["run_id"], ACCESS_DETAILS))  # its scratch, left behind
    assert datasets(collector) == before
    (message,) = collector.alerts()
    assert message["Subject"] == FAILED_SUBJECT
    assert json.loads(message["Message"])["error"] == "StorageAccessError"
    # And once lifted, the same input again: the day as the uninterrupted run wrote it, yesterday untouched
    faults.lift()
    again = collector.run(FAST)
    assert again.status == "SUCCEEDED", again.cause
    assert "CollectBatches" in again.states_entered  # not skipped: the failed run is no longer RUNNING
    assert again.run["dt"] == today
    assert day(collector, today) == expected
    assert {key: tag for key, tag in datasets(collector).items() if f"dt={yesterday}/" in key} == before
