"""The fetch step's peak memory, measured as Lambda would: the RSS of a process that runs only it.

The emulator (a server on loopback, in this process) holds an organization and a batch of report jobs
whose pages are short (IAM's default of 100 items), so the fetch function follows every marker. A
fresh Python process then runs the real fetch handler on that batch, with the function's
environment pointed at the emulator, and reports its peak RSS (`VmHWM`) and the RSS it had
before the invocation (imports). Run for a batch and for one ten times larger, the two peaks show
whether memory grows with the report: fetch writes its rows out every `FLUSH_ROWS`.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from harness.clients import client, reporter_role_arn
from iam_report_emulator.iam_extension import store_for_account
from iam_report_emulator.presets import DEMO_ACCOUNT, apply_preset
from iam_report_emulator.server import EmulatorServer
from lambdas.collector.collect.discover import select_targets, walk_organization
from lambdas.collector.collect.jobs import poll_batch, start_batch
from lambdas.collector.collect.limits import KEY_ATTRIBUTE, Ceiling, LimitState, MemoryLimitStore, SharedLimits
from lambdas.collector.collect.pacing import Budget, Pacer
from lambdas.collector.collect.report_session import ReportSession
from lambdas.collector.config import DiscoverSettings
from lambdas.collector.models import BatchState, Job, RunContext
from lambdas.collector.settings import Pace

RUN_ID = "fetch-probe"
LIMITS_TABLE = "fetch-probe-limits"
BUCKET = "fetch-probe-data"
PAGE_ITEMS = 100


def _prepare(targets: int, seed: int) -> dict[str, Any]:
    """Seed the running emulator; return a fetch event whose jobs are all truncated after page one."""

    spec = apply_preset("demo", seed=seed, accounts=max(targets, 100))
    store = store_for_account(spec.management_account_id)
    store.configure(job_seconds=0, short_page_items=PAGE_ITEMS, max_jobs_in_progress=100_000)
    s3 = client("s3")
    s3.create_bucket(Bucket=BUCKET)
    dynamodb = client("dynamodb")  # the learned limits fetch releases its jobs' slots into
    dynamodb.create_table(
        TableName=LIMITS_TABLE,
        KeySchema=[{"AttributeName": KEY_ATTRIBUTE, "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": KEY_ATTRIBUTE, "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    role = reporter_role_arn(DEMO_ACCOUNT)
    session = ReportSession(sts=client("sts"), role_arn=role, external_id=None, duration_seconds=3600)
    settings = DiscoverSettings(data_bucket=BUCKET, report_role_arn=role, limits_table="unused-here")
    chosen = select_targets(walk_organization(session.organizations(RUN_ID)), settings)[:targets]
    run = RunContext(
        run_id=RUN_ID,
        dt="2026-11-24",
        collected_at="2026-11-24T03:00:00Z",  # type: ignore[arg-type]  # parsed by the model
        organization_id=spec.organization_id,
        bucket=BUCKET,
        manifest_key=f"runs/{RUN_ID}/manifest.json",
        targets=len(chosen),
        batches=1,
        polling=Pace(poll_initial_wait_seconds=0).polling,
    )
    iam = session.iam(RUN_ID)
    state = BatchState(run=run, batch=0, jobs=[Job(target=t) for t in chosen])
    # Unpaced, never out of time, on the emulator's clock (its jobs take no time here).
    # IAM admits every job here (the emulator's cap is lifted): the limits are learned in memory.
    limits = SharedLimits(
        MemoryLimitStore(LimitState(admitted=len(chosen))),
        Ceiling(len(chosen)),
        lane="probe",
        run_id=RUN_ID,
        clock=store.clock.now,
        throttle_count=lambda: 0,
    )
    budget = Budget(
        pacer=Pacer(None),
        limits=limits,
        time_left_ms=lambda: 900_000,
        margin_ms=0,
        clock=store.clock.now,
        sleep=store.clock.advance,
    )
    state = poll_batch(start_batch(state, iam, s3, budget).state, iam, s3, budget).state
    return {"event": state.payload(), "role": role}


# Runs in the fresh process, which imports only the function's own code (not the emulator and moto).
CHILD = """
import json, sys
from lambdas.handlers import fetch

def high_water_kib():
    # VmHWM: this process image's peak RSS (ru_maxrss would carry the parent's across fork and exec)
    with open("/proc/self/status") as status:
        return int(next(line for line in status if line.startswith("VmHWM:")).split()[1])

before = high_water_kib()
with open(sys.argv[1]) as handle:
    event = json.load(handle)

class Context:
    function_name = "fetch"
    memory_limit_in_mb = 1024
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:fetch"
    aws_request_id = "00000000-0000-4000-8000-000000000000"

    @staticmethod
    def get_remaining_time_in_millis():
        return 900_000

result = fetch.handler(event, Context())
peak = high_water_kib()
print(json.dumps({"imports_kib": before, "peak_kib": peak, "truncated_left": result["truncated"]}))
"""


def probe(targets: int, seed: int = 7) -> dict[str, Any]:
    """Peak RSS (MiB) of one fetch invocation over `targets` truncated reports, and the rows it read."""
    saved = dict(os.environ)
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # the server's request log
    with EmulatorServer() as endpoint:
        try:
            os.environ.update(endpoint.environment())
            prepared = _prepare(targets, seed)
        finally:
            os.environ.clear()
            os.environ.update(saved)
        event = prepared["event"]
        # What fetch reads: every page after the first, which poll read
        rows = sum(max(0, (job["accessible"] or 0) - PAGE_ITEMS) for job in event["jobs"])
        with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as handle:
            json.dump(event, handle)
        environment = {
            **saved,
            **endpoint.environment(),
            "DATA_BUCKET": BUCKET,
            "REPORT_ROLE_ARN": prepared["role"],
            "LIMITS_TABLE": LIMITS_TABLE,
            "POWERTOOLS_SERVICE_NAME": "org-access-report",
            "POWERTOOLS_METRICS_NAMESPACE": "OrgAccessReport",
            "POWERTOOLS_TRACE_DISABLED": "true",
            "POWERTOOLS_LOG_LEVEL": "WARNING",
        }
        completed = subprocess.run(
            [sys.executable, "-c", CHILD, handle.name],
            env=environment,
            capture_output=True,
            text=True,
            check=False,
            cwd=Path(__file__).resolve().parent.parent,
        )
        Path(handle.name).unlink()
    if completed.returncode != 0:
        raise RuntimeError(f"the fetch probe failed: {completed.stderr[-2000:]}")
    measured = json.loads(completed.stdout.strip().splitlines()[-1])
    if measured["truncated_left"]:
        raise RuntimeError("the fetch probe's invocation did not read every page")
    return {
        "targets": len(event["jobs"]),
        "rows": rows,
        "pages": sum(-(-(job["accessible"] or 0) // PAGE_ITEMS) - 1 for job in event["jobs"]),
        "imports_rss_mib": round(measured["imports_kib"] / 1024, 1),
        "peak_rss_mib": round(measured["peak_kib"] / 1024, 1),
    }
