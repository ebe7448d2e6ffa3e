"""`python -m sandbox demo`: the deployed state machine, end to end, on the sandbox.

The CDK app's template is stood up in the sandbox (`sandbox.runner`), an execution runs in moto's Step
Functions interpreter with progress shown, then every file in `queries/` runs on the snapshot through
DuckDB, the alert received on the topic's queue is printed, the snapshot's S3 layout is listed, and a
copy of the run is left in `demo-output/`.

Waits are shortened only through the execution input the state machine already reads (`polling`).
"""

from __future__ import annotations

import io
import json
import logging
import shutil
import time
from collections import Counter
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, redirect_stdout
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

import pyarrow as pa
import pyarrow.dataset as pads

from lambdas.collector.observability import SERVICE
from lambdas.collector.store.schema import ACCESS_DETAILS, REPORT_JOBS
from lambdas.collector.store.storage import Layout, get_table, list_keys, list_partitions
from sandbox.athena_sql import run_query
from sandbox.clients import client
from sandbox.demo import REPORTER_ROLE, print_table
from sandbox.histories import MapRunHistories
from sandbox.histories import transitions as count_transitions
from sandbox.iam_extension import store_for_account
from sandbox.runner import ROOT, Deployment, InProcessLambdas, stand_up

QUERIES = ROOT / "queries"
OUTPUT = ROOT / "demo-output"
SHOWN_ROWS = 8


@dataclass
class Execution:
    """An execution followed to its end."""

    arn: str
    status: str
    output: dict[str, Any]
    error: str | None
    cause: str | None
    wall_seconds: float
    events: list[dict[str, Any]]
    states_entered: list[str] = field(default_factory=list)
    child_events: list[dict[str, Any]] = field(default_factory=list)  # the batches' executions

    @property
    def run(self) -> dict[str, Any]:
        run: dict[str, Any] = self.output.get("run", {})
        return run


class Progress:
    """Prints states as they are entered and, while batches run, targets done out of the total."""

    def __init__(self, out: TextIO, s3: Any, bucket: str, layout: Layout) -> None:
        self.out, self.s3, self.bucket, self.layout = out, s3, bucket, layout
        self.started = time.monotonic()
        self._rows: dict[str, int] = {}
        self._last = ""

    def say(self, text: str) -> None:
        self.out.write(f"  [{time.monotonic() - self.started:6.1f}s] {text}\n")
        self.out.flush()

    def targets_done(self, run_id: str) -> int:
        """Finished jobs so far: rows of the run's report_jobs parts (each part read once)."""
        for key in list_keys(self.s3, self.bucket, self.layout.parts(run_id, REPORT_JOBS)):
            if key not in self._rows:
                self._rows[key] = get_table(self.s3, self.bucket, key, REPORT_JOBS, ["job_id"]).num_rows
        return sum(self._rows.values())

    def tick(self, run: Mapping[str, Any]) -> None:
        if not run:
            return
        line = f"targets done {self.targets_done(str(run['run_id']))} / {run.get('targets', '?')}"
        if line != self._last:
            self._last = line
            self.say(line)


def follow(sfn: Any, arn: str, progress: Progress, interval: float = 0.5) -> Execution:
    """Poll the execution until it ends, reporting each state entered and, every `interval` seconds,
    the batches' progress. The wall time is the execution's own, from its start and stop dates."""
    seen = 0
    ticked = 0.0
    run: dict[str, Any] = {}
    entered: list[str] = []
    while True:
        description = sfn.describe_execution(executionArn=arn)
        events = sfn.get_execution_history(executionArn=arn, maxResults=1000)["events"]
        for event in events[seen:]:
            details = event.get("stateEnteredEventDetails")
            if details:
                entered.append(details["name"])
                progress.say(f"state {details['name']}")
            exited = event.get("stateExitedEventDetails")
            if exited and exited["name"] == "Discover":
                run = json.loads(exited["output"]).get("run", {})
                progress.say(f"run {run['run_id']}: {run['targets']} targets in {run['batches']} batch(es)")
        seen = len(events)
        if time.monotonic() - ticked >= interval:
            progress.tick(run)
            ticked = time.monotonic()
        if description["status"] != "RUNNING":
            progress.tick(run)
            output = json.loads(description.get("output") or "{}")
            start, stop = description.get("startDate"), description.get("stopDate")
            return Execution(
                arn=arn,
                status=description["status"],
                output=output,
                error=description.get("error"),
                cause=description.get("cause"),
                wall_seconds=(stop - start).total_seconds() if start and stop else time.monotonic() - progress.started,
                events=events,
                states_entered=entered,
            )
        time.sleep(0.5)


