"""Virtual time for a whole deployed run: a day of IAM's observed latencies in seconds of real time.

One time for everything: the emulator's clock (`AccessReportStore.clock`, frozen) is moved on only by
`VirtualClock`, a discrete-event clock. A thread that sleeps on it registers its wake time and blocks;
time jumps to the earliest wake time once every participant is asleep or blocked on another one, and
never otherwise. Computing takes no virtual time; the real time it takes is reported apart.

Participants hold *tokens*, counted by the clock (`busy`). `simulated()` gives them out where moto's
Step Functions interpreter runs work on a thread of its own, and hands them over where one thread waits
for another, so that no gap between two pieces of work ever shows the clock an idle system:

- a program (the execution's, or a Distributed Map child's) holds one while it runs its states;
  whoever runs it (`Program.eval`) lends it first and takes it back after, and holds none itself while
  waiting;
- a Task or Map state's body runs on a thread of its own (`ExecutionState._evaluate_with_timeout`): the
  state's thread lends it a token the same way;
- a Map's workers each hold one (lent at launch), and the Map holds none while it awaits them; the
  close of its last job hands one to the Map before it wakes it;
- a sleep (a Wait state, a Retry's back-off, the functions' own waits through `services().sleep`,
  botocore's retry delays, the latency of an IAM report call) gives up the sleeper's tokens until its
  wake time; the clock hands them back when it wakes it.

The clock also waits for a real quiet period (`quiet_seconds`) before a jump, a safety net for work
the tokens do not see; `ClockStats.interrupted_quiet` counts the quiet periods that activity broke (each
would have been a jump too early without it). Executions start and stop, history events are stamped,
and Lambda contexts count their 15 minutes (`harness.runner.LambdaContext`) on this clock, and an
execution past its state machine's TimeoutSeconds times out on it.

Limits: time spent computing is not virtual time, so a run that computes a lot between IAM calls is
shown faster than it is (its computing time is reported apart); moto's own waits that nothing here
replaces (a Task's TimeoutSeconds, an Activity, a callback) stay in real time and hold virtual time
still while they wait; the quiet period is real time, so on a loaded machine it may be too short to
cover work the tokens miss (`interrupted_quiet` then shows how often).
"""

from __future__ import annotations

from harness.virtual_time.clock import QUIET_SECONDS, ClockStats, VirtualClock
from harness.virtual_time.lambda_times import LambdaTimes, timed
from harness.virtual_time.patches import IAM_CALL_SECONDS, simulated

__all__ = ["IAM_CALL_SECONDS", "QUIET_SECONDS", "ClockStats", "LambdaTimes", "VirtualClock", "simulated", "timed"]
