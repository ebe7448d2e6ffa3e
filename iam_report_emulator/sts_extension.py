"""moto extension: `sts:AssumeRole` evaluates the role's trust policy, as STS does.

moto lets any caller assume any role. With this installed, a role moto holds is assumed only if its
trust policy (`AssumeRolePolicyDocument`) admits the caller and the request (`trust.admits`: principal,
`sts:ExternalId`, `aws:PrincipalArn`, …); otherwise STS's answer: `AccessDenied`, HTTP 403, "User: <caller>
is not authorized to perform: sts:AssumeRole on resource: <role>". A role moto does not hold is
assumed as moto always did (so a test may act as a role it never created).

The caller is what moto knows of the request's credentials: a session moto issued (its role is the
principal), an IAM user's access key, or, for credentials moto did not issue, moto's default principal
of the account the request is made in (`arn:aws:iam::ACCOUNT:user/moto` here; moto's GetCallerIdentity
names it `arn:aws:sts::ACCOUNT:user/moto`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import unquote

from moto.core.exceptions import ServiceException
from moto.core.responses import ActionResult
from moto.iam.models import iam_backends
from moto.sts.models import sts_backends
from moto.sts.responses import TokenResponse

from iam_report_emulator.trust import AssumeRoleRequest, Caller, admits, policy_principal


class AccessDenied(ServiceException):
    """Not in STS's model for AssumeRole (moto would answer 400): answered with `http_status`."""

    code = "AccessDenied"
    http_status = 403


def denial(caller: Caller, role_arn: str) -> AccessDenied:
    return AccessDenied(f"User: {caller.arn} is not authorized to perform: sts:AssumeRole on resource: {role_arn}")


def caller_of(response: TokenResponse) -> Caller:
    """The principal of the request's credentials, as moto knows it."""
    account, partition = response.current_account, response.partition
    sts = sts_backends[account][partition]
    session = sts.get_assumed_role_from_access_key(response.get_access_key())
    if session is not None:
        role = _held_role(session.role_arn, partition)
        return Caller(session.arn, session.account_id, role.arn if role else session.role_arn, "AssumedRole")
    _, arn, account = sts.get_caller_identity(response.get_access_key(), response.region)
    if arn.endswith(":root"):
        return Caller(arn, account, arn, "Account")
    user = policy_principal(arn)  # moto names its default principal with `sts`; a user is IAM's
    return Caller(user, account, user, "User")


def _held_role(role_arn: str, partition: str) -> Any:
    """The role moto holds for `role_arn` (matched by account and name, as moto's sessions are), or None."""
    parts = role_arn.split(":", 5)
    if len(parts) != 6 or parts[2] != "iam" or not parts[5].startswith("role/"):
        return None
    name = parts[5].rsplit("/", 1)[-1]
    backend = iam_backends[parts[4]][partition]
    return next((role for role in backend.roles.values() if role.name == name), None)


_ORIGINAL_ASSUME_ROLE: Callable[[TokenResponse], Any] = TokenResponse.assume_role


def assume_role(self: TokenResponse) -> Any:
    role_arn = self._get_param("RoleArn")
    role = _held_role(role_arn, self.partition) if isinstance(role_arn, str) else None
    if role is not None:
        caller = caller_of(self)
        request = AssumeRoleRequest(role_arn, self._get_param("RoleSessionName"), self._get_param("ExternalId"))
        document = role.assume_role_policy_document
        if not admits(document if document.lstrip().startswith("{") else unquote(document), caller, request):
            _, headers, body = self.serialized(ActionResult(denial(caller, role_arn)))
            return body, {**headers, "status": str(AccessDenied.http_status)}
    return _ORIGINAL_ASSUME_ROLE(self)


def install() -> None:
    """Evaluate trust policies on AssumeRole (idempotent)."""
    TokenResponse.assume_role = assume_role  # type: ignore[method-assign]
