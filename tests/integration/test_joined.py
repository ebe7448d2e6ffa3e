"""The seeded accounts' join dates, as Organizations answers them (moto's JoinedTimestamp)."""

from __future__ import annotations

from datetime import UTC
from typing import Any

from harness.clients import client
from iam_report_emulator.seed import OrganizationSpec


def test_organizations_answers_each_accounts_seeded_join_date(demo_org: OrganizationSpec, s3: Any) -> None:
    organizations = client("organizations")
    joined = {
        account["Id"]: account["JoinedTimestamp"].astimezone(UTC)
        for page in organizations.get_paginator("list_accounts").paginate()
        for account in page["Accounts"]
    }
    for member in demo_org.accounts:
        assert joined[member.id] == member.joined
        assert organizations.describe_account(AccountId=member.id)["Account"]["JoinedTimestamp"] == member.joined
    # The management account created the organization: before any member joined
    assert joined[demo_org.management_account_id] < min(member.joined for member in demo_org.accounts)