def start_and_follow(
    deployment: Deployment,
    lambdas: InProcessLambdas,
    out: TextIO,
    *,
    name: str,
    execution_input: Mapping[str, Any],
    log: TextIO,
    interval: float = 0.5,
) -> Execution:
    """Start an execution of the deployed state machine and follow it; handlers' logs go to `log`."""
    sfn, s3 = client("stepfunctions"), client("s3")
    layout = Layout(data_prefix(deployment))
    progress = Progress(out, s3, deployment.bucket, layout)
    histories = MapRunHistories()
    with lambdas.installed(), histories.installed(), handler_output(lambdas, log):
        arn = sfn.start_execution(
            stateMachineArn=deployment.state_machine_arn, name=name, input=json.dumps(execution_input)
        )["executionArn"]
        progress.say(f"execution {name} started")
        execution = follow(sfn, arn, progress, interval)
    execution.child_events = histories.events()
    return execution


def data_prefix(deployment: Deployment) -> str:
    return next(iter(deployment.functions.values())).environment.get("DATA_PREFIX", "")


@contextmanager
def handler_output(lambdas: InProcessLambdas, log: TextIO) -> Iterator[None]:
    """The handlers' JSON logs (Powertools binds its stream at import) and EMF metrics (printed) go to `log`."""
    lambdas.load_handlers()
    streams = [h for h in logging.getLogger(SERVICE).handlers if isinstance(h, logging.StreamHandler)]
    previous = [h.setStream(log) for h in streams]
    try:
        with redirect_stdout(log):
            yield
    finally:
        for stream_handler, stream in zip(streams, previous, strict=True):
            stream_handler.setStream(stream)


def snapshots(deployment: Deployment) -> tuple[dict[str, pa.Table], list[str]]:
    """Every day's tables as Athena reads them (`dt` from the partition), and the keys read."""
    s3 = client("s3")
    layout = Layout(data_prefix(deployment))
    tables, keys = {}, []
    for dataset in (ACCESS_DETAILS, REPORT_JOBS):
        parts = []
        for dt in list_partitions(s3, deployment.bucket, layout, dataset):
            for key in list_keys(s3, deployment.bucket, layout.partition(dataset, dt)):
                table = get_table(s3, deployment.bucket, key, dataset)
                parts.append(table.append_column("dt", pa.array([dt] * table.num_rows, pa.string())))
                keys.append(key)
        schema = dataset.arrow_schema.append(pa.field("dt", pa.string()))
        tables[dataset.name] = pa.concat_tables(parts) if parts else schema.empty_table()
    return tables, keys


def received_alerts(deployment: Deployment) -> list[dict[str, Any]]:
    """SNS notifications captured by the queue subscribed to the alert topic (SNS's JSON envelope)."""
    sqs = client("sqs")
    alerts: list[dict[str, Any]] = []
    while True:
        messages = sqs.receive_message(QueueUrl=deployment.queue_url, MaxNumberOfMessages=10).get("Messages", [])
        if not messages:
            return alerts
        for message in messages:
            alerts.append(json.loads(message["Body"]))
            sqs.delete_message(QueueUrl=deployment.queue_url, ReceiptHandle=message["ReceiptHandle"])


def print_arrow(table: pa.Table, out: TextIO, limit: int = SHOWN_ROWS) -> None:
    rows = [list(row.values()) for row in table.slice(0, limit).to_pylist()]
    print_table(rows, table.column_names, out)
    if table.num_rows > limit:
        out.write(f"  … and {table.num_rows - limit} more row(s)\n")


def run_queries(tables: Mapping[str, pa.Table], out: TextIO) -> dict[str, int]:
    """Every `queries/*.sql` on the snapshot, printed; rows returned by query name."""
    counts = {}
    for path in sorted(QUERIES.glob("*.sql")):
        sql = path.read_text()
        description = sql.splitlines()[0].removeprefix("--").strip()
        result = run_query(sql, tables)
        counts[path.stem] = result.num_rows
        out.write(f"\n== {path.name}: {result.num_rows} row(s)\n   {description}\n")
        print_arrow(result, out)
    return counts


def print_alert(alert: Mapping[str, Any], out: TextIO) -> None:
    attributes = {name: value["Value"] for name, value in alert.get("MessageAttributes", {}).items()}
    out.write(f"Subject: {alert.get('Subject')}\nAttributes: {json.dumps(attributes, sort_keys=True)}\n\n")
    out.write(str(alert.get("Message")) + "\n")


def list_layout(deployment: Deployment, keys: list[str], out: TextIO) -> None:
    s3 = client("s3")
    for key in keys:
        size = s3.head_object(Bucket=deployment.bucket, Key=key)["ContentLength"]
        out.write(f"  s3://{deployment.bucket}/{key}  ({size:,} bytes)\n")


