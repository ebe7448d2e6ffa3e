"""discover: the run's configuration turned into targets, written to S3 as a manifest of batches.

The organization is walked top down with the Organizations API (every call paginated): the root,
each OU with `ListOrganizationalUnitsForParent`, each parent's accounts with
`ListAccountsForParent`. That is two calls per parent and yields names and full entity paths.

Selection: `scope` picks the target types; `include_ids` keeps only the named entities and their
subtrees, `exclude_ids` removes them with their subtrees; with `policy_ids`, each target gets one
report per policy. The management account is left out unless asked for: SCPs never apply to it.

The selected targets then go through the run's collection plan (`collect.plan`): root and OUs every
run, accounts on their cadence within the run's budget. The manifest holds the planned targets;
`runs/{run}/plan.json` holds every target with its reason, for finalize to carry the rest forward.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from lambdas.collector.collect.limits import Ceiling, LimitState, LimitStore
from lambdas.collector.collect.plan import History, Plan, capacity, make_plan, read_history
from lambdas.collector.collect.warm_up import WarmUp
from lambdas.collector.config import DiscoverSettings
from lambdas.collector.errors import OrganizationNotReadyError, TargetSelectionError
from lambdas.collector.guardrails.existing import read_attached
from lambdas.collector.models import Batch, DiscoverEvent, Job, RunContext, Target, TargetType
from lambdas.collector.names import Layout
from lambdas.collector.observability import logger
from lambdas.collector.organization import Node, OrganizationSnapshot
from lambdas.collector.store.storage import put_json

if TYPE_CHECKING:
    from mypy_boto3_organizations import OrganizationsClient
    from mypy_boto3_s3 import S3Client


@dataclass(frozen=True)
class Entity:
    id: str
    type: TargetType
    name: str | None
    path: str
    active: bool = True
    joined: datetime | None = None  # accounts: when they joined the organization

    @property
    def chain(self) -> set[str]:
        """The ids on the path from the root down to this entity."""
        return set(self.path.split("/")[1:])


@dataclass(frozen=True)
class OrganizationTree:
    organization_id: str
    management_account_id: str
    entities: list[Entity]


SCP_TYPE = "SERVICE_CONTROL_POLICY"


def readiness_problems(organization: Mapping[str, Any], roots: Sequence[Mapping[str, Any]], role_arn: str) -> list[str]:
    """What keeps IAM from reporting on this organization, each with what to change (empty: ready).
    IAM's Organizations access report needs all features, SCPs enabled at the root, and a caller in the
    management account; without them every job would fail, so no job is started."""
    org_id, management = organization["Id"], organization["MasterAccountId"]
    problems = []
    if organization.get("FeatureSet", "ALL") != "ALL":
        problems.append(
            f"organization {org_id} has only {organization['FeatureSet']} features: enable all features "
            "(aws organizations enable-all-features; every member account must accept)"
        )
    for root in roots:
        enabled = {p["Type"] for p in root.get("PolicyTypes", []) if p.get("Status") == "ENABLED"}
        if SCP_TYPE not in enabled:
            problems.append(
                f"SCPs are not enabled at root {root['Id']}: aws organizations enable-policy-type "
                f"--root-id {root['Id']} --policy-type {SCP_TYPE}"
            )
    account = role_arn.split(":")[4]
    if account != management:
        problems.append(
            f"the reporter role {role_arn} is in account {account}, not in the management account {management} "
            "of the organization: deploy it there (make deploy-reporter) and set reporter_role_arn to it"
        )
    return problems


def walk_organization(organizations: OrganizationsClient, role_arn: str | None = None) -> OrganizationTree:
    """Every root, OU (any depth) and account of the organization, parents before children. With
    `role_arn` (the reporter role), an organization IAM cannot report on is an `OrganizationNotReadyError`
    before anything else is read."""
    organization = organizations.describe_organization()["Organization"]
    org_id = organization["Id"]
    roots = [root for page in organizations.get_paginator("list_roots").paginate() for root in page["Roots"]]
    problems = readiness_problems(organization, roots, role_arn) if role_arn else []
    if problems:
        raise OrganizationNotReadyError("; ".join(problems))
    entities: list[Entity] = []
    parents: list[tuple[str, str]] = []
    for root in roots:
        path = f"{org_id}/{root['Id']}"
        entities.append(Entity(root["Id"], TargetType.ROOT, root.get("Name"), path))
        parents.append((root["Id"], path))
    ous = organizations.get_paginator("list_organizational_units_for_parent")
    accounts = organizations.get_paginator("list_accounts_for_parent")
    while parents:
        parent_id, parent_path = parents.pop(0)
        for ou in (ou for page in ous.paginate(ParentId=parent_id) for ou in page["OrganizationalUnits"]):
            path = f"{parent_path}/{ou['Id']}"
            entities.append(Entity(ou["Id"], TargetType.ORGANIZATIONAL_UNIT, ou.get("Name"), path))
            parents.append((ou["Id"], path))
        for account in (a for page in accounts.paginate(ParentId=parent_id) for a in page["Accounts"]):
            entities.append(
                Entity(
                    account["Id"],
                    TargetType.ACCOUNT,
                    account.get("Name"),
                    f"{parent_path}/{account['Id']}",
                    active=account.get("Status", "ACTIVE") == "ACTIVE",
                    joined=account.get("JoinedTimestamp"),
                )
            )
    return OrganizationTree(org_id, organization["MasterAccountId"], entities)


def select_targets(tree: OrganizationTree, settings: DiscoverSettings) -> list[Target]:
    known = {entity.id for entity in tree.entities}
    unknown = [entity_id for entity_id in settings.include_ids if entity_id not in known]
    if unknown:
        raise TargetSelectionError(
            f"INCLUDE_IDS names {', '.join(unknown)}, not found in organization {tree.organization_id}"
        )
    include, exclude = set(settings.include_ids), set(settings.exclude_ids)
    types = settings.scope.target_types
    targets: list[Target] = []
    for entity in tree.entities:
        if entity.type not in types or not entity.active:
            continue
        if entity.id == tree.management_account_id and not settings.include_management_account:
            continue
        chain = entity.chain
        if (include and not chain & include) or chain & exclude:
            continue
        policies: list[str | None] = [*settings.policy_ids] or [None]
        for policy_id in policies:
            targets.append(
                Target(path=entity.path, type=entity.type, id=entity.id, name=entity.name, policy_id=policy_id)
            )
    if not targets:
        raise TargetSelectionError(
            f"scope {settings.scope.value!r} with INCLUDE_IDS={sorted(include)} and "
            f"EXCLUDE_IDS={sorted(exclude)} selects no target in organization {tree.organization_id}"
        )
    return targets


def organization_snapshot(
    tree: OrganizationTree,
    organizations: OrganizationsClient,
    targets: list[Target],
    *,
    accounts_too: bool,
    now: datetime,
) -> OrganizationSnapshot:
    """The tree with join dates, and the SCPs attached to every root and OU (and to each selected
    account when guardrails are recommended per account): what recommend reads after collection."""
    selected = {target.id for target in targets}
    read = [e.id for e in tree.entities if e.type is not TargetType.ACCOUNT or (accounts_too and e.id in selected)]
    attached = read_attached(organizations, read)
    return OrganizationSnapshot(
        organization_id=tree.organization_id,
        management_account_id=tree.management_account_id,
        read_at=now,
        nodes=tuple(
            Node(
                id=e.id,
                type=e.type,
                name=e.name,
                path=e.path,
                active=e.active,
                joined=e.joined,
                scps=attached.get(e.id),
            )
            for e in tree.entities
        ),
    )


def batches(targets: list[Target], size: int, lanes: int = 1, started: Sequence[Job] = ()) -> list[Batch]:
    """At most `size` targets per batch, in a number of batches that fills every one of the `lanes`
    (the Distributed Map's concurrency) in every wave, with sizes differing by one at most.

    Batches run paced at the same call rate, so equal batches finish together: no lane idles while
    a larger batch runs on alone at its share of the rate. The jobs already `started` are dealt
    round the first wave's batches (the lanes that start at once), so each lane reads its share of
    them and takes over their slots as they finish; the other targets follow in their order.
    """
    count = -(-len(targets) // size)
    count = min(len(targets), -(-count // lanes) * lanes)
    base, extra = divmod(len(targets), count)
    sizes = [base + (n < extra) for n in range(count)]
    by_key = {job.target.key: job for job in started}
    ahead: list[list[Job]] = [[] for _ in range(count)]
    first_wave = min(lanes, count)
    for n, job in enumerate(job for job in (by_key.get(t.key) for t in targets) if job is not None):
        wave = n % first_wave
        while len(ahead[wave]) >= sizes[wave]:  # more started than the first wave holds: the next batches
            wave += 1
        ahead[wave].append(job)
    rest = iter(t for t in targets if t.key not in by_key)
    out = []
    for n in range(count):
        chunk = [job.target for job in ahead[n]] + [next(rest) for _ in range(sizes[n] - len(ahead[n]))]
        out.append(Batch(batch=n, targets=chunk, started=ahead[n]))
    return out


def _plan(
    selected: list[Target],
    history: History,
    settings: DiscoverSettings,
    *,
    today: date,
    learned: LimitState,
    ceiling: Ceiling,
) -> Plan:
    """The collection plan at the capacity the learned limits give the run's budget."""
    fits = capacity(
        settings.run_budget_seconds,
        settings.poll_initial_wait_seconds,
        learned.jobs_within(ceiling),
        learned.rate_within(ceiling),
    )
    return make_plan(selected, history, today=today, refresh_days=settings.account_refresh_days, capacity=fits)


@dataclass(frozen=True)
class Discovery:
    run: RunContext
    by_type: dict[str, int]
    skipped_exclude_ids: list[str]
    learned: dict[str, Any]  # what the limits table held when the run was planned (logged)


def discover(
    event: DiscoverEvent,
    settings: DiscoverSettings,
    organizations: OrganizationsClient,
    s3: S3Client,
    *,
    limits_of: Callable[[str], LimitStore],
    now: datetime,
    warm_up: WarmUp | None = None,
) -> Discovery:
    """Apply the execution's input, walk, select, plan with the limits IAM has shown so far
    (`limits_of(organization id)`; measured first with `warm_up` when they say fewer jobs than the
    run has lanes for), write the manifest; the returned context is what the state machine carries.
    The run's time budget counts from `now`."""
    settings = settings.for_run(event.options)
    tree = walk_organization(organizations, settings.report_role_arn)
    selected = select_targets(tree, settings)
    layout = Layout(settings.data_prefix)
    snapshot = organization_snapshot(tree, organizations, selected, accounts_too=settings.guardrail_accounts, now=now)
    put_json(s3, settings.data_bucket, layout.organization(event.run_id), snapshot.model_dump(mode="json"))
    dt = event.started_at.date()
    history = read_history(s3, settings.data_bucket, layout, dt.isoformat())
    store = limits_of(tree.organization_id)
    ceiling = Ceiling(settings.iam_max_jobs_in_progress, settings.iam_calls_per_second)
    # What IAM has admitted so far, within the configured bounds: the plan's capacity and the lanes.
    learned = store.read()
    plan = _plan(selected, history, settings, today=dt, learned=learned, ceiling=ceiling)
    # Too few jobs known to be admitted to run every lane: measure (see `collect.warm_up`).
    lanes_wanted = min(settings.max_concurrency, ceiling.jobs)
    started: list[Job] = []
    if warm_up is not None and learned.admitted < lanes_wanted and learned.next_probe <= now.timestamp():
        first = history.with_report_seconds(plan.planned)
        started = warm_up(first, store, ceiling, run_id=event.run_id, seconds=settings.poll_initial_wait_seconds)
        measured = store.read()
        if measured.admitted > learned.admitted:  # more capacity only adds targets: the started stay planned
            learned, plan = measured, _plan(selected, history, settings, today=dt, learned=measured, ceiling=ceiling)
    jobs, rate = learned.jobs_within(ceiling), learned.rate_within(ceiling)
    targets = history.with_report_seconds(plan.planned)
    logger.info("collection plan", extra={"selected": len(selected), **plan.counts()})
    put_json(s3, settings.data_bucket, layout.plan(event.run_id), plan.as_json())
    # No more batches at once than IAM has admitted jobs (with a cap of one, one batch, one job at a
    # time; a lane may still hold several jobs as IAM admits more during the run), nor than the run has
    # full batches: each lane costs its own transitions, and a small run is done by fewer.
    lanes = min(settings.max_concurrency, jobs, -(-len(targets) // settings.batch_size))
    manifest = batches(targets, settings.batch_size, lanes, started)
    key = layout.manifest(event.run_id)
    put_json(s3, settings.data_bucket, key, [batch.model_dump(mode="json") for batch in manifest])
    run = RunContext(
        run_id=event.run_id,
        dt=dt.isoformat(),
        collected_at=event.started_at,
        organization_id=tree.organization_id,
        bucket=settings.data_bucket,
        prefix=settings.data_prefix,
        manifest_key=key,
        targets=len(targets),
        batches=len(manifest),
        polling=settings.polling,
        max_calls_per_second=settings.iam_calls_per_second,
        max_jobs_in_progress=settings.iam_max_jobs_in_progress,
        lanes=min(lanes, len(manifest)),
        deadline=now + timedelta(seconds=settings.run_budget_seconds),
        report_role_arn=settings.report_role_arn,
        stale_after_days=settings.account_refresh_days,
    )
    known = {entity.id for entity in tree.entities}
    return Discovery(
        run=run,
        by_type=dict(Counter(target.type.value for target in targets)),
        skipped_exclude_ids=[entity_id for entity_id in settings.exclude_ids if entity_id not in known],
        learned={"jobs_in_progress": jobs, "calls_per_second": rate, "started_by_discover": len(started)},
    )
