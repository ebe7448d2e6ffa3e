"""The whole benchmark as units (a model at a size, the stressed run), each on its own emulator, run
one after another or `jobs` at a time in processes of their own."""

from __future__ import annotations

import functools
import io
import sys
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from multiprocessing import get_context
from typing import Any, TextIO, cast

from harness.bench.constants import (
    FETCH_TARGETS,
    LOGS,
    MAX_DAYS,
    MODELS,
    RATE,
    SEED,
    START,
    STEADY_TOLERANCE,
    STRESS_ACCOUNTS,
    STRESS_FAILURE_RATE,
    STRESS_JOB_CAP,
)
from harness.bench.goals import judge
from harness.bench.runs import _ratios, run_baseline_size, run_days, run_ours
from harness.fetch_probe import probe, probe_generate
from iam_report_emulator.iam_model import GENEROUS
from lambdas.collector.settings import Pace


@dataclass(frozen=True)
class Unit:
    """One piece of the benchmark, run on its own emulator: a model at a size (`stress`: the stressed run)."""

    model: str
    accounts: int

    def __str__(self) -> str:
        return f"{self.model} {self.accounts:,}"


def run_unit(
    template: dict[str, Any], unit: Unit, out: TextIO | None, *, rate: float, max_days: int, baseline: bool
) -> dict[str, Any]:
    """The figures of `unit` (`out`: None in a worker process, which prints to its stdout, each line
    prefixed with the unit)."""
    if out is None:
        out = cast(TextIO, Prefixed(sys.stdout, f"[{unit}] "))
    if unit.model == "stress":
        out.write(
            f"\n# {unit.accounts:,} accounts, stressed: {STRESS_FAILURE_RATE:.0%} of IAM calls throttled at "
            f"random, IAM admits {STRESS_JOB_CAP} jobs in progress\n"
        )
        figures = run_ours(template, unit.accounts, rate, out, failure_rate=STRESS_FAILURE_RATE, job_cap=STRESS_JOB_CAP)
        stressed = {
            "accounts": unit.accounts,
            "failure_rate": STRESS_FAILURE_RATE,
            "max_jobs_in_progress": STRESS_JOB_CAP,
        }
        return stressed | figures
    out.write(f"\n# {unit.model}, {unit.accounts:,} accounts: the collector\n")
    out.flush()
    if unit.model != "generous":
        return run_days(template, unit.model, unit.accounts, rate, out, max_days=max_days)
    figures = run_ours(template, unit.accounts, rate, out)
    if baseline:
        out.write(f"# {unit.accounts:,} accounts: the baseline\n")
        out.flush()
        figures["baseline"] = run_baseline_size(unit.accounts, rate, SEED)
        figures["ratios"] = _ratios(figures, figures["baseline"])
    return figures


class Prefixed(io.TextIOBase):
    """A stream that writes each line to `stream` after `prefix` (parallel units' progress, told apart)."""

    def __init__(self, stream: TextIO, prefix: str) -> None:
        self.stream, self.prefix, self._at_start = stream, prefix, True

    def write(self, text: str) -> int:
        for line in text.splitlines(keepends=True):
            self.stream.write((self.prefix if self._at_start and line.strip() else "") + line)
            self._at_start = line.endswith("\n")
        return len(text)

    def flush(self) -> None:
        self.stream.flush()


def run_bench(
    template: dict[str, Any],
    sizes: Sequence[int],
    out: TextIO,
    *,
    models: Sequence[str] = MODELS,
    rate: float = RATE,
    max_days: int = MAX_DAYS,
    baseline: bool = True,
    fetch_targets: int | None = FETCH_TARGETS,
    stress: int | None = STRESS_ACCOUNTS,
    jobs: int = 1,
) -> dict[str, Any]:
    """Every model at every size (the observed ones day after day), the baseline beside the generous
    runs, a stressed run, the fetch probe; the goals judged. With `jobs` > 1, that many units run at
    once, each in a process of its own (largest first)."""
    LOGS.mkdir(exist_ok=True)
    results: dict[str, Any] = {
        "model": {
            "iam_calls_per_second": rate,
            "job_seconds": 3.0,
            "max_jobs_in_progress": GENEROUS.max_jobs_in_progress,
            "start": START.isoformat(),
            "steady_tolerance": STEADY_TOLERANCE,
            "max_days": max_days,
        },
        "sizes": {},
        "models": {name: {} for name in models},
    }
    units = [Unit(name, accounts) for name in models for accounts in sizes]
    units += [Unit("stress", stress)] if stress else []
    work = functools.partial(run_unit, template, rate=rate, max_days=max_days, baseline=baseline)
    if jobs > 1:
        order = sorted(units, key=lambda u: (-u.accounts, u.model == "generous"))
        with ProcessPoolExecutor(max_workers=jobs, mp_context=get_context("spawn")) as pool:
            futures = {unit: pool.submit(work, unit, None) for unit in order}
            measured = {unit: future.result() for unit, future in futures.items()}
    else:
        measured = {unit: work(unit, out) for unit in units}
    for unit in units:
        if unit.model == "stress":
            results["stress"] = measured[unit]
            continue
        results["models"][unit.model][str(unit.accounts)] = measured[unit]
        if unit.model == "generous":
            results["sizes"][str(unit.accounts)] = measured[unit]
    if fetch_targets:
        out.write("\n# The fetch step's peak RSS, one invocation over a batch and over one ten times larger\n")
        try:
            results["fetch_memory"] = {"1x": probe(fetch_targets), "10x": probe(10 * fetch_targets)}
        except RuntimeError as error:  # reported with the goals, not at the cost of the runs measured
            lines = [line for line in str(error).splitlines() if line.strip()]
            results["fetch_memory"] = {"error": lines[-1] if lines else repr(error)}
        out.write("\n# The generate step's peak RSS, one invocation over a batch of the default size\n")
        try:
            results["generate_memory"] = probe_generate(Pace().batch_size)
        except RuntimeError as error:
            lines = [line for line in str(error).splitlines() if line.strip()]
            results["generate_memory"] = {"error": lines[-1] if lines else repr(error)}
    results["goals"] = judge(results)
    return results
