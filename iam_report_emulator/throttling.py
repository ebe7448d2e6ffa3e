"""Throttling injection for the emulated IAM report calls.

IAM rate-limits its APIs with token buckets that callers cannot raise (AWS does not publish the
rates). The emulator reproduces that per operation, or for a group of operations sharing one bucket
(rate and burst), or every operation of a service in one bucket (`EVERY_OPERATION`), and can also fail a
fixed fraction of calls at random. The caller answers a refused call with the service's throttling code
(IAM's `Throttling`, Organizations' `TooManyRequestsException`), which botocore's `standard` and `adaptive`
retry modes recognise.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime

# The key of a limit every operation without a limit of its own shares (one bucket for the service).
EVERY_OPERATION = "*"


@dataclass(frozen=True)
class RateLimit:
    """`rate` calls per second sustained, bursts up to `burst` calls."""

    rate: float
    burst: float

    def __post_init__(self) -> None:
        if self.rate <= 0 or self.burst < 1:
            raise ValueError(f"RateLimit needs rate > 0 and burst >= 1, got {self!r}")


@dataclass
class TokenBucket:
    limit: RateLimit
    tokens: float
    updated: datetime

    def take(self, now: datetime) -> bool:
        elapsed = max(0.0, (now - self.updated).total_seconds())
        self.tokens = min(self.limit.burst, self.tokens + elapsed * self.limit.rate)
        self.updated = now
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        return False


@dataclass
class ThrottleCounters:
    calls: dict[str, int] = field(default_factory=dict)
    throttled: dict[str, int] = field(default_factory=dict)


class Throttler:
    """Decides, per call, whether an operation is throttled; counts calls and throttles."""

    def __init__(self, clock: Callable[[], datetime]) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._limits: dict[str, tuple[tuple[str, ...], RateLimit]] = {}
        self._buckets: dict[tuple[str, ...], TokenBucket] = {}
        self._failure_rate = 0.0
        self._random = random.Random(0)
        self.counters = ThrottleCounters()

    def configure(
        self,
        limits: Mapping[str | tuple[str, ...], RateLimit] | None = None,
        failure_rate: float = 0.0,
        seed: int = 0,
    ) -> None:
        """`limits` by operation name, or by a tuple of names that share one bucket; `EVERY_OPERATION`: one
        bucket for every operation that has no limit of its own."""
        if not 0.0 <= failure_rate < 1.0:
            raise ValueError(f"failure_rate must be in [0, 1), got {failure_rate}")
        by_operation: dict[str, tuple[tuple[str, ...], RateLimit]] = {}
        for key, limit in (limits or {}).items():
            group = (key,) if isinstance(key, str) else tuple(key)
            for operation in group:
                if operation in by_operation:
                    raise ValueError(f"{operation} has two rate limits")
                by_operation[operation] = (group, limit)
        with self._lock:
            self._limits = by_operation
            self._buckets = {}
            self._failure_rate = failure_rate
            self._random = random.Random(seed)

    def admit(self, operation: str) -> bool:
        """Count a call to `operation`; False means answer it with `Throttling`."""
        with self._lock:
            self.counters.calls[operation] = self.counters.calls.get(operation, 0) + 1
            admitted = self._admit_locked(operation)
            if not admitted:
                self.counters.throttled[operation] = self.counters.throttled.get(operation, 0) + 1
            return admitted

    def _admit_locked(self, operation: str) -> bool:
        if self._failure_rate and self._random.random() < self._failure_rate:
            return False
        found = self._limits.get(operation) or self._limits.get(EVERY_OPERATION)
        if found is None:
            return True
        group, limit = found
        bucket = self._buckets.get(group)
        now = self._clock()
        if bucket is None:
            bucket = self._buckets[group] = TokenBucket(limit, limit.burst, now)
        return bucket.take(now)
