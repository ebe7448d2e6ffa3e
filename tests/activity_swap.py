"""A change to an OU's access report that leaves its counts as they were: in one account under the OU, a
service used at the far edge of the tracking period falls out of it as a day passes, and another service
is used for the first time. The OU's report then allows as many services and leaves as many unused, but
not the same ones. Works on the emulator's clock and activity record, in-process or end to end."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from iam_report_emulator.access_reports import AccessReportStore
from iam_report_emulator.catalog import load_catalog
from iam_report_emulator.scp import accessible_services
from iam_report_emulator.seed import OrganizationSpec
from iam_report_emulator.settings import TRACKING_DAYS
from tests.helpers import subtree_accounts

REGION = "us-east-1"
DAY = timedelta(days=1)


@dataclass(frozen=True)
class Swap:
    ou_id: str
    account_id: str
    gone: str  # used on the first day, beyond the tracking period the next
    new: str  # first used between the two days


def prepare_swap(spec: OrganizationSpec, store: AccessReportStore, ou_id: str) -> Swap:
    """Before the first day: of two services the OU allows and no account under it has ever used, the
    first is used now at the tracking period's far edge (an hour inside it)."""
    accounts = sorted(subtree_accounts(spec, ou_id))
    levels = [spec.scp_contents_at(entity) for entity in spec.chain(ou_id)]
    allowed = sorted(accessible_services(levels, load_catalog()))
    untouched = [ns for ns in allowed if not any(ns in store.activity.of_account(a) for a in accounts)]
    if len(untouched) < 2:
        raise ValueError(f"OU {ou_id} allows fewer than two services its accounts never used")
    swap = Swap(ou_id, accounts[0], untouched[0], untouched[1])
    edge = store.clock.now() - timedelta(days=TRACKING_DAYS) + timedelta(hours=1)
    store.activity.record(swap.account_id, swap.gone, edge, REGION)
    return swap


def next_day(store: AccessReportStore, swap: Swap) -> None:
    """A day passes on the emulator's clock (`gone` leaves the tracking period), and `new` is used."""
    store.clock.advance(DAY.total_seconds())
    store.activity.record(swap.account_id, swap.new, store.clock.now(), REGION)