def save_output(
    deployment: Deployment, keys: list[str], alerts: list[dict[str, Any]], summary: Mapping[str, Any], output: Path
) -> None:
    """`output/`: the snapshot's Parquet files under their S3 keys, alert.json, summary.json."""
    shutil.rmtree(output, ignore_errors=True)
    s3 = client("s3")
    prefix = data_prefix(deployment)
    for key in keys:
        target = output / key.removeprefix(prefix)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(s3.get_object(Bucket=deployment.bucket, Key=key)["Body"].read())
    (output / "alert.json").write_text(json.dumps(alerts[-1] if alerts else None, indent=2) + "\n")
    (output / "summary.json").write_text(json.dumps(summary, indent=2, default=str) + "\n")


def transitions(execution: Execution) -> dict[str, int]:
    """State transitions from the execution histories: the parent's and its batches' child executions'."""
    parent, batches = count_transitions(execution.events), count_transitions(execution.child_events)
    return {"parent": parent, "batches": batches, "total": parent + batches}


def load_output(output: Path = OUTPUT) -> dict[str, pa.Table]:
    """The last demo's snapshot from `demo-output/`, as the Athena tables (dt as a string column)."""
    tables = {}
    for dataset in (ACCESS_DETAILS, REPORT_JOBS):
        directory = output / dataset.name
        if not directory.is_dir():
            raise FileNotFoundError(f"{directory} is missing: run `make demo` first")
        partitioning = pads.partitioning(pa.schema([("dt", pa.string())]), flavor="hive")
        tables[dataset.name] = pads.dataset(directory, format="parquet", partitioning=partitioning).to_table()
    return tables


def now_utc() -> datetime:
    return datetime.now(UTC)


def run_collector_demo(
    out: TextIO,
    spec: Any,
    template: Mapping[str, Any],
    *,
    execution_input: Mapping[str, Any] | None = None,
    output: Path = OUTPUT,
    started: float | None = None,
) -> int:
    """Stand the template up, run it on the seeded organization `spec`, print what a person needs."""
    started = time.monotonic() if started is None else started
    store = store_for_account(spec.management_account_id)
    calls_before = dict(store.throttler.counters.calls)
    deployment = stand_up(template, f"arn:aws:iam::{spec.management_account_id}:role/{REPORTER_ROLE}")
    lambdas = InProcessLambdas(deployment.functions)
    out.write(
        f"Stood up {len(deployment.functions)} functions, the data bucket, the alert topic (+ capture queue) "
        f"and the state machine ({len(deployment.definition['States'])} top-level states) from the template\n\n"
    )
    log = io.StringIO()
    name = f"demo-{now_utc().strftime('%Y%m%dT%H%M%S')}"
    execution = start_and_follow(deployment, lambdas, out, name=name, execution_input=execution_input or {}, log=log)
    out.write(f"\nExecution {execution.status} in {execution.wall_seconds:.1f}s\n")
    if execution.status != "SUCCEEDED":
        out.write(f"  error: {execution.error}\n  cause: {execution.cause}\n")
        return 1
    tables, keys = snapshots(deployment)
    out.write("\n# Athena named queries (queries/*.sql) on the snapshot, through DuckDB\n")
    query_rows = run_queries(tables, out)
    alerts = received_alerts(deployment)
    out.write("\n# The SNS alert, as received on the topic's queue\n\n")
    if alerts:
        print_alert(alerts[-1], out)
    else:
        out.write("(nothing published)\n")
    out.write("\n# The snapshot in S3\n")
    list_layout(deployment, keys, out)
    finalize = execution.output.get("finalize", {}).get("summary", {})
    calls = {op: n - calls_before.get(op, 0) for op, n in store.throttler.counters.calls.items()}
    summary = {
        "run_id": execution.run.get("run_id"),
        "dt": execution.run.get("dt"),
        "organization_id": spec.organization_id,
        "execution_status": execution.status,
        "targets": execution.run.get("targets"),
        "batches": execution.run.get("batches"),
        "rows": finalize.get("rows"),
        "jobs_by_status": finalize.get("jobs_by_status"),
        "snapshot_files": finalize.get("files"),
        "iam_calls": calls,
        "iam_throttled": dict(store.throttler.counters.throttled),
        "lambda_invocations": dict(Counter(i.stage for i in lambdas.invocations)),
        "lambda_errors": dict(Counter(i.error for i in lambdas.invocations if i.error)),
        "state_transitions": transitions(execution),
        "states_entered": execution.states_entered,
        "query_rows": query_rows,
        "alert_published": bool(alerts),
        "execution_seconds": round(execution.wall_seconds, 2),
        "wall_seconds": round(time.monotonic() - started, 2),
    }
    save_output(deployment, keys, alerts, summary, output)
    (output / "lambda-logs.jsonl").write_text(log.getvalue())
    out.write(f"\n# Summary (also in {output.relative_to(ROOT) if output.is_relative_to(ROOT) else output}/)\n")
    out.write(json.dumps({k: v for k, v in summary.items() if k != "states_entered"}, indent=2) + "\n")
    return 0
