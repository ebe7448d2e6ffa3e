"""What one invocation may spend: its pace of IAM calls, the limits IAM has shown, and the time it has left.

Each batch paces its IAM calls to its share of the account's learned call rate (`Pacer`: calls
spaced `1 / rate` apart, no bursts), starts a job only when the shared limits grant it
(`collect.limits`), and stops starting calls when its invocation's time runs short.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from lambdas.collector.collect.limits import SharedLimits


class Pacer:
    """Spaces calls `1 / rate` seconds apart (no bursts), sleeping when they come early."""

    def __init__(
        self,
        rate: float | None,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.rate = rate
        self._monotonic, self._sleep = monotonic, sleep
        self._next = 0.0
        self.slept = 0.0

    @property
    def interval(self) -> float:
        return 1.0 / self.rate if self.rate else 0.0

    def __call__(self) -> None:
        if not self.interval:
            return
        now = self._monotonic()
        if now < self._next:
            self._sleep(self._next - now)
            self.slept += self._next - now
            now = self._next
        self._next = now + self.interval


@dataclass(frozen=True)
class Budget:
    """An invocation's pace, its grants of jobs, the time it has left, and what "now" is (the emulator
    may move it)."""

    pacer: Pacer
    limits: SharedLimits
    time_left_ms: Callable[[], int]
    margin_ms: int
    clock: Callable[[], datetime]
    sleep: Callable[[float], None]  # waits for a job to come due (the clock must move with it)

    @property
    def out_of_time(self) -> bool:
        return self.time_left_ms() <= self.margin_ms

    def can_wait(self, seconds: float) -> bool:
        """Whether sleeping `seconds` still leaves the invocation its margin."""
        return self.time_left_ms() - seconds * 1000 > self.margin_ms
