"""The discrete-event clock: participants hold tokens, sleepers wait for their wake time, and time
jumps to the earliest one once no participant holds a token (see `harness.virtual_time`)."""

from __future__ import annotations

import contextlib
import heapq
import itertools
import math
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from iam_report_emulator.clock import EmulatorClock

# A real quiet period before each jump: a safety net only, for work the tokens would miss. Measured
# (`make bench` units at 100 accounts: three observed days per cap scope, the generous run, the stressed
# run at 1,000): with 50 ms, 0 of 6,419 quiet periods were broken by activity, and with none at all
# every run's virtual wall time came out the same to the 0.1 s (the stressed run, whose random throttles
# follow the threads' order, within 0.1 %). Before the Map's handover existed, this measure caught the
# one gap (the Map resuming after its last worker) that let a stressed run jump to its 12-hour timeout.
# 1 ms costs about 1 ms of real time per jump.
QUIET_SECONDS = 0.001


@dataclass(eq=False)
class _Sleeper:
    wake: datetime
    seq: int
    held: int  # the sleeping thread's tokens, given back when it wakes
    callback: Callable[[], None] | None = None  # a timer: run by the clock at its wake time
    cancelled: bool = False
    event: threading.Event = field(default_factory=threading.Event)

    def __lt__(self, other: _Sleeper) -> bool:
        return (self.wake, self.seq) < (other.wake, other.seq)


@dataclass
class ClockStats:
    jumps: int = 0
    advanced_seconds: float = 0.0  # virtual seconds the jumps added up to
    sleeps: int = 0
    interrupted_quiet: int = 0  # quiet periods broken by activity: jumps the tokens alone would have made early
    quiet_real_seconds: float = 0.0  # real time spent waiting out quiet periods


