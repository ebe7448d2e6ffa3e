"""generate's entry point: start the report jobs of one batch."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.typing import LambdaContext

from lambdas.collector.collect.jobs import start_batch
from lambdas.collector.models import BatchState, GenerateEvent
from lambdas.collector.observability import logger, metrics, tracer
from lambdas.handlers.reporting import run_stage


@logger.inject_lambda_context
@metrics.log_metrics
@tracer.capture_lambda_handler
@event_parser(model=GenerateEvent)
def handler(event: GenerateEvent, context: LambdaContext) -> dict[str, Any]:
    state = BatchState(run=event.run, batch=event.batch.batch, jobs=event.batch.jobs())
    return run_stage("generate", start_batch, state, context)
