"""Deterministic organizations for the emulator: the tree, its SCPs and its access activity.

`generate_organization` makes an organization of any size from a seed number: nested OUs (depth up
to 5), accounts, FullAWSAccess everywhere plus allow-lists and deny-lists, and activity of a
realistic shape (a few services used everywhere, a long tail never used, some used only long ago,
varied regions). The result is plain data, the ground truth that tests compare reports against;
`iam_report_emulator.loader` puts it into moto.
"""

from __future__ import annotations

import json
import random
import string
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cached_property

from iam_report_emulator.catalog import load_catalog
from iam_report_emulator.scp import accessible_services

FULL_AWS_ACCESS_ID = "p-FullAWSAccess"
CORE_SERVICES = (
    "sts", "iam", "s3", "cloudtrail", "config", "kms", "logs", "cloudwatch", "ec2", "ssm", "lambda", "sns", "tag",
)  # fmt: skip
COMMON_SERVICES = (
    "dynamodb", "sqs", "rds", "ecs", "ecr", "elasticloadbalancing", "autoscaling", "route53", "cloudformation",
    "secretsmanager", "events", "states", "apigateway", "glue", "athena", "kinesis", "elasticache", "acm",
    "wafv2", "guardduty", "securityhub", "backup", "ses", "codebuild", "codepipeline", "es", "firehose",
    "sagemaker", "eks", "batch",
)  # fmt: skip
OCCASIONAL_SERVICES = 40  # services outside the tiers that some account uses now and then
MANAGEMENT_ONLY_SERVICES = ("organizations", "budgets", "ce", "account")
GLOBAL_SERVICES = frozenset({"iam", "sts", "organizations", "route53", "budgets", "ce", "account", "cloudfront"})
REGIONS = ("us-east-1", "eu-west-1", "us-west-2", "ap-southeast-2", "eu-central-1")
REGION_WEIGHTS = (50, 20, 15, 10, 5)
WORKLOAD_NAMES = ("Payments", "Analytics", "Platform", "Retail", "Media", "Research", "Mobile", "Data", "Identity")
SANDBOX_ALLOWED = (
    "s3:*", "ec2:*", "lambda:*", "dynamodb:*", "logs:*", "cloudwatch:*", "sts:*", "iam:Get*", "iam:List*",
    "kms:*", "sqs:*", "sns:*", "cloudformation:*", "ssm:*", "tag:*", "apigateway:*", "events:*",
)  # fmt: skip
DATA_ONLY_ALLOWED = ("s3:*", "dynamodb:*", "glue:*", "athena:*", "lambda:*", "logs:*", "kms:*", "sts:*")
DENIED_IN_WORKLOADS = ("gamelift:*", "robomaker:*", "braket:*", "groundstation:*", "iot*:*")
# Join dates: most accounts joined one to five years ago; one in sixteen within the last 80 days (too new to
# be evidence that a service is unneeded). Drawn from their own generator, so the rest of the seed is unchanged.
JOINED_DAYS_AGO = (400, 1800)
RECENT_JOINED_DAYS_AGO = (10, 80)
RECENT_EVERY = 16


@dataclass(frozen=True)
class OrgUnit:
    id: str
    name: str
    parent_id: str


@dataclass(frozen=True)
class Account:
    id: str
    name: str
    parent_id: str
    joined: datetime  # when it joined the organization (Organizations' JoinedTimestamp)

    @property
    def email(self) -> str:
        return f"aws+{self.name}@example.com"


@dataclass(frozen=True)
class Scp:
    id: str
    name: str
    content: str
    targets: tuple[str, ...]


@dataclass(frozen=True)
class Activity:
    account_id: str
    namespace: str
    when: datetime
    region: str


