"""recommend's entry point: the day's guardrail SCP recommendations (proposed, never attached)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.typing import LambdaContext

from lambdas.collector.config import RecommendSettings, load
from lambdas.collector.guardrails.daily import recommendations, write
from lambdas.collector.models import RecommendEvent
from lambdas.collector.names import Metric
from lambdas.collector.observability import count, logger, metrics, tracer
from lambdas.collector.services import services


@logger.inject_lambda_context
@metrics.log_metrics
@tracer.capture_lambda_handler
@event_parser(model=RecommendEvent)
def handler(event: RecommendEvent, context: LambdaContext) -> dict[str, Any]:
    settings = load(RecommendSettings)
    logger.set_correlation_id(event.run.run_id)
    s3 = services().s3
    summary = write(recommendations(event.run, settings, settings, s3), event.run, s3)
    count(Metric.GUARDRAILS_PROPOSED, summary.by_status.get("PROPOSED", 0))
    count(Metric.GUARDRAIL_SERVICES_NEW, summary.new)
    logger.info("guardrails recommended", extra=summary.model_dump(mode="json"))
    return summary.model_dump(mode="json")
