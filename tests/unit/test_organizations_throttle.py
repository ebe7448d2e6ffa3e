"""The emulator's Organizations throttle: one token bucket for every Organizations call of an account,
answered as Organizations answers it, set through the settings and the command line."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from botocore.exceptions import ClientError

from harness.clients import client
from iam_report_emulator import store_for_account
from iam_report_emulator.cli import organizations_rate_limit, parse_args, seed_and_configure
from iam_report_emulator.clock import EmulatorClock
from iam_report_emulator.presets import apply_preset
from iam_report_emulator.throttling import EVERY_OPERATION, RateLimit, Throttler
from tests.conftest import NO_RETRIES

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def test_every_operation_without_a_limit_of_its_own_shares_the_services_bucket() -> None:
    clock = EmulatorClock()
    clock.freeze(T0)
    throttler = Throttler(clock.now)
    throttler.configure(limits={EVERY_OPERATION: RateLimit(rate=1, burst=2), "Own": RateLimit(rate=1, burst=1)})
    assert [throttler.admit("ListRoots"), throttler.admit("ListAccountsForParent"), throttler.admit("ListRoots")] == [
        True,
        True,
        False,
    ]
    assert throttler.admit("Own")  # its own bucket
    clock.advance(1)
    assert [throttler.admit("DescribePolicy"), throttler.admit("ListRoots")] == [True, False]
    assert throttler.counters.throttled == {"ListRoots": 2}


def test_organizations_answers_too_many_requests_beyond_the_rate_and_counts_every_call(aws: None) -> None:
    spec = apply_preset("demo", seed=7)
    store = store_for_account(spec.management_account_id)
    organizations = client("organizations", config=NO_RETRIES)
    organizations.list_roots()  # unthrottled by default
    store.configure(organizations_rate_limit=RateLimit(rate=1, burst=2))
    store.clock.freeze(store.clock.now())
    organizations.describe_organization()
    organizations.list_roots()
    with pytest.raises(ClientError) as refused:
        organizations.list_roots()
    error = refused.value.response
    assert (error["Error"]["Code"], error["ResponseMetadata"]["HTTPStatusCode"]) == ("TooManyRequestsException", 400)
    assert (
        error["Error"]["Message"] == "You have sent too many requests in too short a period of time. Try again later."
    )
    store.clock.advance(1)
    organizations.list_roots()  # a token back after a second
    counters = store.organizations_throttler.counters
    assert counters.calls == {"ListRoots": 4, "DescribeOrganization": 1}
    assert counters.throttled == {"ListRoots": 1}
    assert sum(store.throttler.counters.calls.values()) == 0  # the IAM report calls' counters are apart
    store.configure(organizations_rate_limit=None)
    assert all(organizations.list_roots() for _ in range(5))


def test_the_command_line_sets_the_organizations_rate_and_burst(aws: None) -> None:
    spec = seed_and_configure(parse_args(["serve", "--organizations-rate", "4", "--organizations-burst", "8"]))
    assert store_for_account(spec.management_account_id).settings.organizations_rate_limit == RateLimit(4, 8)
    assert organizations_rate_limit(0.5, None) == RateLimit(0.5, 1)  # the burst: one second's calls, at least one
    assert organizations_rate_limit(None, 8) is None  # unthrottled unless a rate is given
