"""The emulator's clock: wall-clock time, optionally shifted or frozen.

Jobs complete, throttling buckets refill and the 400-day tracking window moves by this clock, so a
test or a preset can pin "now" (the `example` preset replays a report from 2019).
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta


class EmulatorClock:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._offset = timedelta(0)
        self._frozen_at: datetime | None = None

    def now(self) -> datetime:
        with self._lock:
            if self._frozen_at is not None:
                return self._frozen_at
            return datetime.now(UTC) + self._offset

    def freeze(self, at: datetime) -> None:
        """Stop the clock at `at` (aware); it moves only through `advance` until `resume`."""
        _require_aware(at)
        with self._lock:
            self._frozen_at = at

    def advance(self, seconds: float) -> None:
        with self._lock:
            if self._frozen_at is not None:
                self._frozen_at += timedelta(seconds=seconds)
            else:
                self._offset += timedelta(seconds=seconds)

    def resume(self) -> None:
        """Let a frozen clock run again from where it stood."""
        with self._lock:
            if self._frozen_at is not None:
                self._offset = self._frozen_at - datetime.now(UTC)
                self._frozen_at = None


def _require_aware(value: datetime) -> None:
    if value.tzinfo is None:
        raise ValueError("the emulator's clock needs an aware datetime (UTC)")
