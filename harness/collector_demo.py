"""`python -m harness demo`: the deployed state machine, end to end, on the emulator.

The CDK app's template is stood up in moto (`harness.runner`), an execution runs in moto's Step
Functions interpreter with progress shown (`harness.executions`), then every file in `queries/` runs on
the snapshot through DuckDB, the alert received on the topic's queue is printed, the snapshot's S3
layout is listed, and a copy of the run is left in `demo-output/`. A failed run prints its error and
the failure alert instead.

IAM's observed model runs at the emulator's time scale (`make demo`: a fifth of real time); the
collector runs with its deployed settings, unshortened.
"""

from __future__ import annotations

import io
import json
import shutil
import time
from collections import Counter
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

import pyarrow as pa
import pyarrow.dataset as pads

from harness.athena_sql import run_query
from harness.clients import client, reporter_role_arn
from harness.executions import Execution, names_unnamed_executions, start_and_follow, transitions
from harness.runner import ROOT, Deployment, InProcessLambdas, stand_up
from harness.tables import print_arrow
from iam_report_emulator import OrganizationSpec, store_for_account
from iam_report_emulator.cli import describe_model
from lambdas.collector.names import Layout
from lambdas.collector.store.schema import DATASETS
from lambdas.collector.store.storage import get_table, list_keys, list_partitions

QUERIES = ROOT / "queries"
OUTPUT = ROOT / "demo-output"


@dataclass(frozen=True)
class RunningCollector:
    """The template stood up in moto, its functions dispatched to the real handlers (`running_collector`)."""

    deployment: Deployment
    lambdas: InProcessLambdas


@contextmanager
def running_collector(template: Mapping[str, Any], spec: OrganizationSpec) -> Iterator[RunningCollector]:
    """Stand the template up for the seeded organization `spec`. For as long as inside, every invocation of
    its functions runs the real handler (moto's own Lambda answers with an echo stub): the demo's
    execution, and any started afterwards through the endpoint (`demo --keep-running`), named or not."""
    deployment = stand_up(template, reporter_role_arn(spec.management_account_id))
    lambdas = InProcessLambdas(deployment.functions)
    with lambdas.installed(), names_unnamed_executions():
        yield RunningCollector(deployment, lambdas)


def snapshots(deployment: Deployment) -> tuple[dict[str, pa.Table], list[str]]:
    """Every day's tables as Athena reads them (`dt` from the partition), and the keys read."""
    s3 = client("s3")
    layout = Layout(deployment.data_prefix)
    tables, keys = {}, []
    for dataset in DATASETS:
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
    prefix = deployment.data_prefix
    for key in keys:
        target = output / key.removeprefix(prefix)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(s3.get_object(Bucket=deployment.bucket, Key=key)["Body"].read())
    (output / "alert.json").write_text(json.dumps(alerts[-1] if alerts else None, indent=2) + "\n")
    (output / "summary.json").write_text(json.dumps(summary, indent=2, default=str) + "\n")


def load_output(output: Path = OUTPUT) -> dict[str, pa.Table]:
    """The last demo's snapshot from `demo-output/`, as the Athena tables (dt as a string column)."""
    tables = {}
    for dataset in DATASETS:
        directory = output / dataset.name
        if not directory.is_dir():
            raise FileNotFoundError(f"{directory} is missing: run `make demo` first")
        partitioning = pads.partitioning(pa.schema([("dt", pa.string())]), flavor="hive")
        tables[dataset.name] = pads.dataset(directory, format="parquet", partitioning=partitioning).to_table()
    return tables


def now_utc() -> datetime:
    return datetime.now(UTC)


def print_received_alert(alerts: list[dict[str, Any]], out: TextIO) -> None:
    out.write("\n# The SNS alert, as received on the topic's queue\n\n")
    if alerts:
        print_alert(alerts[-1], out)
    else:
        out.write("(nothing published)\n")


def print_guardrails(deployment: Deployment, dt: str, outcome: Mapping[str, Any], out: TextIO) -> list[str]:
    """The day's guardrail recommendations: a line per root and OU, and the largest proposal in full;
    returns their keys."""
    out.write("\n# Guardrail SCP recommendations (proposed, never attached)\n\n")
    summary = outcome.get("summary")
    if not summary:
        out.write(f"  recommend failed: {outcome.get('error')}\n")
        return []
    s3 = client("s3")
    layout = Layout(deployment.data_prefix)
    keys = list_keys(s3, deployment.bucket, f"{layout.recommendations}dt={dt}/")
    recommendations = [json.loads(s3.get_object(Bucket=deployment.bucket, Key=key)["Body"].read()) for key in keys]
    for r in recommendations:
        target = r["target"]
        chars = ", ".join(f"{p['chars']:,}" for p in r["policies"])
        what = f"{len(r['services'])} services in {len(r['policies'])} SCP(s) of {chars} chars" if r["policies"] else ""
        out.write(
            f"  {target['id']:<24} {target['name'] or '':<16} {r['status']:<16} {what or r.get('reason') or ''}\n"
        )
    proposals = [r for r in recommendations if r["policies"]]
    if proposals:
        largest = max(proposals, key=lambda r: len(r["services"]))
        key = layout.recommendation(dt, largest["target"]["id"])
        out.write(f"\nThe largest proposal, s3://{deployment.bucket}/{key} (first SCP shown in full):\n")
        shown = {"services": 5, "withdrawn": 5, "kept": 5, "already_denied": 10, "policies": 1}
        sample = {k: v[: shown[k]] if k in shown else v for k, v in largest.items()}
        out.write(json.dumps(sample, indent=1) + "\n")
        cut = {k: len(largest[k]) for k in shown if len(largest[k]) > shown[k]}
        out.write(f"(shown: the first of {cut}; the whole file is in demo-output/)\n" if cut else "")
    return keys


