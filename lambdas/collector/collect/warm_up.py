"""discover's first starts: IAM's job cap measured before the run decides its lanes.

The Distributed Map's concurrency is fixed when the Map starts (`MaxConcurrencyPath`). Planned from
what is learned alone, a first run (nothing learned: one job admitted) would collect with one lane
all day even where IAM admits fifty jobs at once, and a lane on its own cannot reach the call rate
(each of its calls waits for its answer). So when fewer jobs are known to be admitted than the run
has lanes (`max_concurrency`) and a probe is due, discover starts the plan's first jobs itself,
through the same shared limits as every lane: the starts up to the level admitted, then one probe
per start while IAM keeps admitting. It stops at the first start IAM does not admit (so at most one
refusal), at the ceiling, when no probe is due, or once the first job is due to be read
(`poll_initial_wait_seconds`): the lanes take over from there, probing on. Each probe waits for
IAM's answer before the next, wherever it is made, so the level climbs one job per call round trip
here as it would in the lanes. The jobs it started go in progress to the first wave of batches,
read there like any other: nothing is started twice. Where IAM admits one job at a time, this costs
a run one refused start (and none while the probe waits).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from lambdas.collector.collect.jobs import start_job
from lambdas.collector.collect.limits import Ceiling, LimitStore, SharedLimits
from lambdas.collector.collect.pacing import Pacer
from lambdas.collector.collect.report_api import NotNow, ReportApi, Started
from lambdas.collector.models import Job, Target

if TYPE_CHECKING:
    from mypy_boto3_iam import IAMClient


@dataclass(frozen=True)
class WarmUp:
    """What discover needs to start jobs: the run's reporter session, its clock, and its throttles."""

    iam: Callable[[], IAMClient]  # created when first needed
    clock: Callable[[], datetime]
    sleep: Callable[[float], None]
    throttle_count: Callable[[], int]

    def __call__(
        self, targets: Sequence[Target], store: LimitStore, ceiling: Ceiling, *, run_id: str, seconds: float
    ) -> list[Job]:
        """Start the first of `targets` while the shared limits grant them, up to the ceiling's jobs and
        for at most `seconds` (the first of them is due to be read by then: the lanes take over)."""
        limits = SharedLimits(
            store, ceiling, lane="discover", run_id=run_id, clock=self.clock, throttle_count=self.throttle_count
        )
        pacer = Pacer(limits.calls_per_second, monotonic=lambda: self.clock().timestamp(), sleep=self.sleep)
        until = self.clock() + timedelta(seconds=seconds)
        api = ReportApi(self.iam(), pacer, limits)
        started = start_first(targets[: ceiling.jobs], api, limits, self.clock, until=until)
        limits.idle()  # the lanes take the whole rate
        return started


def start_first(
    targets: Sequence[Target],
    api: ReportApi,
    limits: SharedLimits,
    clock: Callable[[], datetime],
    *,
    until: datetime,
) -> list[Job]:
    """Each target's job in turn, until `until`, while the limits grant one and IAM starts it; the jobs
    started. A target IAM rejects for good is left to its batch (which records why); "not now" ends it."""
    started: list[Job] = []
    for target in targets:
        if clock() >= until:
            break
        grant = limits.grant(target)
        if grant is None:
            break
        job, outcome = start_job(api, limits, Job(target=target), grant, clock)
        if isinstance(outcome, NotNow):
            break
        if isinstance(outcome, Started):
            started.append(job)
        # else rejected for good: its batch starts it again and records why
    return started
