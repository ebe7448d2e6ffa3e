"""alert's entry point: one SNS message per run about unused services and problem jobs."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.typing import LambdaContext

from lambdas.collector.config import AlertSettings, load
from lambdas.collector.models import AlertEvent
from lambdas.collector.notify.alert import send_alert
from lambdas.collector.observability import logger, metrics, tracer
from lambdas.collector.services import services


@logger.inject_lambda_context
@metrics.log_metrics
@tracer.capture_lambda_handler
@event_parser(model=AlertEvent)
def handler(event: AlertEvent, context: LambdaContext) -> dict[str, Any]:
    settings = load(AlertSettings)
    logger.set_correlation_id(event.run.run_id)
    aws = services()
    result = send_alert(event, settings, aws.s3, aws.sns)
    logger.info("alert", extra=result.model_dump(mode="json"))
    return result.model_dump(mode="json")
