"""fetch's entry point (paginate-fetch): follow the markers of truncated reports."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.typing import LambdaContext

from lambdas.collector.config import FetchSettings, load
from lambdas.collector.jobs import fetch_batch
from lambdas.collector.models import BatchState
from lambdas.collector.observability import logger, metrics, tracer
from lambdas.collector.services import services
from lambdas.handlers.reporting import finish


@logger.inject_lambda_context
@metrics.log_metrics
@tracer.capture_lambda_handler
@event_parser(model=BatchState)
def handler(event: BatchState, context: LambdaContext) -> dict[str, Any]:
    settings = load(FetchSettings)
    logger.set_correlation_id(event.run.run_id)
    aws = services()
    reporter = aws.reporter(settings)
    margin_ms = settings.fetch_safety_margin_seconds * 1000
    throttles = reporter.throttles.count
    iam = reporter.iam(event.run.run_id)
    result = fetch_batch(
        event, iam, aws.s3, settings.layout, time_left_ms=context.get_remaining_time_in_millis, margin_ms=margin_ms
    )
    return finish("fetch", result, reporter.throttles.count - throttles)
