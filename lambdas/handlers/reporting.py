"""What generate, poll and fetch share: the checkpoint an earlier attempt left (a retry resumes from it),
the run's reporter session and budget around the stage's work, then what they report after it:
metrics, one log line, the payload."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from lambdas.collector.collect.jobs import StageResult
from lambdas.collector.collect.limits import Ceiling, SharedLimits
from lambdas.collector.collect.pacing import Budget, Pacer
from lambdas.collector.config import ReporterSettings, load
from lambdas.collector.models import BatchState, JobStatus, RunContext
from lambdas.collector.names import Metric
from lambdas.collector.observability import count, logger
from lambdas.collector.services import Services, services
from lambdas.collector.store.parts import Checkpoint, Parts, resume

if TYPE_CHECKING:
    from mypy_boto3_iam import IAMClient
    from mypy_boto3_s3 import S3Client

# start_batch, poll_batch, fetch_batch: (state, iam, s3, budget, checkpoint) -> what the invocation did
Stage = Callable[[BatchState, "IAMClient", "S3Client", Budget, Checkpoint | None], StageResult]


def run_stage(name: str, work: Stage, state: BatchState, context: LambdaContext) -> dict[str, Any]:
    """One invocation of a reporting stage: settings, the checkpoint of an earlier attempt (a retry
    goes on from it, or answers the output of one that had ended), the run's reporter session, the
    budget, the work, and its report (throttles counted over this invocation)."""
    settings = load(ReporterSettings)
    logger.set_correlation_id(state.run.run_id)
    aws = services()
    checkpoint = resume(aws.s3, Parts.of(state, name))
    if checkpoint is not None and checkpoint.done:
        return finish(name, StageResult(checkpoint.state, resumed=checkpoint.parts, replayed=True), 0)
    reporter = aws.reporter(settings)
    throttles = reporter.throttles.count
    iam = reporter.iam(state.run.run_id)
    limits = SharedLimits(
        aws.limits(settings.limits_table, state.run.organization_id),
        Ceiling.of(state.run),
        lane=f"batch-{state.batch}",
        run_id=state.run.run_id,
        clock=aws.clock,
        throttle_count=lambda: reporter.throttles.count,
    )
    result = work(state, iam, aws.s3, budget(state.run, settings, context, aws, limits), checkpoint)
    return finish(name, result, reporter.throttles.count - throttles)


def budget(
    run: RunContext, settings: ReporterSettings, context: LambdaContext, aws: Services, limits: SharedLimits
) -> Budget:
    """The invocation's pace (the batch's share of the learned call rate), its grants of jobs, its
    time and what "now" is."""
    return Budget(
        # Paced on the same clock as everything else, so an emulator that moves time moves the pace too.
        pacer=Pacer(limits.calls_per_second, monotonic=lambda: aws.clock().timestamp(), sleep=aws.sleep),
        limits=limits,
        time_left_ms=context.get_remaining_time_in_millis,
        margin_ms=settings.safety_margin_seconds * 1000,
        clock=aws.clock,
        sleep=aws.sleep,
    )


def finish(stage: str, result: StageResult, throttles: int) -> dict[str, Any]:
    """Emit the stage's metrics and log line; return the state machine's payload."""
    failed = sum(n for status, n in result.finished.items() if status is not JobStatus.COMPLETED)
    count(Metric.REPORTS_GENERATED, result.started)
    count(Metric.REPORT_JOBS_FAILED, failed)
    count(Metric.PAGES_FETCHED, result.pages)
    count(Metric.ROWS_WRITTEN, result.rows)
    count(Metric.IAM_THROTTLES, throttles)
    payload = result.state.payload()
    logger.info(
        f"{stage} done",
        extra={
            "batch": result.state.batch,
            "started": result.started,
            "refused": result.refused,
            "finished": {status.value: n for status, n in result.finished.items()},
            "pending": payload["pending"],
            "truncated": payload["truncated"],
            "pages": result.pages,
            "rows": result.rows,
            "iam_calls": result.iam_calls,
            "throttles": throttles,
            "wait_seconds": result.state.wait_seconds,
            "write_cpu_seconds": round(result.write_seconds, 4),
            "paced_seconds": round(result.paced_seconds, 3),
            # A retry: the parts its killed attempt had written, not read again (and whether it had ended).
            "resumed_after_parts": result.resumed,
            "replayed": result.replayed,
        },
    )
    return payload
