"""When a batch's report jobs are worth a poll: report latency learned from IAM's own dates.

A job is due once it has run as long as the batch's slowest report took (IAM's JobCreationDate to
JobCompletionDate; the configured first wait until one has completed), so a poll that IAM would
answer IN_PROGRESS is rarely made. A job found still running raises the expectation by half of
its age, and is then polled on an exponential backoff.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from datetime import datetime

from lambdas.collector.models import Job, JobStatus, Polling


class Latency:
    """The batch's expected report latency, and what it says about when to read each job."""

    def __init__(self, seconds: float | None, polling: Polling, clock: Callable[[], datetime]) -> None:
        self.seconds, self.polling, self._clock = seconds, polling, clock

    def learn(self, created: datetime | None, completed: datetime | None) -> None:
        """A finished job's creation-to-completion time: the batch's latency is the longest seen."""
        if created is not None and completed is not None:
            took = max(0.0, (completed - created).total_seconds())
            self.seconds = took if self.seconds is None else max(self.seconds, took)

    def learn_running(self, job: Job) -> None:
        """A job still running at its age: reports take longer than that; expect half as long again,
        so the younger jobs are not polled too early one after another."""
        if job.started is not None and not job.polls:
            age = (self._clock() - job.started).total_seconds()
            self.seconds = max(self.expected, 1.5 * age)

    @property
    def expected(self) -> float:
        """How long a job takes: the batch's slowest so far, else the configured first wait."""
        return self.seconds if self.seconds is not None else self.polling.initial_wait_seconds

    def due_in(self, job: Job) -> float:
        """Seconds until a job in progress is worth a poll (<= 0: now)."""
        now = self._clock()
        if job.polls and job.checked is not None:  # polled IN_PROGRESS before: back off from then
            return self.polling.wait_after(job.polls - 1) - (now - job.checked).total_seconds()
        if job.started is None:
            return 0.0
        return self.expected - (now - job.started).total_seconds()

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
