"""The virtual clock: time jumps to the earliest wake time once every participant sleeps, and only then."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import pytest

from harness.virtual_time import VirtualClock
from iam_report_emulator.clock import EmulatorClock

START = datetime(2026, 11, 24, 3, 0, tzinfo=UTC)


@pytest.fixture
def clock() -> Iterator[VirtualClock]:
    virtual = VirtualClock(EmulatorClock(), START)
    yield virtual
    virtual.close()


def at(seconds: float) -> datetime:
    return START + timedelta(seconds=seconds)


def participant(clock: VirtualClock, work: Callable[[], None]) -> threading.Thread:
    """A thread doing `work` as a participant from the moment it is started (its token is lent before)."""
    clock.lend()

    def run() -> None:
        try:
            with clock.adopted():
                work()
        finally:
            clock.reclaim()

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def test_threads_sleeping_different_times_wake_in_order_at_their_virtual_times(clock: VirtualClock) -> None:
    woke: list[tuple[str, datetime]] = []
    lock = threading.Lock()

    def sleeper(name: str, seconds: float) -> Callable[[], None]:
        def work() -> None:
            clock.sleep(seconds)
            with lock:
                woke.append((name, clock.now()))

        return work

    real = time.monotonic()
    with clock.participant():  # both are asleep before time may move
        threads = [participant(clock, sleeper("long", 3600)), participant(clock, sleeper("short", 9.7))]
    for thread in threads:
        thread.join(timeout=10)
    # An hour of virtual time in well under a second of real time, each woken at its own time, in order
    assert woke == [("short", at(9.7)), ("long", at(3600))]
    assert time.monotonic() - real < 2
    assert clock.stats.jumps == 2
    assert clock.stats.advanced_seconds == pytest.approx(3600)


def test_time_holds_while_a_participant_is_busy_and_jumps_once_it_sleeps(clock: VirtualClock) -> None:
    busy = threading.Event()
    done = threading.Event()
    woke: list[datetime] = []

    def worker() -> None:
        busy.wait()  # busy: holding the clock, not sleeping on it
        clock.sleep(5)

    def sleeper() -> None:
        clock.sleep(60)
        woke.append(clock.now())
        done.set()

    with clock.participant():
        threads = [participant(clock, worker), participant(clock, sleeper)]
    # The sleeper waits: one participant is busy, so time does not move
    assert not done.wait(0.2)
    assert clock.now() == START
    # Once the busy one sleeps too, time jumps to its wake (5 s), then, once it has left, to the sleeper's
    busy.set()
    assert done.wait(5)
    for thread in threads:
        thread.join(timeout=5)
    assert woke == [at(60)]


def test_a_token_lent_to_another_thread_holds_time_across_the_handover(clock: VirtualClock) -> None:
    started = threading.Event()
    go = threading.Event()
    order: list[str] = []

    def sleeper() -> None:
        clock.sleep(1)
        order.append("sleeper woke")

    def worker() -> None:
        with clock.adopted():
            started.set()
            go.wait()
            order.append("worker done")

    sleeping = participant(clock, sleeper)
    with clock.lent():  # lent before the worker thread runs: no idle gap before it adopts it
        working = threading.Thread(target=worker)
        working.start()
        started.wait()
        time.sleep(0.05)
        assert clock.now() == START  # held by the worker
        go.set()
        working.join()
        assert order == ["worker done"]
        time.sleep(0.05)
        assert clock.now() == START  # still held: the token comes back here, not to the clock
    sleeping.join(timeout=5)
    assert order == ["worker done", "sleeper woke"]


def test_a_suspended_participant_holds_no_time_while_it_waits_for_another(clock: VirtualClock) -> None:
    woke: list[datetime] = []

    def sleeper() -> None:
        clock.sleep(30)
        woke.append(clock.now())

    with clock.participant():
        thread = participant(clock, sleeper)
        with clock.suspended():
            thread.join(timeout=5)
        assert woke == [at(30)]


def test_a_timer_fires_at_its_time_and_a_cancelled_one_never_moves_time(clock: VirtualClock) -> None:
    fired: list[datetime] = []
    cancelled = clock.timer(10, lambda: fired.append(clock.now()))
    clock.cancel(cancelled)
    timer = clock.timer(20, lambda: fired.append(clock.now()))
    deadline = time.monotonic() + 5
    while not fired and time.monotonic() < deadline:
        time.sleep(0.01)
    assert fired == [at(20)]
    assert timer.cancelled is False
    # With nothing left asleep, time moves only when told to
    clock.advance_to(at(86_400))
    assert clock.now() == at(86_400)


def test_time_cannot_be_moved_by_hand_while_a_participant_sleeps(clock: VirtualClock) -> None:
    release = threading.Event()

    def sleeper() -> None:
        clock.sleep(100)

    with clock.participant():  # holds time: the sleeper stays asleep
        thread = participant(clock, sleeper)
        time.sleep(0.05)
        with pytest.raises(RuntimeError, match="participants sleep"):
            clock.advance_to(at(1000))
        release.set()
    thread.join(timeout=5)
    assert clock.now() == at(100)


def test_a_sleep_shorter_than_the_clocks_resolution_still_moves_time_on(clock: VirtualClock) -> None:
    with clock.participant():
        clock.sleep(1e-9)
    assert clock.now() == START + timedelta(microseconds=1)
