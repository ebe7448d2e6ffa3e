"""When a batch's report jobs are worth a poll: report latency learned per kind of report, from IAM's
own dates.

Reports of a kind take alike (observed live: the root and the management account 5.9-7.4 s, full OU
and account reports 4.7-11.7 s, policy-selected ones 1.1-2.8 s), so the batch learns, per kind
(`JobKind`: root, OU, account, policy-selected), the creation-to-completion times IAM reported: the
longest, and the last `SAMPLES` of them. A job is read first once it has run as long as
`FIRST_READ_QUANTILE` of its kind's reports took (the longest, until `MIN_SAMPLES` are known): most
jobs are then read once, soon after they complete, and the few still running are read again when they
have run as long as the slowest report of their kind. Reading every job only at the slowest time
would leave IAM idle for the spread of the latencies after most jobs (with one job at a time, the
whole run waits for it); reading earlier would cost more reads. A quick kind is not held to a slow
kind's time. A kind not seen yet is expected to take as long as the slowest kind seen (the configured
first wait before any). A job still running past its kind's slowest time raises that to half as long
again as its age, and is polled again each time it has run half as long again (a backoff that follows
the job's own age, capped by the maximum wait).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from enum import StrEnum

from lambdas.collector.collect.limits import LATENCY_SAMPLES, PREDICTION
from lambdas.collector.models import Job, JobStatus, Polling, Target

MIN_BACKOFF_SECONDS = 1.0
SAMPLES = LATENCY_SAMPLES  # latencies kept per kind (in the batch's state: a few hundred bytes)
MIN_SAMPLES = 8
FIRST_READ_QUANTILE = 0.85  # about one job in seven is read a second time


def _quantile(samples: list[float]) -> float | None:
    """The `FIRST_READ_QUANTILE` of the samples, once `MIN_SAMPLES` are known."""
    if len(samples) < MIN_SAMPLES:
        return None
    return sorted(samples)[math.ceil(FIRST_READ_QUANTILE * len(samples)) - 1]


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

    def __init__(
        self,
        by_kind: Mapping[str, float],
        polling: Polling,
        clock: Callable[[], datetime],
        samples: Mapping[str, list[float]] | None = None,
    ) -> None:
        self.by_kind: dict[str, float] = dict(by_kind)
        self.samples: dict[str, list[float]] = {kind: list(values) for kind, values in (samples or {}).items()}
        self.polling, self._clock = polling, clock

    def learn(self, job: Job, created: datetime | None, completed: datetime | None) -> dict[str, float]:
        """A finished job's creation-to-completion time: its kind's latency is the longest seen; and,
        for a target whose last report time was known, how far off that was. Returns what was learned
        (for every lane: `SharedLimits.release`)."""
        if created is None or completed is None:
            return {}
        took = max(0.0, (completed - created).total_seconds())
        kind = JobKind.of(job.target)
        self.by_kind[kind] = max(took, self.by_kind.get(kind, 0.0))
        self.samples[kind] = [*self.samples.get(kind, []), round(took, 2)][-SAMPLES:]
        learned = {kind.value: took}
        expected = job.target.expected_seconds
        if expected:
            learned[PREDICTION] = ratio = took / expected
            self.samples[PREDICTION] = [*self.samples.get(PREDICTION, []), round(ratio, 3)][-SAMPLES:]
        return learned

    def seed(self, samples: Mapping[str, list[float]], slowest: Mapping[str, float]) -> None:
        """Start from what every lane and earlier runs learned, where this batch knows less."""
        for kind, values in samples.items():
            if len(values) > len(self.samples.get(kind, [])):
                self.samples[kind] = list(values)[-SAMPLES:]
        for kind, seconds in slowest.items():
            self.by_kind[kind] = max(seconds, self.by_kind.get(kind, 0.0))

    def learn_running(self, job: Job) -> None:
        """A job still running at its first read, past its kind's slowest time: reports of its kind take
        longer than that; expect half as long again, so its younger jobs are not read too early."""
        if job.started is not None and not job.polls:
            age = (self._clock() - job.started).total_seconds()
            if age >= self.slowest(job):
                self.by_kind[JobKind.of(job.target)] = 1.5 * age

    def slowest(self, job: Job) -> float:
        """Its kind's slowest report so far, else the slowest kind's, else the first wait."""
        known = self.by_kind.get(JobKind.of(job.target))
        if known is not None:
            return known
        return max(self.by_kind.values(), default=float(self.polling.initial_wait_seconds))

    def expected(self, job: Job) -> float:
        """When `job` is first worth a read. A target whose own last report time is known: that time,
        times how far such predictions have been off (the `FIRST_READ_QUANTILE` of actual ÷ expected,
        once `MIN_SAMPLES` are known; as predicted until then), never later than its kind's slowest.
        Otherwise its kind's `FIRST_READ_QUANTILE` once `MIN_SAMPLES` are known, else the slowest time
        (`slowest`)."""
        predicted = job.target.expected_seconds
        if predicted:
            factor = _quantile(self.samples.get(PREDICTION, []))
            return min(predicted * (1.0 if factor is None else factor), self.slowest(job))
        quantile = _quantile(self.samples.get(JobKind.of(job.target), []))
        return self.slowest(job) if quantile is None else quantile

    def due_in(self, job: Job) -> float:
        """Seconds until a job in progress is worth a poll (<= 0: now)."""
        if job.started is None:
            return 0.0
        now = self._clock()
        if job.polls and job.checked is not None:
            # Found IN_PROGRESS at `checked`: read again when it has run as long as its kind's slowest,
            # else once it has run half as long again (at least a second later, at most
            # `poll_max_wait_seconds`): a backoff that follows the job's own age.
            age_then = (job.checked - job.started).total_seconds()
            slowest = self.slowest(job)
            wait = slowest - age_then if slowest > age_then else 0.5 * age_then
            wait = min(float(self.polling.max_wait_seconds), max(MIN_BACKOFF_SECONDS, wait))
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