def save_report_page(deployment: Deployment, outcome: Mapping[str, Any], output: Path, out: TextIO) -> None:
    """The day's report page, copied from the bucket to `output/report.html`."""
    page = outcome.get("page")
    if not page:
        out.write(f"\n# Report page: not written ({outcome.get('error') or 'no report stage'})\n")
        return
    body = client("s3").get_object(Bucket=deployment.bucket, Key=page["key"])["Body"].read()
    path = output / "report.html"
    path.write_bytes(body)
    out.write(
        f"\n# Report page ({len(body):,} bytes, rendered in {page['render_seconds']:.2f} s)\n"
        f"  {page['uri']}\n  open {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path} in a browser\n"
    )


def print_failure(execution: Execution, alerts: list[dict[str, Any]], out: TextIO) -> None:
    """A run that did not succeed: the execution's error and cause, and the failure alert it published."""
    out.write(f"  error: {execution.error}\n  cause: {execution.cause}\n")
    print_received_alert(alerts, out)


def run_collector_demo(
    out: TextIO,
    spec: OrganizationSpec,
    collector: RunningCollector,
    *,
    execution_input: Mapping[str, Any] | None = None,
    output: Path = OUTPUT,
    started: float | None = None,
) -> int:
    """Run the stood-up collector on the seeded organization `spec`, print what a person needs."""
    started = time.monotonic() if started is None else started
    deployment, lambdas = collector.deployment, collector.lambdas
    store = store_for_account(spec.management_account_id)
    calls_before = dict(store.throttler.counters.calls)
    refused_before, reused_before = store.limit_exceeded, store.reused
    out.write(
        f"Stood up {len(deployment.functions)} functions, the data bucket, the alert topic (+ capture queue) "
        f"and the state machine ({len(deployment.definition['States'])} top-level states) from the template\n\n"
    )
    log = io.StringIO()
    name = f"demo-{now_utc().strftime('%Y%m%dT%H%M%S')}"
    execution = start_and_follow(deployment, lambdas, out, name=name, execution_input=execution_input or {}, log=log)
    out.write(f"\nExecution {execution.status} in {execution.wall_seconds:.1f}s\n")
    if execution.status != "SUCCEEDED":
        print_failure(execution, received_alerts(deployment), out)
        return 1
    tables, keys = snapshots(deployment)
    out.write("\n# Athena named queries (queries/*.sql) on the snapshot, through DuckDB\n")
    query_rows = run_queries(tables, out)
    alerts = received_alerts(deployment)
    guardrails = execution.output.get("recommend", {})
    keys += print_guardrails(deployment, str(execution.run.get("dt")), guardrails, out)
    print_received_alert(alerts, out)
    out.write("\n# The snapshot in S3\n")
    list_layout(deployment, keys, out)
    finalize = execution.output.get("finalize", {}).get("summary", {})
    calls = {op: n - calls_before.get(op, 0) for op, n in store.throttler.counters.calls.items()}
    targets = int(execution.run.get("targets") or 0)
    report_seconds = _report_seconds(tables["report_jobs"], str(execution.run.get("run_id")))
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
        "iam_calls_per_target": {op: round(n / targets, 3) for op, n in calls.items()} if targets else {},
        "iam_refused": store.limit_exceeded - refused_before,  # ReportGenerationLimitExceeded answers
        "iam_reused": store.reused - reused_before,
        "iam_throttled": dict(store.throttler.counters.throttled),
        "iam_model": describe_model(store.settings),
        "lambda_invocations": dict(Counter(i.stage for i in lambdas.invocations)),
        "lambda_errors": dict(Counter(i.error for i in lambdas.invocations if i.error)),
        "state_transitions": transitions(execution),
        "states_entered": execution.states_entered,
        "query_rows": query_rows,
        "guardrails": guardrails.get("summary") or guardrails.get("error"),
        "report_page": execution.output.get("report", {}).get("page")
        or execution.output.get("report", {}).get("error"),
        "alert_published": bool(alerts),
        "execution_seconds": round(execution.wall_seconds, 2),
        # IAM's own creation-to-completion times of the run's jobs, summed: what one job at a time must wait
        "report_seconds": round(report_seconds, 2),
        "execution_to_report_seconds": round(execution.wall_seconds / report_seconds, 3) if report_seconds else None,
        "wall_seconds": round(time.monotonic() - started, 2),
    }
    save_output(deployment, keys, alerts, summary, output)
    save_report_page(deployment, execution.output.get("report", {}), output, out)
    (output / "lambda-logs.jsonl").write_text(log.getvalue())
    out.write(f"\n# Summary (also in {output.relative_to(ROOT) if output.is_relative_to(ROOT) else output}/)\n")
    out.write(json.dumps({k: v for k, v in summary.items() if k != "states_entered"}, indent=2) + "\n")
    return 0


def _report_seconds(jobs: pa.Table, run_id: str) -> float:
    """The sum of IAM's creation-to-completion times of the run's jobs."""
    rows = jobs.filter(pa.compute.equal(jobs["run_id"], run_id)).to_pylist()
    return float(
        sum(
            (row["job_completion_date"] - row["job_creation_date"]).total_seconds()
            for row in rows
            if row["job_creation_date"] is not None and row["job_completion_date"] is not None
        )
    )
