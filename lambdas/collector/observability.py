"""Powertools Logger, Tracer and Metrics shared by every function (names in `lambdas.collector.names`).

Service name and metrics namespace come from the functions' environment
(`POWERTOOLS_SERVICE_NAME`, `POWERTOOLS_METRICS_NAMESPACE`, set by the CDK app), and default to
the product's own names so that metrics are never dropped for want of a namespace.
"""

from __future__ import annotations

import os

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit

from lambdas.collector.names import NAMESPACE, SERVICE, Metric

logger = Logger(service=os.environ.get("POWERTOOLS_SERVICE_NAME", SERVICE))
tracer = Tracer(service=os.environ.get("POWERTOOLS_SERVICE_NAME", SERVICE))
metrics = Metrics(namespace=os.environ.get("POWERTOOLS_METRICS_NAMESPACE", NAMESPACE))


def count(metric: Metric, value: int) -> None:
    metrics.add_metric(name=metric.value, unit=MetricUnit.Count, value=value)
