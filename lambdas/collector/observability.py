"""Powertools Logger, Tracer and Metrics shared by every function, and the metric names.

Service name and metrics namespace come from the functions' environment
(`POWERTOOLS_SERVICE_NAME`, `POWERTOOLS_METRICS_NAMESPACE`, set by the CDK app), and default to
the product's own names so that metrics are never dropped for want of a namespace.
"""

from __future__ import annotations

import os
from enum import StrEnum

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit

SERVICE = "org-access-report"
NAMESPACE = "OrgAccessReport"

logger = Logger(service=os.environ.get("POWERTOOLS_SERVICE_NAME", SERVICE))
tracer = Tracer(service=os.environ.get("POWERTOOLS_SERVICE_NAME", SERVICE))
metrics = Metrics(namespace=os.environ.get("POWERTOOLS_METRICS_NAMESPACE", NAMESPACE))


class Metric(StrEnum):
    TARGETS_DISCOVERED = "TargetsDiscovered"
    REPORTS_GENERATED = "ReportsGenerated"
    REPORT_JOBS_FAILED = "ReportJobsFailed"
    PAGES_FETCHED = "PagesFetched"
    ROWS_WRITTEN = "RowsWritten"
    UNUSED_SERVICES = "UnusedServices"
    NEWLY_UNUSED_SERVICES = "NewlyUnusedServices"
    IAM_THROTTLES = "IamThrottles"


def count(metric: Metric, value: int) -> None:
    metrics.add_metric(name=metric.value, unit=MetricUnit.Count, value=value)
