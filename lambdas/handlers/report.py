"""report's entry point: the day's report page, written to S3 beside the snapshot."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.typing import LambdaContext

from lambdas.collector.config import ReportSettings, load
from lambdas.collector.models import ReportEvent
from lambdas.collector.observability import logger, tracer
from lambdas.collector.report.daily import publish
from lambdas.collector.services import services


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@event_parser(model=ReportEvent)
def handler(event: ReportEvent, context: LambdaContext) -> dict[str, Any]:
    settings = load(ReportSettings)
    logger.set_correlation_id(event.run.run_id)
    s3 = services().s3
    page = publish(
        event.run,
        s3,
        window=settings.unused_after_days,
        trend_days=settings.report_trend_days,
        guardrails=event.guardrails,
        region=s3.meta.region_name,
    )
    logger.info("report page written", extra=page.model_dump(mode="json"))
    return page.model_dump(mode="json")
