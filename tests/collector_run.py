"""The collector's functions chained by hand, the way the state machine chains them.

Events go through JSON, as Step Functions passes them, and every invocation gets a Lambda context.
`on_wait` receives each Wait state's seconds; by default the emulator's clock (the clock of the reporter
role's account, which the functions also read through `services().clock`) moves on by them.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pyarrow as pa

from harness.clients import client
from iam_report_emulator import store_for_account
from lambdas.collector.collect.limits import KEY_ATTRIBUTE
from lambdas.collector.names import Layout
from lambdas.collector.store.schema import ACCESS_DETAILS, REPORT_JOBS
from lambdas.collector.store.storage import get_table, list_keys
from lambdas.handlers import discover, fetch, finalize, generate, poll

BUCKET = "collector-data"
LIMITS_TABLE = "collector-limits"
BY_HAND = "collector-by-hand"


def create_limits_table(name: str = LIMITS_TABLE) -> None:
    """The learned limits' table, as the stack creates it (its key from the code that reads it)."""
    client("dynamodb").create_table(
        TableName=name,
        KeySchema=[{"AttributeName": KEY_ATTRIBUTE, "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": KEY_ATTRIBUTE, "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )


@dataclass
class FakeContext:
    function_name: str = "collector-test"
    memory_limit_in_mb: int = 1024
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:collector-test"
    aws_request_id: str = "c0ffee00-0000-4000-8000-000000000000"
    remaining_ms: int = 900_000

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_ms


def invoke(handler: Callable[..., Any], event: Any, context: FakeContext | None = None) -> Any:
    result = handler(json.loads(json.dumps(event, default=str)), context or FakeContext())
    return json.loads(json.dumps(result))


def emulator_wait(seconds: int) -> None:
    """A Wait state, as time passing in the emulator of the reporter role's account."""
    store_for_account(os.environ["REPORT_ROLE_ARN"].split(":")[4]).clock.advance(seconds)


@dataclass
class Run:
    run: dict[str, Any]
    states: list[dict[str, Any]] = field(default_factory=list)  # every stage's output, in order
    snapshot: dict[str, Any] | None = None

    @property
    def invocations(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for state in self.states:
            counts[state["stage"]] = counts.get(state["stage"], 0) + 1
        return counts


def collect_batches(
    run: dict[str, Any],
    manifest: list[dict[str, Any]],
    on_wait: Callable[[int], None] = emulator_wait,
    max_rounds: int = 500,
) -> list[dict[str, Any]]:
    states: list[dict[str, Any]] = []
    for item in manifest:
        state = invoke(generate.handler, {"run": run, "batch": item})
        states.append({"stage": "generate", **state})
        for _ in range(max_rounds):
            if state["truncated"]:
                state = invoke(fetch.handler, state)
                states.append({"stage": "fetch", **state})
            elif state["pending"]:
                on_wait(state["wait_seconds"])
                state = invoke(poll.handler, state)
                states.append({"stage": "poll", **state})
            else:
                break
    return states


def state_machine() -> str:
    """The state machine the chain by hand stands for, in moto (made on first use; nothing runs in it)."""
    sfn = client("stepfunctions")
    for machine in sfn.list_state_machines()["stateMachines"]:
        if machine["name"] == BY_HAND:
            return str(machine["stateMachineArn"])
    definition = {"StartAt": "ByHand", "States": {"ByHand": {"Type": "Succeed"}}}
    role = "arn:aws:iam::123456789012:role/by-hand"
    return str(
        sfn.create_state_machine(name=BY_HAND, definition=json.dumps(definition), roleArn=role)["stateMachineArn"]
    )


def discover_event(run_id: str, started_at: datetime, options: dict[str, Any] | None = None) -> dict[str, Any]:
    """discover's event as the state machine builds it, for an execution `run_id` of `state_machine()`."""
    machine = state_machine()
    return {
        "run_id": run_id,
        "started_at": started_at.isoformat(),
        "state_machine_arn": machine,
        "execution_arn": f"{machine.replace(':stateMachine:', ':execution:')}:{run_id}",
        "options": options or {},
    }


def discover_run(
    s3: Any, run_id: str, started_at: datetime, options: dict[str, Any] | None = None
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """discover's result (the run context) and the manifest of batches it wrote."""
    context = invoke(discover.handler, discover_event(run_id, started_at, options))["run"]
    manifest = json.loads(s3.get_object(Bucket=context["bucket"], Key=context["manifest_key"])["Body"].read())
    return context, manifest


def run_by_hand(
    s3: Any,
    run_id: str,
    started_at: datetime,
    *,
    options: dict[str, Any] | None = None,
    on_wait: Callable[[int], None] = emulator_wait,
    max_rounds: int = 500,
) -> Run:
    context, manifest = discover_run(s3, run_id, started_at, options)
    run = Run(context, collect_batches(context, manifest, on_wait, max_rounds))
    run.snapshot = invoke(finalize.handler, {"run": context})
    return run


def snapshot(s3: Any, dt: str, prefix: str = "") -> tuple[pa.Table, pa.Table]:
    """The day's `access_details` and `report_jobs`, as a query would read them."""
    layout = Layout(prefix)
    tables = []
    for dataset in (ACCESS_DETAILS, REPORT_JOBS):
        keys = list_keys(s3, BUCKET, layout.partition(dataset, dt))
        tables.append(pa.concat_tables([get_table(s3, BUCKET, key, dataset) for key in keys]))
    return tables[0], tables[1]
