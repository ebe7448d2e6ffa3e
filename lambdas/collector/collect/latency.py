"""When a batch's report jobs are worth a poll: report latency learned per kind of report, from IAM's
own dates.

Reports of a kind take alike (observed live: the root and the management account 5.9-7.4 s, full OU
and account reports 4.7-11.7 s, policy-selected ones 1.1-2.8 s), so the batch learns the longest
creation-to-completion time per kind (`JobKind`: root, OU, account, policy-selected) and reads a job
once it has run that long: a poll that IAM would answer IN_PROGRESS is rarely made, and a quick kind
is not held to a slow kind's time. A kind not seen yet is expected to take as long as the slowest kind
seen (the configured first wait before any). A job found still running raises its kind's expectation
to half as long again as its age, and is polled again each time it has run half as long again as when
it was last found running (a backoff that follows the job's own age, capped by the maximum wait).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from enum import StrEnum

from lambdas.collector.models import Job, JobStatus, Polling, Target

MIN_BACKOFF_SECONDS = 1.0


class JobKind(StrEnum):
    ROOT = "root"
    OU = "ou"
    ACCOUNT = "account"
    POLICY = "policy"  # narrowed to one SCP: far fewer services, far quicker

    @classmethod
    def of(cls, target: Target) -> JobKind:
        if target.policy_id is not None:
            return cls.POLICY
        return {"ROOT": cls.ROOT, "ORGANIZATIONAL_UNIT": cls.OU}.get(target.type.value, cls.ACCOUNT)


class Latency:
    """The batch's expected report latency per kind, and what it says about when to read each job."""

    def __init__(self, by_kind: Mapping[str, float], polling: Polling, clock: Callable[[], datetime]) -> None:
        self.by_kind: dict[str, float] = dict(by_kind)
        self.polling, self._clock = polling, clock

    def learn(self, job: Job, created: datetime | None, completed: datetime | None) -> None:
        """A finished job's creation-to-completion time: its kind's latency is the longest seen."""
        if created is not None and completed is not None:
            took = max(0.0, (completed - created).total_seconds())
            kind = JobKind.of(job.target)
            self.by_kind[kind] = max(took, self.by_kind.get(kind, 0.0))

    def learn_running(self, job: Job) -> None:
        """A job still running at its age: reports of its kind take longer than that; expect half as
        long again, so the kind's younger jobs are not polled too early one after another."""
        if job.started is not None and not job.polls:
            age = (self._clock() - job.started).total_seconds()
            self.by_kind[JobKind.of(job.target)] = max(self.expected(job), 1.5 * age)

    def expected(self, job: Job) -> float:
        """How long `job` takes: its kind's slowest so far, else the slowest kind's, else the first wait."""
        known = self.by_kind.get(JobKind.of(job.target))
        if known is not None:
            return known
        return max(self.by_kind.values(), default=float(self.polling.initial_wait_seconds))

    def due_in(self, job: Job) -> float:
        """Seconds until a job in progress is worth a poll (<= 0: now)."""
        if job.started is None:
            return 0.0
        now = self._clock()
        if job.polls and job.checked is not None:
            # Found IN_PROGRESS at `checked`: poll again once it has run half as long again (at least a
            # second later, at most `poll_max_wait_seconds`): a backoff that follows the job's own age.
            age_then = (job.checked - job.started).total_seconds()
            wait = min(float(self.polling.max_wait_seconds), max(MIN_BACKOFF_SECONDS, 0.5 * age_then))
            return wait - (now - job.checked).total_seconds()
        return self.expected(job) - (now - job.started).total_seconds()

    def next_wait(self, jobs: Iterable[Job]) -> int:
        """Whole seconds until the first pending job is due (0: at once): the state machine's Wait."""
        jobs = list(jobs)
        waits = [self.due_in(job) for job in jobs if job.status is JobStatus.IN_PROGRESS]
        if not waits:  # only jobs IAM has not admitted yet: back off
            waits = [
                self.polling.wait_after(max(0, job.unadmitted_rounds - 1))
                for job in jobs
                if job.status is JobStatus.NOT_STARTED
            ]
        return min(self.polling.max_wait_seconds, max(0, math.ceil(min(waits)))) if waits else 0
