"""What a run costs on AWS, from counts measured on the emulator and AWS's list prices.

Prices: us-east-1, on-demand list prices, free tiers ignored, as published on the pages below
(checked 2026-11). Only what a run itself uses is counted; storage is the snapshot kept for one day.
Lambda bills an invocation's duration, its waits included: the benchmark counts each invocation's
time on the virtual clock (sleeps, IAM's answers) plus its computing time.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

# https://aws.amazon.com/step-functions/pricing/ — Standard workflows, per state transition
# (a Distributed Map's Standard child executions are billed the same way).
STEP_FUNCTIONS_TRANSITION = 0.025 / 1000
# https://aws.amazon.com/lambda/pricing/ — Arm, first 7.5 billion GB-seconds per month; requests.
LAMBDA_ARM_GB_SECOND = 0.0000133334
LAMBDA_REQUEST = 0.20 / 1_000_000
# https://aws.amazon.com/s3/pricing/ — S3 Standard: PUT, COPY, POST, LIST; GET and others; storage.
S3_PUT_LIST = 0.005 / 1000
S3_GET = 0.0004 / 1000
S3_GB_MONTH = 0.023
# https://aws.amazon.com/cloudwatch/pricing/ — Logs ingestion (standard class, incl. vended
# Step Functions logs at level ALL with execution data).
LOGS_INGESTED_GB = 0.50
# https://aws.amazon.com/sns/pricing/ — standard topic publishes (e-mail deliveries are free to 1,000).
SNS_PUBLISH = 0.50 / 1_000_000
# https://aws.amazon.com/xray/pricing/ — traces recorded.
XRAY_TRACE = 5.00 / 1_000_000
# https://aws.amazon.com/dynamodb/pricing/on-demand/ — on-demand write and read request units (the
# learned-limits table: items under 1 KB, so a write is one unit and a strongly consistent read one).
DYNAMODB_WRITE = 0.625 / 1_000_000
DYNAMODB_READ = 0.125 / 1_000_000

GB = 1024**3


@dataclass(frozen=True)
class RunUsage:
    state_transitions: int
    lambda_requests: int
    lambda_gb_seconds: float
    s3_put_list: int
    s3_get: int
    stored_bytes: int
    log_bytes: int
    sns_publishes: int
    traces: int
    dynamodb_writes: int = 0
    dynamodb_reads: int = 0


def cost(usage: RunUsage) -> dict[str, float]:
    """Dollars by service, and their total under `total`."""
    parts = {
        "step_functions": usage.state_transitions * STEP_FUNCTIONS_TRANSITION,
        "lambda": usage.lambda_gb_seconds * LAMBDA_ARM_GB_SECOND + usage.lambda_requests * LAMBDA_REQUEST,
        "s3": usage.s3_put_list * S3_PUT_LIST + usage.s3_get * S3_GET + usage.stored_bytes / GB * S3_GB_MONTH / 30,
        "cloudwatch_logs": usage.log_bytes / GB * LOGS_INGESTED_GB,
        "sns": usage.sns_publishes * SNS_PUBLISH,
        "xray": usage.traces * XRAY_TRACE,
        "dynamodb": usage.dynamodb_writes * DYNAMODB_WRITE + usage.dynamodb_reads * DYNAMODB_READ,
    }
    return {**{name: round(value, 6) for name, value in parts.items()}, "total": round(sum(parts.values()), 6)}


def gb_seconds(durations: Mapping[str, float], memory_mb: Mapping[str, int]) -> float:
    """Lambda GB-seconds from each function's summed duration and its configured memory."""
    return sum(seconds * memory_mb[name] / 1024 for name, seconds in durations.items())
