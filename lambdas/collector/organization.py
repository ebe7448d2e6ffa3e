"""The organization as discover saw it: every root, OU and account, when each account joined, and the
SCPs attached to each node the guardrails look at. Written once per run (`runs/{run}/organization.json`)
for the stages after collection, so they need no Organizations call of their own.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from functools import cached_property

from pydantic import Field

from lambdas.collector.models import Model, OrganizationId, TargetId, TargetType, UtcDatetime

# The prefix of every SCP this collector proposes: how the next day recognises its own proposal, applied.
OWN_POLICY_PREFIX = "org-access-report-unused-"


class Manager(StrEnum):
    """Who looks after an SCP: the collector never proposes a change to anyone's but its own."""

    AWS = "aws"  # AWS managed (FullAWSAccess)
    CONTROL_TOWER = "control-tower"  # aws-guardrails-*
    COLLECTOR = "collector"  # one of this collector's proposals, applied
    CUSTOMER = "customer"

    @classmethod
    def of(cls, name: str, aws_managed: bool) -> Manager:
        if aws_managed:
            return cls.AWS
        if name.startswith("aws-guardrails-"):
            return cls.CONTROL_TOWER
        if name.startswith(OWN_POLICY_PREFIX):
            return cls.COLLECTOR
        return cls.CUSTOMER


class AttachedScp(Model):
    id: str = Field(max_length=130)
    name: str = Field(max_length=128)
    managed_by: Manager
    # The `service:*` patterns its Deny statements deny outright (or with only principals exempted).
    denies: tuple[str, ...] = ()


class Node(Model):
    id: TargetId
    type: TargetType
    name: str | None = None
    path: str
    active: bool = True
    joined: UtcDatetime | None = None  # accounts: Organizations' JoinedTimestamp
    scps: tuple[AttachedScp, ...] | None = None  # None: not read (an account without per-account guardrails)

    @property
    def ancestors(self) -> list[str]:
        """The ids above this node, root first."""
        return self.path.split("/")[1:-1]


class OrganizationSnapshot(Model):
    organization_id: OrganizationId
    management_account_id: str
    read_at: UtcDatetime
    nodes: tuple[Node, ...]

    @cached_property
    def by_id(self) -> dict[str, Node]:
        return {node.id: node for node in self.nodes}

    def accounts_by_scope(self) -> dict[str, list[Node]]:
        """For each root, OU and account id: the active member accounts a report on it covers (a root's
        leaves out the management account, which SCPs never bind)."""
        scopes: dict[str, list[Node]] = {}
        for node in self.nodes:
            if node.type is TargetType.ACCOUNT and node.active and node.id != self.management_account_id:
                for entity_id in node.path.split("/")[1:]:
                    scopes.setdefault(entity_id, []).append(node)
        return scopes


def earliest(nodes: list[Node]) -> datetime | None:
    joined = [n.joined for n in nodes if n.joined is not None]
    return min(joined) if joined else None
