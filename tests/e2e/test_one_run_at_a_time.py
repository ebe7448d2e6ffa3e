"""One run at a time, through the deployed definition: an execution started while a run is collecting ends at
once in `SkippedAnotherRunInProgress`, as no principal of its own (the reporter role never assumed for it, so no
Organizations or IAM call), having written nothing; the run in progress completes as if alone."""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from moto.sts.models import sts_backends

from harness.clients import client
from iam_report_emulator import store_for_account
from iam_report_emulator.seed import OrganizationSpec
from lambdas.collector.collect.report_session import session_name
from tests.e2e.conftest import FAST, Collector
from tests.helpers import organization_targets

SECOND = "e2e-overlap"


def wait_for(condition: Any, what: str, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def entered(sfn: Any, arn: str) -> list[str]:
    """The states the execution entered so far (none while it is not yet started)."""
    try:
        events = sfn.get_execution_history(executionArn=arn, maxResults=1000)["events"]
    except sfn.exceptions.ExecutionDoesNotExist:
        return []
    return [e["stateEnteredEventDetails"]["name"] for e in events if "stateEnteredEventDetails" in e]


def execution_arn(state_machine_arn: str, name: str) -> str:
    return f"{state_machine_arn.replace(':stateMachine:', ':execution:')}:{name}"


def sessions(account_id: str) -> set[str]:
    """The session names the reporter role was assumed with (moto's STS record of the role's account)."""
    return {role.session_name for role in sts_backends[account_id]["aws"].assumed_roles}


def test_a_run_started_while_another_is_collecting_ends_at_once_touching_nothing(
    collector: Collector, demo_org: OrganizationSpec
) -> None:
    sfn, s3 = client("stepfunctions"), client("s3")
    machine = collector.deployment.state_machine_arn
    first = execution_arn(machine, "e2e-run-1")
    with ThreadPoolExecutor(1) as pool:
        # Given a run whose batches are collecting. (It waits for its jobs through Wait states, not inside
        # generate: the harness runs one function's environment at a time, as os.environ is one per process,
        # so a generate waiting inline would hold the second run's discover in a queue AWS does not have.)
        running = pool.submit(collector.run, {**FAST, "poll_inline_wait_seconds": 0})
        wait_for(lambda: "CollectBatches" in entered(sfn, first), "the first run's batches")
        # When a second execution of the state machine starts
        started = time.monotonic()
        second = sfn.start_execution(stateMachineArn=machine, name=SECOND, input=json.dumps(FAST))["executionArn"]
        wait_for(lambda: sfn.describe_execution(executionArn=second)["status"] != "RUNNING", "the second execution")
        seconds = time.monotonic() - started
        first_then = sfn.describe_execution(executionArn=first)["status"]
        execution = running.result(timeout=300)

    # Then the second ended at once, while the first was still running, in the state that says why
    description = sfn.describe_execution(executionArn=second)
    assert description["status"] == "SUCCEEDED"
    assert first_then == "RUNNING"
    assert seconds < 5
    assert entered(sfn, second) == ["Discover", "OneRunAtATime", "SkippedAnotherRunInProgress"]
    output = json.loads(description["output"])
    assert (output["skipped"], output["run_in_progress"]["execution_arn"]) == (True, first)
    # as no principal of its own (no Organizations or IAM call as the second run), writing nothing
    assumed = sessions(demo_org.management_account_id)
    assert session_name("e2e-run-1") in assumed
    assert session_name(SECOND) not in assumed
    owners = {job.owner.rsplit("/", 1)[-1] for job in store_for_account(demo_org.management_account_id).jobs.values()}
    assert owners == {session_name("e2e-run-1")}
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=collector.deployment.bucket)
    keys = [o["Key"] for page in pages for o in page.get("Contents", [])]
    assert keys
    assert not [key for key in keys if SECOND in key]

    # And the first run completed every target, as if alone
    assert execution.status == "SUCCEEDED", execution.cause
    assert "SkippedAnotherRunInProgress" not in execution.states_entered
    jobs = collector.tables()["report_jobs"].to_pylist()
    assert len(jobs) == organization_targets(demo_org) == execution.run["targets"]
    assert {job["job_status"] for job in jobs} == {"COMPLETED"}
    assert {job["run_id"] for job in jobs} == {"e2e-run-1"}
