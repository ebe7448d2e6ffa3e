"""boto3 clients for the emulator: plain ones, and ones acting as an assumed-role session (the reporter role's)."""

from __future__ import annotations

from typing import Any

import boto3
from botocore.config import Config

from lambdas.collector.names import REPORTER_ROLE

REGION = "us-east-1"
CLIENT_RETRIES = Config(retries={"mode": "standard", "max_attempts": 10})


def client(
    service: str,
    endpoint_url: str | None = None,
    config: Config | None = None,
    credentials: dict[str, str] | None = None,
) -> Any:
    """A client in the harness's region; `endpoint_url` None means in-process (under `mock_aws`).
    `credentials` is STS's Credentials dict; None means the environment's."""
    keys = credentials or {}
    return boto3.client(
        service,  # type: ignore[call-overload]
        region_name=REGION,
        endpoint_url=endpoint_url,
        config=config or CLIENT_RETRIES,
        aws_access_key_id=keys.get("AccessKeyId"),
        aws_secret_access_key=keys.get("SecretAccessKey"),
        aws_session_token=keys.get("SessionToken"),
    )


def role_session_client(
    service: str,
    role_arn: str,
    session_name: str,
    endpoint_url: str | None = None,
    config: Config | None = None,
) -> Any:
    """A client whose principal is `arn:aws:sts::ACCOUNT:assumed-role/ROLE/session_name`."""
    sts = client("sts", endpoint_url)
    credentials = sts.assume_role(RoleArn=role_arn, RoleSessionName=session_name)["Credentials"]
    return client(service, endpoint_url, config, credentials)


def reporter_role_arn(account_id: str) -> str:
    """The reporter role's ARN in `account_id` (the organization's management account). moto lets any role
    be assumed, so the emulator needs no such role to exist."""
    return f"arn:aws:iam::{account_id}:role/{REPORTER_ROLE}"
