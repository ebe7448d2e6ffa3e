"""`python -m harness.bench`: the benchmark's command line (`make bench`)."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from harness import bench, page_probe
from harness.bench.constants import FETCH_TARGETS, MAX_DAYS, MODELS, PAGE_SIZES, RATE, RESULTS, SIZES, STRESS_ACCOUNTS
from harness.bench.report import print_table
from harness.bench.units import run_bench
from harness.runner import synthesize


def _names(text: str) -> list[str]:
    names = [name for name in text.split(",") if name]
    unknown = sorted(set(names) - set(MODELS))
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown model(s) {unknown}: choose among {', '.join(MODELS)}")
    return names


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m harness.bench", description=(bench.__doc__ or "").splitlines()[0])
    parser.add_argument("--sizes", default=",".join(str(s) for s in SIZES), help="accounts per organization")
    parser.add_argument("--models", type=_names, default=list(MODELS), help="IAM models, comma-separated")
    parser.add_argument("--days", type=int, default=MAX_DAYS, help="most daily runs per observed model and size")
    parser.add_argument("--rate", type=float, default=RATE, help="IAM's report calls per second (one bucket)")
    parser.add_argument("--no-baseline", action="store_true", help="skip the naive collector")
    parser.add_argument("--no-memory", action="store_true", help="skip the fetch step's memory probe")
    parser.add_argument("--no-stress", action="store_true", help="skip the stressed run")
    parser.add_argument("--no-page", action="store_true", help="skip the report page's size and load times")
    parser.add_argument(
        "--jobs", type=int, default=min(2, os.cpu_count() or 1), help="units (a model at a size) run at once"
    )
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    out = sys.stdout
    out.write("Synthesizing the collector stack (its default configuration) ...\n")
    started = time.monotonic()
    results = run_bench(
        synthesize(),
        [int(size) for size in args.sizes.split(",") if size],
        out,
        models=args.models,
        rate=args.rate,
        max_days=args.days,
        baseline=not args.no_baseline,
        fetch_targets=None if args.no_memory else FETCH_TARGETS,
        stress=None if args.no_stress or "generous" not in args.models else STRESS_ACCOUNTS,
        jobs=args.jobs,
    )
    if not args.no_page:
        results["report_page"] = page_probe.probe(PAGE_SIZES, page_probe.OUTPUT, out)
    results["real_seconds"] = round(time.monotonic() - started, 1)
    out.write("\n")
    print_table(results, out)
    args.output.write_text(json.dumps(results, indent=2, default=str) + "\n")
    out.write(f"\nWrote {args.output} ({results['real_seconds']:,} s of real time)\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