@dataclass
class OrganizationSpec:
    organization_id: str
    root_id: str
    management_account_id: str
    now: datetime
    ous: list[OrgUnit] = field(default_factory=list)
    accounts: list[Account] = field(default_factory=list)
    scps: list[Scp] = field(default_factory=list)
    # Entities from which FullAWSAccess is detached (an allow-list SCP replaces it there).
    full_access_detached: set[str] = field(default_factory=set)
    activity: list[Activity] = field(default_factory=list)

    @cached_property
    def _parents(self) -> dict[str, str]:
        parents = {unit.id: unit.parent_id for unit in self.ous}
        parents[self.management_account_id] = self.root_id  # moto keeps it at the root
        parents.update((account.id, account.parent_id) for account in self.accounts)
        return parents

    def chain(self, entity_id: str) -> list[str]:
        """Ids from the root down to `entity_id` (the tree must be complete when first asked)."""
        parents = self._parents
        chain = [entity_id]
        while chain[-1] != self.root_id:
            chain.append(parents[chain[-1]])
        return chain[::-1]

    def path(self, entity_id: str) -> str:
        return "/".join([self.organization_id, *self.chain(entity_id)])

    def scp_contents_at(self, entity_id: str) -> list[str]:
        contents = [s.content for s in self.scps if entity_id in s.targets]
        if entity_id not in self.full_access_detached:
            contents.insert(0, policy_document("Allow", ["*"]))
        return contents


def policy_document(effect: str, actions: list[str] | tuple[str, ...]) -> str:
    statement = {"Effect": effect, "Action": list(actions), "Resource": "*"}
    return json.dumps({"Version": "2012-10-17", "Statement": [statement]})


class _Ids:
    def __init__(self, rng: random.Random, management_account_id: str) -> None:
        self._rng = rng
        self._used = {management_account_id}

    def token(self, size: int) -> str:
        return "".join(self._rng.choices(string.ascii_lowercase + string.digits, k=size))

    def account(self) -> str:
        while True:
            candidate = "".join(self._rng.choices(string.digits, k=12))
            if candidate[0] != "0" and candidate not in self._used:
                self._used.add(candidate)
                return candidate


