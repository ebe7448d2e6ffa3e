"""The reporting functions' peak memory, measured as Lambda would: the RSS of a process that runs only one.

The emulator (a server on loopback, in this process) holds an organization. A fresh Python process then
runs the real handler on a batch, with the function's environment pointed at the emulator, and reports
its peak RSS (`VmHWM`) and the RSS it had before the invocation (imports).

- fetch (`probe`): a batch of report jobs whose pages are short (IAM's default of 100 items), so fetch
  follows every marker. Run for a batch and for one ten times larger, the two peaks show whether memory
  grows with the report: fetch writes its rows out every `FLUSH_ROWS`.
- generate (`probe_generate`): a whole batch started and read in one invocation (reports done at once,
  full pages of 1,000 items, each first page written as it is read): what the function that spends a
  day waiting for one report at a time holds at most, and so what memory it needs.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable
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
from lambdas.collector.models import Batch, BatchState, Job, RunContext, Target
from lambdas.collector.settings import Pace

RUN_ID = "fetch-probe"
LIMITS_TABLE = "fetch-probe-limits"
BUCKET = "fetch-probe-data"
PAGE_ITEMS = 100


def _seeded(targets: int, seed: int, page_items: int | None) -> tuple[RunContext, list[Target], ReportSession, Any]:
    """Seed the running emulator (reports done at once, no cap; pages of `page_items`, else IAM's 1,000):
    the run, its first `targets` targets, the run's reporter session, and the emulator's store."""
    spec = apply_preset("demo", seed=seed, accounts=max(targets, 100))
    store = store_for_account(spec.management_account_id)
    store.configure(job_seconds=0, short_page_items=page_items, max_jobs_in_progress=100_000)
    client("s3").create_bucket(Bucket=BUCKET)
    client("dynamodb").create_table(  # the learned limits the stages read and write
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
        max_jobs_in_progress=len(chosen),
    )
    return run, chosen, session, store


def _prepare(targets: int, seed: int) -> dict[str, Any]:
    """A fetch event whose jobs are all truncated after page one (generate and poll run in this process)."""
    run, chosen, session, store = _seeded(targets, seed, PAGE_ITEMS)
    iam, s3 = session.iam(RUN_ID), client("s3")
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
    return {"event": state.payload(), "role": session.role_arn}


def _prepare_generate(targets: int, seed: int) -> dict[str, Any]:
    """A generate event: a batch of `targets` not started (the Distributed Map's item)."""
    run, chosen, session, _ = _seeded(targets, seed, None)
    batch = Batch(batch=0, targets=chosen)
    event = {"run": run.model_dump(mode="json"), "batch": batch.model_dump(mode="json")}
    return {"event": event, "role": session.role_arn}


# Runs in the fresh process, which imports only the function's own code (not the emulator and moto).
CHILD = """
import json, sys
from lambdas.handlers import {handler} as handler

def high_water_kib():
    # VmHWM: this process image's peak RSS (ru_maxrss would carry the parent's across fork and exec)
    with open("/proc/self/status") as status:
        return int(next(line for line in status if line.startswith("VmHWM:")).split()[1])

before = high_water_kib()
with open(sys.argv[1]) as handle:
    event = json.load(handle)

class Context:
    function_name = "{handler}"
    memory_limit_in_mb = 1024
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:{handler}"
    aws_request_id = "00000000-0000-4000-8000-000000000000"

    @staticmethod
    def get_remaining_time_in_millis():
        return 900_000

result = handler.handler(event, Context())
peak = high_water_kib()
print(json.dumps({{"imports_kib": before, "peak_kib": peak, "left": result["truncated"] + result["pending"]}}))
"""


def probe(targets: int, seed: int = 7) -> dict[str, Any]:
    """Peak RSS (MiB) of one fetch invocation over `targets` truncated reports, and the rows it read."""
    event, measured = _measure("fetch", lambda: _prepare(targets, seed))
    return {
        "targets": len(event["jobs"]),
        "rows": sum(max(0, (job["accessible"] or 0) - PAGE_ITEMS) for job in event["jobs"]),
        "pages": sum(-(-(job["accessible"] or 0) // PAGE_ITEMS) - 1 for job in event["jobs"]),
        **measured,
    }


def probe_generate(targets: int, seed: int = 7) -> dict[str, Any]:
    """Peak RSS (MiB) of one generate invocation that starts and reads a batch of `targets` reports."""
    event, measured = _measure("generate", lambda: _prepare_generate(targets, seed))
    return {"targets": len(event["batch"]["targets"]), **measured}


def _measure(handler: str, prepare: Callable[[], dict[str, Any]]) -> tuple[dict[str, Any], dict[str, float]]:
    """Seed the emulator (`prepare`: the event and the reporter role), run `handler` on the event in a
    fresh process, and return the event and the process's RSS before the invocation and at its peak."""
    saved = dict(os.environ)
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # the server's request log
    with EmulatorServer() as endpoint:
        try:
            os.environ.update(endpoint.environment())
            prepared = prepare()
        finally:
            os.environ.clear()
            os.environ.update(saved)
        event = prepared["event"]
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
            [sys.executable, "-c", CHILD.format(handler=handler), handle.name],
            env=environment,
            capture_output=True,
            text=True,
            check=False,
            cwd=Path(__file__).resolve().parent.parent,
        )
        Path(handle.name).unlink()
    if completed.returncode != 0:
        raise RuntimeError(f"the {handler} probe failed: {completed.stderr[-2000:]}")
    measured = json.loads(completed.stdout.strip().splitlines()[-1])
    if measured["left"]:
        raise RuntimeError(f"the {handler} probe's invocation did not finish its batch")
    return event, {
        "imports_rss_mib": round(measured["imports_kib"] / 1024, 1),
        "peak_rss_mib": round(measured["peak_kib"] / 1024, 1),
    }
