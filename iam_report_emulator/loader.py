"""Puts an `OrganizationSpec` into moto: the organization, its SCPs, and the activity record.

Objects are built with moto's own model classes and the spec's ids, so that moto's Organizations
API (ListRoots, ListChildren, ListPoliciesForTarget, ...) answers for them like for any other.
Attachment lists are filled directly: moto's attach_policy scans every account, which is quadratic
at 10,000 accounts.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, cast

from moto.iam.models import iam_backends
from moto.organizations.models import (
    FakeAccount,
    FakeOrganizationalUnit,
    FakePolicy,
    FakeRoot,
    organizations_backends,
)

from iam_report_emulator.iam_extension import store_for_account
from iam_report_emulator.seed import FULL_AWS_ACCESS_ID, OrganizationSpec

RCP_FULL_ACCESS_ID = "p-RCPFullAWSAccess"


def _attach(policy: Any, entity: Any) -> None:
    if policy not in entity.attached_policies:
        entity.attached_policies.append(policy)
        policy.attachments.append(entity)


def _forget_stale_membership(account_id: str, partition: str) -> None:
    """moto keeps member-to-management links across resets; drop one whose organization is gone."""
    link = organizations_backends.master_accounts.get(account_id)
    if link is not None:
        master, master_partition = link
        org_backend = organizations_backends[master][master_partition]
        if org_backend.org is None or all(a.id != account_id for a in org_backend.accounts):
            del organizations_backends.master_accounts[account_id]


def load_organization(spec: OrganizationSpec, partition: str = "aws", region: str = "us-east-1") -> None:
    """Create the organization in the management account's moto backend and record its activity."""
    _forget_stale_membership(spec.management_account_id, partition)
    backend = organizations_backends[spec.management_account_id][partition]
    backend.create_organization(region=region, FeatureSet="ALL")
    org = backend.org
    assert org is not None  # just created
    org.id, org.root_id = spec.organization_id, spec.root_id
    root = cast(FakeRoot, backend.ou[0])
    root.id, root.organization_id = spec.root_id, spec.organization_id
    root.add_policy_type("SERVICE_CONTROL_POLICY")
    existing: Any
    for existing in (*backend.accounts, *backend.policies):
        existing.organization_id = spec.organization_id
    backend.accounts[0].parent_id = spec.root_id  # the management account, created under the old root id
    # It created the organization: before any member joined.
    first = min((member.joined for member in spec.accounts), default=spec.now)
    backend.accounts[0].create_time = _naive_utc(first - timedelta(days=30))
    defaults = [p for p in backend.policies if p.id in (FULL_AWS_ACCESS_ID, RCP_FULL_ACCESS_ID)]
    entities: dict[str, Any] = {spec.root_id: root, spec.management_account_id: backend.accounts[0]}

    for unit in spec.ous:
        ou = FakeOrganizationalUnit(org, Name=unit.name, ParentId=unit.parent_id)
        ou.id = unit.id
        backend.ou.append(ou)
        entities[ou.id] = ou
    for member in spec.accounts:
        account = FakeAccount(org, AccountName=member.name, Email=member.email)
        # FakeAccount creates an IAM backend (for OrganizationAccountAccessRole) under its random id;
        # moto resolves every request's account by scanning all IAM backends, so drop it.
        iam_backends.pop(account.id, None)
        account.id, account.parent_id = member.id, member.parent_id
        account.create_time = _naive_utc(member.joined)  # moto's JoinedTimestamp
        backend.accounts.append(account)
        organizations_backends.master_accounts[account.id] = (spec.management_account_id, partition)
        entities[account.id] = account
    for entity_id, entity in entities.items():
        for policy in defaults:
            if policy.id != FULL_AWS_ACCESS_ID or entity_id not in spec.full_access_detached:
                _attach(policy, entity)
    for scp in spec.scps:
        policy = FakePolicy(org, Name=scp.name, Content=scp.content, Type="SERVICE_CONTROL_POLICY",
                            Description=f"Seeded SCP {scp.name}")  # fmt: skip
        policy.id = scp.id
        backend.policies.append(policy)
        for target in scp.targets:
            _attach(policy, entities[target])

    store = store_for_account(spec.management_account_id, partition)
    for access in spec.activity:
        store.activity.record(access.account_id, access.namespace, access.when, access.region)


def _naive_utc(when: datetime) -> datetime:
    """moto keeps account times as naive UTC."""
    return when.astimezone(UTC).replace(tzinfo=None) if when.tzinfo else when