def generate_organization(
    *, accounts: int, seed: int, now: datetime, management_account_id: str = "123456789012"
) -> OrganizationSpec:
    """An organization with `accounts` member accounts, the same for the same arguments."""
    if accounts < 1:
        raise ValueError(f"an organization needs at least one member account, got {accounts}")
    rng = random.Random(seed)
    ids = _Ids(rng, management_account_id)
    spec = OrganizationSpec(
        organization_id=f"o-{ids.token(10)}", root_id=f"r-{ids.token(4)}",
        management_account_id=management_account_id, now=now,
    )  # fmt: skip

    def add_ou(name: str, parent: str) -> OrgUnit:
        unit = OrgUnit(id=f"ou-{spec.root_id[2:]}-{ids.token(8)}", name=name, parent_id=parent)
        spec.ous.append(unit)
        return unit

    root = spec.root_id
    security, infrastructure = add_ou("Security", root), add_ou("Infrastructure", root)
    workloads = add_ou("Workloads", root)
    prod, dev = add_ou("Prod", workloads.id), add_ou("Dev", workloads.id)
    sandbox, suspended = add_ou("Sandbox", root), add_ou("Suspended", root)
    depth = {workloads.id: 1, prod.id: 2, dev.id: 2}
    workload_ous = [prod, dev]
    if accounts >= 40:  # one branch reaches IAM's deepest nesting, five OUs below the root
        parent = prod
        for level, name in enumerate(("Payments", "Cards", "Issuing"), start=3):
            parent = add_ou(name, parent.id)
            depth[parent.id] = level
            workload_ous.append(parent)
    for n in range(max(0, accounts // 8 - len(spec.ous))):
        parent = rng.choice([u for u in workload_ous if depth[u.id] < 5])
        unit = add_ou(f"{rng.choice(WORKLOAD_NAMES)}-{n + 1}", parent.id)
        depth[unit.id] = depth[parent.id] + 1
        workload_ous.append(unit)

    fixed = [("log-archive", security), ("audit", security), ("network", infrastructure)]
    placements = fixed[:accounts]
    for n in range(accounts - len(placements)):
        roll = rng.random()
        home = sandbox if roll < 0.08 else suspended if roll < 0.10 else rng.choice(workload_ous)
        placements.append((f"{home.name.lower()}-{n + 1:05d}", home))
    joins = random.Random(f"{seed}:joined")
    spec.accounts = [
        Account(id=ids.account(), name=name, parent_id=home.id, joined=_joined(now, n, joins))
        for n, (name, home) in enumerate(placements)
    ]

    members = [a for a in spec.accounts if a.parent_id not in (suspended.id, sandbox.id)]
    data_only = tuple(a.id for a in members[3::50])
    spec.scps = [
        Scp(f"p-{ids.token(8)}", "DenyLeaveOrganization",
            policy_document("Deny", ["organizations:LeaveOrganization"]), (root,)),
        Scp(f"p-{ids.token(8)}", "SandboxAllowList", policy_document("Allow", SANDBOX_ALLOWED), (sandbox.id,)),
        Scp(f"p-{ids.token(8)}", "DenyUnusedServices",
            policy_document("Deny", [*DENIED_IN_WORKLOADS, "iam:CreateUser"]), (workloads.id,)),
        Scp(f"p-{ids.token(8)}", "SuspendedDenyAll", policy_document("Deny", ["*"]), (suspended.id,)),
        Scp(f"p-{ids.token(8)}", "DataOnlyAllowList", policy_document("Allow", DATA_ONLY_ALLOWED), data_only),
    ]  # fmt: skip
    spec.full_access_detached = {sandbox.id, *data_only}
    spec.activity = _activity(spec, rng)
    return spec


def _joined(now: datetime, n: int, rng: random.Random) -> datetime:
    """The `n`th account's join date: recent for one in `RECENT_EVERY`, one to five years ago otherwise."""
    low, high = RECENT_JOINED_DAYS_AGO if n % RECENT_EVERY == RECENT_EVERY // 2 else JOINED_DAYS_AGO
    return (now - timedelta(days=rng.uniform(low, high))).replace(microsecond=0)


def _activity(spec: OrganizationSpec, rng: random.Random) -> list[Activity]:
    catalog = load_catalog()
    others = [
        ns for ns in catalog.namespaces if ns not in (*CORE_SERVICES, *COMMON_SERVICES, *MANAGEMENT_ONLY_SERVICES)
    ]
    occasional = rng.sample(others, min(OCCASIONAL_SERVICES, len(others)))  # the rest is never used
    allowed_cache: dict[tuple[tuple[str, ...], ...], frozenset[str]] = {}
    records: list[Activity] = []

    def use(account_id: str, namespace: str, days_ago_low: float, days_ago_high: float) -> None:
        when = spec.now - timedelta(days=rng.uniform(days_ago_low, days_ago_high))
        region = "us-east-1" if namespace in GLOBAL_SERVICES else rng.choices(REGIONS, REGION_WEIGHTS)[0]
        records.append(Activity(account_id, namespace, when.replace(microsecond=0), region))

    for account in spec.accounts:
        levels = tuple(tuple(spec.scp_contents_at(e)) for e in spec.chain(account.id))
        allowed = allowed_cache.get(levels)
        if allowed is None:
            allowed = allowed_cache[levels] = frozenset(accessible_services(levels, catalog))
        for namespace in CORE_SERVICES:
            if namespace in allowed and rng.random() < 0.9:
                use(account.id, namespace, 0, 7)
        for namespace in COMMON_SERVICES:
            if namespace not in allowed:
                continue
            roll = rng.random()
            if roll < 0.25:
                use(account.id, namespace, 0, 60)
            elif roll < 0.35:
                use(account.id, namespace, 91, 380)  # unused for 90+ days, still in the tracking period
            elif roll < 0.38:
                use(account.id, namespace, 401, 600)  # beyond IAM's 400-day tracking period
        for namespace in rng.sample(occasional, 2):
            if namespace in allowed and rng.random() < 0.3:
                use(account.id, namespace, 100, 390)
    for namespace in (*MANAGEMENT_ONLY_SERVICES, "iam", "sts"):
        use(spec.management_account_id, namespace, 0, 3)
    return records
