"""discover's entry point: the run's targets, as a manifest of batches in S3 (or, while another run of
the state machine is in progress, this run skipped)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.parser import event_parser
from aws_lambda_powertools.utilities.typing import LambdaContext

from lambdas.collector.collect.discover import discover
from lambdas.collector.collect.one_run import run_in_progress
from lambdas.collector.collect.warm_up import WarmUp
from lambdas.collector.config import DiscoverSettings, load
from lambdas.collector.models import DiscoverEvent
from lambdas.collector.names import Metric
from lambdas.collector.observability import count, logger, metrics, tracer
from lambdas.collector.services import services


@logger.inject_lambda_context
@metrics.log_metrics
@tracer.capture_lambda_handler
@event_parser(model=DiscoverEvent)
def handler(event: DiscoverEvent, context: LambdaContext) -> dict[str, Any]:
    settings = load(DiscoverSettings)
    logger.set_correlation_id(event.run_id)
    aws = services()
    in_progress = run_in_progress(aws.stepfunctions, event)  # before the reporter role is assumed
    if in_progress is not None:
        count(Metric.RUNS_SKIPPED, 1)
        logger.warning(
            "run skipped: another run is in progress", extra={"run_in_progress": in_progress.model_dump(mode="json")}
        )
        return {"skipped": True, "run_in_progress": in_progress.model_dump(mode="json")}
    reporter = aws.reporter(settings)
    found = discover(
        event,
        settings,
        reporter.organizations(event.run_id),
        aws.s3,
        limits_of=lambda org: aws.limits(settings.limits_table, org),
        now=aws.clock(),
        warm_up=WarmUp(
            iam=lambda: reporter.iam(event.run_id),
            clock=aws.clock,
            sleep=aws.sleep,
            throttle_count=lambda: reporter.throttles.count,
        ),
    )
    count(Metric.TARGETS_DISCOVERED, found.run.targets)
    if found.skipped_exclude_ids:
        logger.warning("EXCLUDE_IDS not in the organization", extra={"ids": found.skipped_exclude_ids})
    logger.info(
        "targets discovered",
        extra={
            "targets": found.by_type,
            "batches": found.run.batches,
            "lanes": found.run.lanes,
            "learned": found.learned,
        },
    )
    return {"skipped": False, "run": found.run.model_dump(mode="json")}
