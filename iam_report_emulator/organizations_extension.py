"""moto extension: Organizations throttles the calls of an account, as AWS documents it does.

The rate is not published: `ReportSettings.organizations_rate_limit` sets it (one token bucket for every
Organizations operation of the calling account, on the emulator's clock). A call that finds no token is
answered as Organizations answers it: `TooManyRequestsException`, HTTP 400, with its words;
botocore's `standard` and `adaptive` retry modes retry it as a throttle. Every call is counted by
operation (`AccessReportStore.organizations_throttler.counters`), throttled or not.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from moto.core.exceptions import ServiceException
from moto.core.responses import ActionResult
from moto.organizations.responses import OrganizationsResponse

from iam_report_emulator.stores import store_for_account


class TooManyRequestsException(ServiceException):
    """Organizations' throttle (no HTTP status in its model: 400 as for every client error)."""

    code = "TooManyRequestsException"
    # As Organizations answered callers (quoted in their bug reports, 2025); its model's documentation adds
    # a sentence on denial-of-service attacks.
    message = "You have sent too many requests in too short a period of time. Try again later."


_ORIGINAL_CALL_ACTION: Callable[[OrganizationsResponse], Any] = OrganizationsResponse.call_action


def call_action(self: OrganizationsResponse) -> Any:
    if not store_for_account(self.current_account, self.partition).admit_organizations(self._get_action()):
        return self.serialized(ActionResult(TooManyRequestsException()))
    return _ORIGINAL_CALL_ACTION(self)


def install() -> None:
    """Let Organizations throttle (idempotent; unthrottled until a rate is set)."""
    OrganizationsResponse.call_action = call_action  # type: ignore[method-assign,assignment]
