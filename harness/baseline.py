"""The collector a user would write without us, for `make bench` to measure ours against.

One target at a time: generate, sleep 2 s, poll until COMPLETED, page with IAM's default MaxItems
(100), then `pandas.json_normalize` the details and write one Parquet file per target, the way
awswrangler's `s3.to_parquet(df, path)` does (awswrangler itself does not install beside our
pyarrow 26: it requires pyarrow < 26). boto3 with its default (legacy) retries, one assumed-role
session for the whole run (it has to: only the generating session may read a report).

Its sleeps go through `sleep`, which the benchmark points at the emulator's clock: a 10,000-account
run that would take most of a day then costs only its computing time, and its wall time is that
computing time plus the seconds it slept.
"""

from __future__ import annotations

import io
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import boto3
import pandas as pd

if TYPE_CHECKING:
    from mypy_boto3_organizations import OrganizationsClient

POLL_SECONDS = 2


@dataclass
class BaselineResult:
    targets: int = 0
    rows: int = 0
    files: int = 0
    iam_calls: dict[str, int] = field(default_factory=dict)
    failed: int = 0
    write_seconds: float = 0.0  # thread CPU time spent normalizing and writing
    slept_seconds: float = 0.0
    compute_seconds: float = 0.0

    @property
    def wall_seconds(self) -> float:
        return self.compute_seconds + self.slept_seconds


def _targets(organizations: OrganizationsClient) -> list[str]:
    """Entity paths of the root, every OU and every member account (not the management account)."""
    org = organizations.describe_organization()["Organization"]
    paths: list[str] = []
    roots = organizations.list_roots()["Roots"]
    queue = [(root["Id"], f"{org['Id']}/{root['Id']}") for root in roots]
    paths.extend(path for _, path in queue)
    while queue:
        parent, path = queue.pop(0)
        for ous in organizations.get_paginator("list_organizational_units_for_parent").paginate(ParentId=parent):
            for ou in ous["OrganizationalUnits"]:
                queue.append((ou["Id"], f"{path}/{ou['Id']}"))
                paths.append(f"{path}/{ou['Id']}")
        for accounts in organizations.get_paginator("list_accounts_for_parent").paginate(ParentId=parent):
            paths.extend(f"{path}/{a['Id']}" for a in accounts["Accounts"] if a["Id"] != org["MasterAccountId"])
    return paths


def run_baseline(
    role_arn: str, bucket: str, *, sleep: Callable[[float], None] = time.sleep, prefix: str = "baseline/"
) -> BaselineResult:
    started = time.monotonic()
    credentials = boto3.client("sts").assume_role(RoleArn=role_arn, RoleSessionName="baseline")["Credentials"]
    session = boto3.Session(
        aws_access_key_id=credentials["AccessKeyId"],
        aws_secret_access_key=credentials["SecretAccessKey"],
        aws_session_token=credentials["SessionToken"],
    )
    iam, s3 = session.client("iam"), boto3.client("s3")
    result = BaselineResult()
    slept = 0.0

    def call(operation: str, **params: Any) -> dict[str, Any]:
        name = iam.meta.method_to_api_mapping[operation]
        result.iam_calls[name] = result.iam_calls.get(name, 0) + 1
        response: dict[str, Any] = getattr(iam, operation)(**params)
        return response

    dt = datetime.now(UTC).date().isoformat()
    for path in _targets(session.client("organizations")):
        result.targets += 1
        job_id = call("generate_organizations_access_report", EntityPath=path)["JobId"]
        while True:
            sleep(POLL_SECONDS)
            slept += POLL_SECONDS
            report = call("get_organizations_access_report", JobId=job_id)
            if report["JobStatus"] != "IN_PROGRESS":
                break
        if report["JobStatus"] == "FAILED":
            result.failed += 1
            continue
        details = list(report["AccessDetails"])
        while report.get("IsTruncated"):
            report = call("get_organizations_access_report", JobId=job_id, Marker=report["Marker"])
            details.extend(report["AccessDetails"])
        cpu = time.thread_time()
        frame = pd.json_normalize(details)
        frame["target_path"] = path
        frame["job_id"] = job_id
        frame["job_creation_date"] = report["JobCreationDate"]
        frame["collected_at"] = datetime.now(UTC)
        buffer = io.BytesIO()
        frame.to_parquet(buffer, index=False, compression="snappy")
        key = f"{prefix}dt={dt}/{path.replace('/', '_')}.snappy.parquet"
        s3.put_object(Bucket=bucket, Key=key, Body=buffer.getvalue())
        result.write_seconds += time.thread_time() - cpu
        result.rows += len(frame)
        result.files += 1
    result.slept_seconds = slept
    result.compute_seconds = time.monotonic() - started
    return result
