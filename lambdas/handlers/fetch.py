"""fetch's entry point (paginate-fetch): follow the markers of truncated reports."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.typing import LambdaContext

from lambdas.collector.config import ReporterSettings, load
from lambdas.collector.jobs import fetch_batch
from lambdas.collector.models import BatchState
from lambdas.collector.observability import logger, metrics, tracer
from lambdas.collector.services import services
from lambdas.handlers.reporting import budget, finish


@logger.inject_lambda_context
@metrics.log_metrics
@tracer.capture_lambda_handler
@event_parser(model=BatchState)
def handler(event: BatchState, context: LambdaContext) -> dict[str, Any]:
    settings = load(ReporterSettings)
    logger.set_correlation_id(event.run.run_id)
    aws = services()
    reporter = aws.reporter(settings)
    throttles = reporter.throttles.count
    result = fetch_batch(
        event, reporter.iam(event.run.run_id), aws.s3, settings.layout, budget(event.run, settings, context, aws)
    )
    return finish("fetch", result, reporter.throttles.count - throttles)
