"""The reporter role session: the one principal every IAM report call of a run goes through.

IAM lets only the principal that generated a report read it, and for a role that principal is the
assumed-role *session* (`assumed-role/ROLE/SESSION-NAME`). Generate, poll and fetch run in separate
Lambda functions with separate execution roles, so each assumes the reporter role with a session
name derived from the run id alone: every stage of a run acts as the same principal. Organizations
reads go through the same role, which is what the cross-account deployment needs.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, TypeVar

import boto3
from botocore.client import BaseClient
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from lambdas.collector.errors import ReporterRoleDeniedError, ReportSessionError

if TYPE_CHECKING:  # the boto3 stubs are a development dependency, never bundled
    from mypy_boto3_iam import IAMClient
    from mypy_boto3_organizations import OrganizationsClient
    from mypy_boto3_sts import STSClient
    from mypy_boto3_sts.type_defs import AssumeRoleRequestTypeDef

SESSION_PREFIX = "org-access-report"
SESSION_NAME_MAX = 64
_NOT_ALLOWED = re.compile(r"[^A-Za-z0-9_+=,.@-]")
# Renew credentials that would expire within this, so a 15-minute invocation never outlives them.
RENEW_BEFORE = timedelta(minutes=15)

# IAM's report APIs throttle per account with buckets that cannot be raised: adaptive mode adds
# client-side rate limiting to the retries. Organizations uses the same mode.
REPORT_RETRIES = Config(retries={"mode": "adaptive", "total_max_attempts": 12}, connect_timeout=10, read_timeout=60)
THROTTLING_CODES = frozenset({"Throttling", "ThrottlingException", "TooManyRequestsException", "RequestLimitExceeded"})

_Client = TypeVar("_Client", bound=BaseClient)


def policy_principal(caller_arn: str) -> str:
    """The ARN a trust policy names a caller by: an assumed-role session's role, a user as IAM writes it."""
    prefix, _, resource = caller_arn.partition(":sts::")
    if not resource:
        return caller_arn
    account, _, name = resource.partition(":")
    role = name.split("/")[1] if name.startswith("assumed-role/") else None
    return f"{prefix}:iam::{account}:{f'role/{role}' if role else name}"


def session_name(run_id: str) -> str:
    """`org-access-report-<run id>`, restricted to STS's alphabet and at most 64 characters.

    A run id that does not fit is cut and suffixed with a hash of the whole id, so two long run
    ids never share a session name.
    """
    name = f"{SESSION_PREFIX}-{_NOT_ALLOWED.sub('-', run_id)}"
    if len(name) <= SESSION_NAME_MAX and name == f"{SESSION_PREFIX}-{run_id}":
        return name
    digest = hashlib.sha256(run_id.encode()).hexdigest()[:12]
    return f"{name[: SESSION_NAME_MAX - len(digest) - 1]}-{digest}"


@dataclass
class ThrottleCounter:
    """Counts throttling answers that botocore's retries absorbed (they never reach our code)."""

    count: int = 0

    def __call__(self, response: Any = None, **_: Any) -> None:
        if response is None:
            return  # botocore ignores a None answer: this handler never changes retry decisions
        parsed = response[1] if isinstance(response, tuple) and len(response) > 1 else {}
        if isinstance(parsed, dict) and parsed.get("Error", {}).get("Code") in THROTTLING_CODES:
            self.count += 1


@dataclass
class _Assumed:
    session: boto3.Session
    expires: datetime
    iam: IAMClient | None = None
    organizations: OrganizationsClient | None = None


@dataclass
class ReportSession:
    """Assumes the reporter role once per run (and again before the credentials expire)."""

    sts: STSClient
    role_arn: str
    external_id: str | None
    duration_seconds: int
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    throttles: ThrottleCounter = field(default_factory=ThrottleCounter)
    _assumed: dict[str, _Assumed] = field(default_factory=dict)

    def iam(self, run_id: str) -> IAMClient:
        assumed = self._session(session_name(run_id))
        if assumed.iam is None:
            assumed.iam = self._counted(assumed.session.client("iam", config=REPORT_RETRIES))
        return assumed.iam

    def organizations(self, run_id: str) -> OrganizationsClient:
        assumed = self._session(session_name(run_id))
        if assumed.organizations is None:
            assumed.organizations = self._counted(assumed.session.client("organizations", config=REPORT_RETRIES))
        return assumed.organizations

    def _counted(self, client: _Client) -> _Client:
        # The event name botocore emits: `needs-retry.<service id, hyphenized>` (`iam`, `organizations`).
        client.meta.events.register(f"needs-retry.{client.meta.service_model.service_id.hyphenize()}", self.throttles)
        return client

    def _session(self, name: str) -> _Assumed:
        assumed = self._assumed.get(name)
        if assumed is not None and assumed.expires - self.clock() > RENEW_BEFORE:
            return assumed
        request: AssumeRoleRequestTypeDef = {
            "RoleArn": self.role_arn,
            "RoleSessionName": name,
            "DurationSeconds": self.duration_seconds,
        }
        if self.external_id:
            request["ExternalId"] = self.external_id
        try:
            credentials = self.sts.assume_role(**request)["Credentials"]
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") == "AccessDenied":
                raise ReporterRoleDeniedError(self._denied(error)) from error
            raise ReportSessionError(f"cannot assume the reporter role {self.role_arn}: {error}") from error
        except BotoCoreError as error:
            raise ReportSessionError(f"cannot assume the reporter role {self.role_arn}: {error}") from error
        session = boto3.Session(
            aws_access_key_id=credentials["AccessKeyId"],
            aws_secret_access_key=credentials["SecretAccessKey"],
            aws_session_token=credentials["SessionToken"],
        )
        expires = credentials["Expiration"]
        self._assumed = {name: _Assumed(session, expires if expires.tzinfo else expires.replace(tzinfo=UTC))}
        return self._assumed[name]

    def _denied(self, error: ClientError) -> str:
        """What STS said, who asked, and what to check: retrying cannot change a trust decision."""
        try:
            caller = self.sts.get_caller_identity()["Arn"]
        except (ClientError, BotoCoreError):
            caller = "this function's execution role"
        sent = "an ExternalId (setting external_id)" if self.external_id else "no ExternalId (external_id unset)"
        principal = policy_principal(caller)
        return (
            f"cannot assume the reporter role {self.role_arn} as {caller}: STS answered AccessDenied "
            f"({error.response['Error'].get('Message', '')}). This call sent {sent}. Check: "
            f"1. the role's trust policy names the collector's account or {principal}; "
            "2. external_id equals the trust policy's sts:ExternalId (both unset when the role is in the "
            "collector's stack); "
            "3. reporter_role_arn names the role the reporter stack deployed in the organization's management "
            "account (make deploy-reporter); "
            f"4. no SCP or permissions boundary denies {principal} sts:AssumeRole. "
            "Not retried: retrying does not change a trust decision."
        )
