"""poll's entry point (wait-and-poll): read the batch's pending jobs, write completed first pages."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.typing import LambdaContext

from lambdas.collector.collect.jobs import poll_batch
from lambdas.collector.models import BatchState
from lambdas.collector.observability import logger, metrics, tracer
from lambdas.handlers.reporting import run_stage


@logger.inject_lambda_context
@metrics.log_metrics
@tracer.capture_lambda_handler
@event_parser(model=BatchState)
def handler(event: BatchState, context: LambdaContext) -> dict[str, Any]:
    return run_stage("poll", poll_batch, event, context)
