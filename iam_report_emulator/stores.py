"""Where the emulator keeps an account's state: on that account's moto IAM backend, so a fresh `mock_aws`
(which resets the backends) starts clean."""

from __future__ import annotations

from moto.iam.models import IAMBackend, iam_backends

from iam_report_emulator.access_reports import AccessReportStore

_STATE_ATTRIBUTE = "organizations_access_reports"


def report_store(backend: IAMBackend) -> AccessReportStore:
    """The emulator's state of one account (report jobs, settings, clock, throttles), created on first use."""
    store = backend.__dict__.get(_STATE_ATTRIBUTE)
    if store is None:
        store = backend.__dict__.setdefault(_STATE_ATTRIBUTE, AccessReportStore())
    assert isinstance(store, AccessReportStore)
    return store


def store_for_account(account_id: str, partition: str = "aws") -> AccessReportStore:
    return report_store(iam_backends[account_id][partition])
