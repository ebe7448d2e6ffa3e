"""How much IAM admits and how long its report jobs take: a model, chosen by name.

- `observed` (the default everywhere): what a live probe of real AWS showed in September 2026 —
  one report job in progress at a time, and report latencies (JobCreationDate to
  JobCompletionDate over 50 jobs): full OU or account reports 4.7-11.7 s (median 9.7), the root
  and the management account 5.9-7.4 s, small policy-selected reports 1.1-2.8 s, failed jobs
  0.5-3.0 s. Whether the cap of one holds per account or per entity path the capture cannot tell:
  `cap_scope` runs either reading (`account`, the pessimistic one, by default).
- `generous`: the emulator's earlier capacity (50 jobs in progress, every report 3 s), for
  comparison.

Latencies are drawn over the observed range, half below and half above the observed median (the
middle of the range where none was published), each half uniform, deterministically
from the model's seed and the job's target, and multiplied by the store's time scale so that tests
and the benchmark run the same model in seconds.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, replace
from enum import StrEnum


class CapScope(StrEnum):
    """What IAM's cap on report jobs in progress counts."""

    ACCOUNT = "account"  # every caller's jobs on every path of the account
    PATH = "path"  # the jobs on one entity path


class JobKind(StrEnum):
    FULL = "full"  # an OU or a member account, all SCPs
    ROOT = "root"  # the root or the management account
    POLICY = "policy"  # narrowed to one SCP
    FAILED = "failed"  # a job that ends FAILED


@dataclass(frozen=True)
class LatencyRange:
    """Seconds from a job's creation to its completion: `low`-`high`, centred on `median`."""

    low: float
    high: float
    median: float | None = None

    def __post_init__(self) -> None:
        middle = self.median if self.median is not None else (self.low + self.high) / 2
        if not 0 <= self.low <= middle <= self.high:
            raise ValueError(f"latency range needs 0 <= low <= median <= high, got {self}")

    def draw(self, rng: random.Random) -> float:
        """Half the draws below the median, half above, each half uniform over its side."""
        median = self.median if self.median is not None else (self.low + self.high) / 2
        u = rng.random()
        if u < 0.5:
            return self.low + (median - self.low) * 2 * u
        return median + (self.high - median) * 2 * (u - 0.5)


@dataclass(frozen=True)
class IamModel:
    name: str
    max_jobs_in_progress: int
    latency: dict[JobKind, LatencyRange]
    cap_scope: CapScope = CapScope.ACCOUNT
    # The same caller, path and policy within this many seconds of a job's creation get that job.
    reuse_seconds: float = 60.0
    seed: int = 0

    def __post_init__(self) -> None:
        if self.max_jobs_in_progress < 1:
            raise ValueError(f"max_jobs_in_progress must be >= 1, got {self.max_jobs_in_progress}")
        if set(self.latency) != set(JobKind):
            raise ValueError(f"a model needs a latency for every kind of job: {sorted(JobKind)}")

    def with_scope(self, scope: CapScope | str) -> IamModel:
        return replace(self, cap_scope=CapScope(scope))

    def job_seconds(self, kind: JobKind, key: str) -> float:
        """The latency of a job of `kind` on `key` (its path and policy), the same for the same seed."""
        rng = random.Random(f"{self.seed}|{kind.value}|{key}")
        seconds = self.latency[kind].draw(rng)
        return math.floor(seconds * 1000) / 1000


OBSERVED = IamModel(
    name="observed",
    max_jobs_in_progress=1,
    latency={
        JobKind.FULL: LatencyRange(4.7, 11.7, median=9.7),
        JobKind.ROOT: LatencyRange(5.9, 7.4),
        JobKind.POLICY: LatencyRange(1.1, 2.8),
        JobKind.FAILED: LatencyRange(0.5, 3.0),
    },
)
GENEROUS = IamModel(
    name="generous",
    max_jobs_in_progress=50,
    latency={kind: LatencyRange(3.0, 3.0) for kind in JobKind},
)
MODELS: dict[str, IamModel] = {model.name: model for model in (OBSERVED, GENEROUS)}


def model_named(name: str, scope: CapScope | str | None = None) -> IamModel:
    try:
        model = MODELS[name]
    except KeyError:
        raise ValueError(f"unknown IAM model {name!r}: choose one of {sorted(MODELS)}") from None
    return model.with_scope(scope) if scope is not None else model
