"""A stand: one emulated organization with the collector deployed on it, its IAM on a model, all on
one virtual clock, and the counter of the functions' S3 and DynamoDB requests."""

from __future__ import annotations

import functools
import os
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from unittest import mock

from moto import mock_aws

import iam_report_emulator
from harness.bench.constants import MODELS, SEED, START
from harness.clients import reporter_role_arn
from harness.runner import MOTO_CONFIG, Deployment, InProcessLambdas, stand_up
from harness.virtual_time import VirtualClock, simulated
from iam_report_emulator.access_reports import AccessReportStore
from iam_report_emulator.iam_extension import REPORT_OPERATIONS, store_for_account
from iam_report_emulator.iam_model import GENEROUS, IamModel, model_named
from iam_report_emulator.presets import apply_preset
from iam_report_emulator.seed import OrganizationSpec
from iam_report_emulator.throttling import RateLimit
from lambdas.collector.config import DiscoverSettings, load
from lambdas.collector.names import Function
from lambdas.collector.services import services


def iam_model(name: str) -> IamModel:
    """`observed-account`, `observed-path` or `generous`."""
    kind, _, scope = name.partition("-")
    return model_named(kind, scope or None)


class Requests:
    """Counts the functions' S3 and DynamoDB requests by operation (their clients come from
    `services().session`)."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()

    def __call__(self, event_name: str, **_: Any) -> None:
        service, operation = event_name.split(".", 2)[1:]
        self.counts[f"{service}.{operation}"] += 1

    def usage(self, before: Counter[str]) -> dict[str, int]:
        counts = self.counts - before
        s3 = {op.removeprefix("s3."): n for op, n in counts.items() if op.startswith("s3.")}
        dynamodb = {op.removeprefix("dynamodb."): n for op, n in counts.items() if op.startswith("dynamodb.")}
        return {
            "s3_get": s3.get("GetObject", 0) + s3.get("HeadObject", 0),
            "s3_put_list": sum(n for op, n in s3.items() if op not in ("GetObject", "HeadObject", "DeleteObject")),
            "dynamodb_writes": sum(n for op, n in dynamodb.items() if op in ("PutItem", "UpdateItem", "DeleteItem")),
            "dynamodb_reads": sum(n for op, n in dynamodb.items() if op in ("GetItem", "Query", "Scan")),
        }


def _configure(
    accounts: int,
    rate: float,
    seed: int,
    *,
    model: IamModel = GENEROUS,
    failure_rate: float = 0.0,
    job_cap: int | None = None,
    now: datetime | None = None,
) -> OrganizationSpec:
    spec = apply_preset("demo", seed=seed, accounts=accounts, now=now)
    store = store_for_account(spec.management_account_id)
    store.configure(model=model, max_jobs_in_progress=job_cap, time_scale=1.0, job_seconds=None)
    limits: dict[str | tuple[str, ...], RateLimit] = {REPORT_OPERATIONS: RateLimit(rate=rate, burst=rate)}
    store.throttler.configure(limits=limits, failure_rate=failure_rate, seed=seed)
    return spec


@dataclass
class Stand:
    """One organization with the collector deployed on it, its IAM on a model, all on one virtual clock."""

    name: str
    deployment: Deployment
    lambdas: InProcessLambdas
    store: AccessReportStore
    spec: OrganizationSpec
    clock: VirtualClock
    requests: Requests
    rate: float

    @functools.cached_property
    def settings(self) -> DiscoverSettings:
        """discover's settings (the run's plan and budget), read from its environment as it reads them."""
        (discover,) = (f for f in self.deployment.functions.values() if f.stage == Function.DISCOVER)
        with mock.patch.dict(os.environ, discover.environment):
            return load(DiscoverSettings)

    @property
    def refresh_days(self) -> int:
        return self.settings.account_refresh_days

    @property
    def timeout(self) -> int:
        """The state machine's TimeoutSeconds (an execution past it times out), else a day."""
        return int(self.deployment.definition.get("TimeoutSeconds", 86_400))

    @property
    def expected_targets(self) -> int:
        """Targets of scope `all`: the root, every OU, every member account (not the management account)."""
        members = [a for a in self.spec.accounts if a.id != self.spec.management_account_id]
        return 1 + len(self.spec.ous) + len(members)


@contextmanager
def stood_up(
    template: dict[str, Any],
    name: str,
    accounts: int,
    rate: float,
    *,
    seed: int = SEED,
    failure_rate: float = 0.0,
    job_cap: int | None = None,
) -> Iterator[Stand]:
    """A fresh emulator (IAM model `name`) with the template stood up, inside `mock_aws` and virtual time."""
    iam_report_emulator.install()
    services.cache_clear()
    with mock_aws(config=MOTO_CONFIG):  # type: ignore[call-overload]  # moto types the config as a TypedDict
        model = iam_model(name) if name in MODELS else GENEROUS
        spec = _configure(accounts, rate, seed, model=model, failure_rate=failure_rate, job_cap=job_cap, now=START)
        store = store_for_account(spec.management_account_id)
        requests = Requests()
        services().session.events.register("before-call.*", requests)
        deployment = stand_up(template, reporter_role_arn(spec.management_account_id))
        clock = VirtualClock(store.clock, START)
        try:
            with simulated(clock):
                lambdas = InProcessLambdas(deployment.functions)
                yield Stand(name, deployment, lambdas, store, spec, clock, requests, rate)
        finally:
            clock.close()
    services.cache_clear()