class VirtualClock:
    """A discrete-event clock over an `EmulatorClock`, which it freezes at `start` (or its current time)."""

    def __init__(
        self, clock: EmulatorClock, start: datetime | None = None, *, quiet_seconds: float = QUIET_SECONDS
    ) -> None:
        self._clock = clock
        clock.freeze(start or clock.now())
        self.quiet_seconds = quiet_seconds
        self.stats = ClockStats()
        self._cond = threading.Condition()
        self._busy = 0
        self._local = threading.local()
        self._sleepers: list[_Sleeper] = []
        self._seq = itertools.count()
        self._changes = 0
        self._closed = False
        self._coordinator = threading.Thread(target=self._coordinate, name="virtual-clock", daemon=True)
        self._coordinator.start()

    def now(self) -> datetime:
        return self._clock.now()

    @property
    def busy(self) -> int:
        with self._cond:
            return self._busy

    # -- tokens ------------------------------------------------------------------------------

    def _held(self) -> int:
        return int(getattr(self._local, "held", 0))

    def _add(self, busy: int, held: int) -> None:
        with self._cond:
            self._busy += busy
            self._local.held = self._held() + held
            if self._busy < 0:
                raise RuntimeError("virtual clock: more tokens given back than were held")
            self._changed()

    def _changed(self) -> None:
        self._changes += 1
        if self._busy == 0:
            self._cond.notify()

    @contextlib.contextmanager
    def participant(self) -> Iterator[None]:
        """This thread holds virtual time while inside (except while it sleeps)."""
        self._add(1, 1)
        try:
            yield
        finally:
            self._add(-1, -1)

    def lend(self) -> None:
        """A token for another thread's work (which `adopted` it), counted from before it starts."""
        self._add(1, 0)

    def reclaim(self) -> None:
        """A lent token given back, after the work it was lent for has ended."""
        self._add(-1, 0)

    @contextlib.contextmanager
    def lent(self) -> Iterator[None]:
        """A token lent for the work done inside (on another thread), reclaimed after it."""
        self.lend()
        try:
            yield
        finally:
            self.reclaim()

    @contextlib.contextmanager
    def adopted(self) -> Iterator[None]:
        """This thread works on a token `lent` to it (its sleeps give it up)."""
        self._add(0, 1)
        try:
            yield
        finally:
            self._add(0, -1)

    @contextlib.contextmanager
    def suspended(self) -> Iterator[None]:
        """This thread waits for other participants: it holds no time while inside."""
        held = self._held()
        self._add(-held, -held)
        try:
            yield
        finally:
            self._add(held, held)

    # -- sleeping and timers -----------------------------------------------------------------

    def _push(self, seconds: float, held: int, callback: Callable[[], None] | None = None) -> _Sleeper:
        with self._cond:
            # Rounded up to the clock's microsecond: a sleep always moves time on (a bucket that waits
            # for a fraction of a token would otherwise wake at the same instant for ever).
            wake = self.now() + timedelta(microseconds=math.ceil(seconds * 1e6))
            sleeper = _Sleeper(wake, next(self._seq), held, callback)
            heapq.heappush(self._sleepers, sleeper)
            self._busy -= held
            self._local.held = self._held() - held
            self.stats.sleeps += callback is None
            self._changed()
            return sleeper

    def sleep(self, seconds: float) -> None:
        """Block until virtual time has moved on by `seconds`, holding none of this thread's tokens."""
        if seconds <= 0:
            return
        held = self._held()
        sleeper = self._push(seconds, held)
        sleeper.event.wait()
        self._local.held = self._held() + held  # the clock counted them busy again when it woke us

    def timer(self, seconds: float, callback: Callable[[], None]) -> _Sleeper:
        """Run `callback` (on the clock's thread) once virtual time has moved on by `seconds`."""
        return self._push(seconds, 0, callback)

    def cancel(self, timer: _Sleeper) -> None:
        with self._cond:
            timer.cancelled = True
            self._changed()

    def advance_to(self, when: datetime) -> None:
        """Move time on to `when` between runs (nothing may be asleep)."""
        with self._cond:
            if any(not s.cancelled for s in self._sleepers):
                raise RuntimeError("virtual clock: cannot jump while participants sleep")
            if when > self.now():
                self._clock.advance((when - self.now()).total_seconds())

    def close(self) -> None:
        """Stop the clock; every sleeper still waiting wakes at once."""
        with self._cond:
            self._closed = True
            for sleeper in self._sleepers:
                sleeper.event.set()
            self._sleepers.clear()
            self._cond.notify()
        self._coordinator.join()

    # -- the coordinator ---------------------------------------------------------------------

    def _idle(self) -> bool:
        while self._sleepers and self._sleepers[0].cancelled:
            heapq.heappop(self._sleepers)
        return self._busy == 0 and bool(self._sleepers)

    def _coordinate(self) -> None:
        with self._cond:
            while not self._closed:
                if not self._idle():
                    self._cond.wait()
                    continue
                if self.quiet_seconds > 0:
                    seen, started = self._changes, time.monotonic()
                    self._cond.wait(self.quiet_seconds)
                    self.stats.quiet_real_seconds += time.monotonic() - started
                    if self._changes != seen:
                        self.stats.interrupted_quiet += 1
                        continue
                    if not self._idle():
                        continue
                timers = self._jump()
                if timers:
                    self._cond.release()
                    try:
                        for callback in timers:
                            callback()
                    finally:
                        self._cond.acquire()

    def _jump(self) -> list[Callable[[], None]]:
        """Move to the earliest wake time; wake every sleeper due then (counting its tokens busy again)."""
        wake = self._sleepers[0].wake
        now = self.now()
        if wake > now:
            seconds = (wake - now).total_seconds()
            self._clock.advance(seconds)
            self.stats.jumps += 1
            self.stats.advanced_seconds += seconds
        timers = []
        while self._sleepers and self._sleepers[0].wake <= wake:
            sleeper = heapq.heappop(self._sleepers)
            if sleeper.cancelled:
                continue
            self._busy += sleeper.held
            if sleeper.callback is not None:
                timers.append(sleeper.callback)
            sleeper.event.set()
        self._changes += 1
        return timers
