"""Entity paths resolved against moto's Organizations backend.

An entity path names a root, an OU (with its full parent chain) or an account:
`o-xxx/r-xxx`, `o-xxx/r-xxx/ou-a/ou-b`, `o-xxx/r-xxx/ou-a/111122223333`. IAM accepts a trailing `/`.
The index built here answers what a report on a target covers: which accounts, and which SCPs
apply at each level of a path.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

ACCOUNT_ID = re.compile(r"^\d{12}$")


class EntityType(StrEnum):
    ROOT = "ROOT"
    ORGANIZATIONAL_UNIT = "ORGANIZATIONAL_UNIT"
    ACCOUNT = "ACCOUNT"


class EntityPathError(ValueError):
    """The path does not name an entity of the caller's organization."""


@dataclass(frozen=True)
class Target:
    path: str  # normalized: no trailing slash
    type: EntityType
    id: str
    chain: tuple[str, ...]  # root id, OU ids, and the account id for an account, top down
    is_management_account: bool = False


def normalize_path(path: str) -> str:
    return path.removesuffix("/")


class OrganizationIndex:
    """A snapshot of the organization's tree, keyed for path resolution and scoping."""

    def __init__(self, backend: Any) -> None:
        org = backend.org
        if org is None:
            raise EntityPathError("the caller's account is not the management account of an organization")
        self.organization_id: str = org.id
        self.root_id: str = org.root_id
        self.management_account_id: str = org.master_account_id
        self._nodes: dict[str, Any] = {ou.id: ou for ou in backend.ou}
        self._accounts: dict[str, Any] = {a.id: a for a in backend.accounts if a.status == "ACTIVE"}
        self._chains: dict[str, tuple[str, ...]] = {}
        self._children_accounts: dict[str, list[str]] = {}
        for account in self._accounts.values():
            self._children_accounts.setdefault(account.parent_id, []).append(account.id)
        self._children_ous: dict[str, list[str]] = {}
        for node in self._nodes.values():
            if node.id != self.root_id:
                self._children_ous.setdefault(node.parent_id, []).append(node.id)

    def chain_of(self, entity_id: str) -> tuple[str, ...]:
        """Ids from the root down to `entity_id` (an OU, the root or an account)."""
        cached = self._chains.get(entity_id)
        if cached is not None:
            return cached
        if entity_id == self.root_id:
            chain: tuple[str, ...] = (self.root_id,)
        else:
            entity = self._nodes.get(entity_id) or self._accounts[entity_id]
            chain = (*self.chain_of(entity.parent_id), entity_id)
        self._chains[entity_id] = chain
        return chain

    def path_of(self, entity_id: str) -> str:
        return "/".join((self.organization_id, *self.chain_of(entity_id)))

    def resolve(self, raw_path: str) -> Target:
        path = normalize_path(raw_path)
        parts = path.split("/")
        if parts[0] != self.organization_id:
            raise EntityPathError(f"EntityPath '{raw_path}': '{parts[0]}' is not the caller's organization")
        if len(parts) < 2 or parts[1] != self.root_id:
            root = parts[1] if len(parts) > 1 else ""
            raise EntityPathError(f"EntityPath '{raw_path}': '{root}' is not the organization's root")
        leaf = parts[-1]
        known = leaf in self._nodes or leaf in self._accounts
        if not known:
            raise EntityPathError(f"EntityPath '{raw_path}': '{leaf}' is not in the organization")
        if tuple(parts[1:]) != self.chain_of(leaf):
            raise EntityPathError(
                f"EntityPath '{raw_path}' does not follow the organization's tree; "
                f"the path of '{leaf}' is '{self.path_of(leaf)}'"
            )
        if leaf in self._accounts:
            return Target(
                path=path,
                type=EntityType.ACCOUNT,
                id=leaf,
                chain=tuple(parts[1:]),
                is_management_account=leaf == self.management_account_id,
            )
        entity_type = EntityType.ROOT if leaf == self.root_id else EntityType.ORGANIZATIONAL_UNIT
        return Target(path=path, type=entity_type, id=leaf, chain=tuple(parts[1:]))

    def accounts_in_scope(self, target: Target) -> list[str]:
        """Accounts whose activity a report on `target` covers (SCPs never apply to the management one)."""
        if target.type is EntityType.ACCOUNT:
            return [target.id]
        found: list[str] = []
        pending = [target.id]
        while pending:
            node = pending.pop()
            found.extend(a for a in self._children_accounts.get(node, []) if a != self.management_account_id)
            pending.extend(self._children_ous.get(node, []))
        return sorted(found)

    def policies_at(self, entity_id: str) -> list[Any]:
        """The SCP objects attached directly to an entity."""
        entity = self._nodes.get(entity_id) or self._accounts[entity_id]
        return [p for p in entity.attached_policies if p.type == "SERVICE_CONTROL_POLICY"]
