"""Fault case 7, second half: Organizations throttles discover's walk of a 10,000-account organization.

discover's handler walks the `large` preset (10,000 accounts, 1,250 OUs) through the reporter session
(botocore's adaptive retries, 12 attempts) while the emulator holds every Organizations call of the
management account to one token bucket. On a virtual clock: the throttle's waits, botocore's back-off and
its client-side limiter take virtual time only, so a walk of several virtual minutes takes seconds.

The run is compared with an unthrottled one of the same organization: the same tree, the same SCPs, the
same targets. The throttles are counted twice, by the emulator and by the collector, and the calls each
parent needs are computed from the organization's shape and compared with the calls made.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from harness.clients import client
from harness.virtual_time import VirtualClock, simulated
from iam_report_emulator import store_for_account
from iam_report_emulator.presets import apply_preset
from iam_report_emulator.seed import OrganizationSpec
from iam_report_emulator.throttling import RateLimit
from infra.config import load_config
from infra.stack import function_specs
from lambdas.collector.config import DiscoverSettings, load
from lambdas.collector.names import Function
from lambdas.collector.services import services
from tests.collector_run import BUCKET, LIMITS_TABLE, create_limits_table, discover_run
from tests.conftest import REPORTER_ROLE

# Organizations' rate is not published: 10 calls per second for the whole account, bursts of 20.
THROTTLE = RateLimit(rate=10, burst=20)
PAGE = 20  # Organizations' most items per page of ListOrganizationalUnitsForParent / ListAccountsForParent
STARTED = datetime(2026, 11, 24, 23, 0, tzinfo=UTC)


@pytest.fixture
def large_org(aws: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[OrganizationSpec]:
    """The `large` preset with the collector's environment, as the CDK app sets discover's."""
    spec = apply_preset("large", seed=7)
    env = {
        "DATA_BUCKET": BUCKET,
        "REPORT_ROLE_ARN": f"arn:aws:iam::{spec.management_account_id}:role/{REPORTER_ROLE}",
        "LIMITS_TABLE": LIMITS_TABLE,
        "POWERTOOLS_SERVICE_NAME": "org-access-report",
        "POWERTOOLS_METRICS_NAMESPACE": "OrgAccessReport",
        "POWERTOOLS_TRACE_DISABLED": "true",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    client("s3").create_bucket(Bucket=BUCKET)
    create_limits_table()
    services.cache_clear()
    yield spec
    services.cache_clear()


def discovered(s3: Any, context: dict[str, Any]) -> tuple[list[dict[str, Any]], list[str]]:
    """The organization discover read (every node with its SCPs) and every target it selected."""
    run = f"runs/{context['run_id']}/"
    organization = json.loads(s3.get_object(Bucket=BUCKET, Key=f"{run}organization.json")["Body"].read())
    plan = json.loads(s3.get_object(Bucket=BUCKET, Key=f"{run}plan.json")["Body"].read())
    return organization["nodes"], sorted(json.dumps(entry["target"], sort_keys=True) for entry in plan)


def calls_needed(spec: OrganizationSpec) -> Counter[str]:
    """The Organizations calls a walk of `spec` needs, page by page, none throttled."""
    parents = [spec.root_id, *(ou.id for ou in spec.ous)]
    ous, accounts = Counter(ou.parent_id for ou in spec.ous), Counter(a.parent_id for a in spec.accounts)

    def pages(items: int) -> int:
        return max(1, math.ceil(items / PAGE))

    return Counter(
        {
            "DescribeOrganization": 1,
            "ListRoots": 1,
            "ListOrganizationalUnitsForParent": sum(pages(ous[p]) for p in parents),
            "ListAccountsForParent": sum(pages(accounts[p]) for p in parents),
            "ListPoliciesForTarget": len(parents),  # a node holds at most 10 SCPs: one page
            # each SCP attached to the root or an OU once, FullAWSAccess among them
            "DescribePolicy": 1 + len({scp.id for scp in spec.scps if set(scp.targets) & set(parents)}),
        }
    )


def test_discover_walks_10000_accounts_under_an_organizations_throttle_and_misses_nothing(
    large_org: OrganizationSpec,
) -> None:
    s3, store = client("s3"), store_for_account(large_org.management_account_id)
    needed = calls_needed(large_org)
    parents = 1 + len(large_org.ous)
    # Given the organization walked once unthrottled
    baseline, _ = discover_run(s3, "run-unthrottled", STARTED, {"scope": "all"})
    assert Counter(store.organizations_throttler.counters.calls) == needed
    # When discover walks it again with every Organizations call of the account held to 10 per second
    store.configure(organizations_rate_limit=THROTTLE)
    before = Counter(store.organizations_throttler.counters.calls)
    clock = VirtualClock(store.clock)
    try:
        with simulated(clock), clock.participant():
            started = clock.now()
            context, _ = discover_run(s3, "run-throttled", STARTED, {"scope": "all"})
            seconds = (clock.now() - started).total_seconds()
    finally:
        clock.close()
    counters = store.organizations_throttler.counters
    calls = Counter(counters.calls) - before
    throttled = sum(counters.throttled.values())
    # Then it found the same tree, the same SCPs and the same targets: 11,251 (root, OUs, accounts)
    assert discovered(s3, context) == discovered(s3, baseline)
    members = [a for a in large_org.accounts if a.id != large_org.management_account_id]
    assert len(discovered(s3, context)[1]) == parents + len(members)
    # And every throttle was absorbed by the retries, and counted by the collector as by the emulator
    assert throttled > 0
    assert calls - Counter(counters.throttled) == needed  # each call answered once, none lost, none repeated
    assert services().reporter(load(DiscoverSettings)).throttles.count == throttled
    # And the calls each parent needs: one page of child OUs, the pages of its accounts, its SCPs (3.04)
    per_parent = (sum(needed.values()) - needed["DescribeOrganization"] - needed["ListRoots"]) / parents
    assert 3 <= per_parent < 3.1
    # And the walk took about its calls over the rate, within discover's time limit
    (discover,) = (spec for spec in function_specs(load_config({})) if spec.name == Function.DISCOVER)
    assert sum(needed.values()) / THROTTLE.rate * 0.9 < seconds < discover.timeout.to_seconds()
    print(
        f"\n{sum(needed.values())} Organizations calls ({per_parent:.2f} per parent, {parents} parents), "
        f"{throttled} throttles absorbed, {seconds:.0f} s virtual at {THROTTLE.rate:g} calls/s"
    )
