"""What generate, poll and fetch report after an invocation: metrics, one log line, the payload."""

from __future__ import annotations

from typing import Any

from lambdas.collector.jobs import StageResult
from lambdas.collector.models import JobStatus
from lambdas.collector.observability import Metric, count, logger


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
            "finished": {status.value: n for status, n in result.finished.items()},
            "pending": payload["pending"],
            "truncated": payload["truncated"],
            "pages": result.pages,
            "rows": result.rows,
            "iam_calls": result.iam_calls,
            "throttles": throttles,
            "wait_seconds": result.state.wait_seconds,
        },
    )
    return payload
