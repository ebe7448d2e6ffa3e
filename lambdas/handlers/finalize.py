"""finalize's entry point: the day's snapshot from the run's parts.

Its counts are in the result and the log line; the stages already emitted the run's metrics.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.typing import LambdaContext

from lambdas.collector.config import FinalizeSettings, load
from lambdas.collector.models import FinalizeEvent
from lambdas.collector.observability import logger, tracer
from lambdas.collector.services import services
from lambdas.collector.store.snapshot import finalize


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@event_parser(model=FinalizeEvent)
def handler(event: FinalizeEvent, context: LambdaContext) -> dict[str, Any]:
    settings = load(FinalizeSettings)
    logger.set_correlation_id(event.run.run_id)
    summary = finalize(event.run, services().s3, settings.rows_per_file)
    logger.info("snapshot written", extra=summary.model_dump(mode="json"))
    return summary.model_dump(mode="json")
