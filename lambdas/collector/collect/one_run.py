"""One run at a time: a run that starts while another run of the same state machine is in progress
ends at once. discover asks this first, before the reporter role is assumed and before any
Organizations or IAM call, so a skipped run touches neither IAM nor S3.

Which run goes on is read from Step Functions' own record, `ListExecutions(statusFilter=RUNNING)`,
not from a lock of ours: there is nothing to release when a run fails, times out or is stopped.
Runs are ordered by start time (to the millisecond, the precision Step Functions gives both the
execution's `$$.Execution.StartTime` and `ListExecutions`' `startDate`), then by execution ARN. A run
goes on unless a RUNNING execution comes before it in that order. Every run applies the same order
to the same record, so two runs started in the same millisecond never both go on, and never both
stop. (ListExecutions is eventually consistent: two starts so close together that neither is yet
listed when the other asks could both go on. The schedule starts one run at a time; this guards the
schedule overlapping a long run, and a manual start during a run.)

A run that is itself being skipped still counts as in progress while it ends, so a start in that
instant is skipped too.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

from lambdas.collector.models import DiscoverEvent, RunInProgress

if TYPE_CHECKING:
    from mypy_boto3_stepfunctions import SFNClient


def _order(started_at: datetime, execution_arn: str) -> tuple[datetime, str]:
    started_at = started_at.astimezone(UTC)
    return started_at.replace(microsecond=started_at.microsecond // 1000 * 1000), execution_arn


def run_in_progress(stepfunctions: SFNClient, event: DiscoverEvent) -> RunInProgress | None:
    """The earliest run in progress that comes before this one (this run is then skipped); None when
    this run goes on."""
    mine = _order(event.started_at, event.execution_arn)
    pages = stepfunctions.get_paginator("list_executions").paginate(
        stateMachineArn=event.state_machine_arn, statusFilter="RUNNING"
    )
    earlier = [
        order
        for page in pages
        for execution in page["executions"]
        # Itself excluded by ARN, whatever precision the two records of its start time have.
        if execution["executionArn"] != event.execution_arn
        and (order := _order(execution["startDate"], execution["executionArn"])) < mine
    ]
    if not earlier:
        return None
    started_at, execution_arn = min(earlier)
    return RunInProgress(execution_arn=execution_arn, started_at=started_at)
