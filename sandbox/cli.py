"""Command line of the sandbox: `python -m sandbox serve|demo`."""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path

from sandbox.athena_sql import run_query
from sandbox.collector_demo import OUTPUT, load_output, print_arrow, run_collector_demo
from sandbox.demo import run_demo
from sandbox.iam_extension import REPORT_OPERATIONS, store_for_account
from sandbox.presets import PRESETS, apply_preset
from sandbox.runner import synthesize
from sandbox.seed import OrganizationSpec
from sandbox.server import LOOPBACK, Endpoint, SandboxServer
from sandbox.settings import DEFAULT_JOB_SECONDS, DEFAULT_MAX_JOBS_IN_PROGRESS
from sandbox.throttling import RateLimit


def _organization_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--preset", choices=sorted(PRESETS), default="demo", help="organization to seed")
    parser.add_argument("--seed", type=int, default=7, help="seed of the generated organization")
    parser.add_argument("--accounts", type=int, help="generate an organization of this many accounts instead")
    parser.add_argument("--job-seconds", type=float, default=DEFAULT_JOB_SECONDS, help="report job latency")
    parser.add_argument("--max-jobs", type=int, default=DEFAULT_MAX_JOBS_IN_PROGRESS, help="concurrent job cap")
    parser.add_argument(
        "--throttle-rate", type=float, help="IAM report calls per second, both operations together (one token bucket)"
    )
    parser.add_argument("--throttle-failures", type=float, default=0.0, help="fraction of calls throttled")
    parser.add_argument("--short-pages", type=int, help="return at most this many items per page")
    parser.add_argument("--fail", action="append", default=[], metavar="PATH", help="entity path whose job fails")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m sandbox", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run the sandbox as an AWS endpoint until interrupted")
    serve.add_argument("--host", default=LOOPBACK)
    serve.add_argument("--port", type=int, default=5000)
    _organization_options(serve)
    demo = commands.add_parser(
        "demo", help="run the deployed state machine end to end on the sandbox (what `make demo` runs)"
    )
    _organization_options(demo)
    demo.add_argument("--keep-running", action="store_true", help="leave the sandbox up for the AWS CLI afterwards")
    demo.add_argument("--output", type=Path, default=OUTPUT, help="where to leave a copy of the run")
    report = commands.add_parser("report", help="generate and print the root's access report")
    _organization_options(report)
    query = commands.add_parser("query", help="run Athena SQL on the last demo's data (demo-output/)")
    query.add_argument("sql", help="one Athena SQL statement over access_details and report_jobs")
    query.add_argument("--output", type=Path, default=OUTPUT, help="the demo's output to query")
    return parser.parse_args(argv)


def _seed_and_configure(args: argparse.Namespace) -> OrganizationSpec:
    """Seed the organization and apply the options to the sandbox's report store."""
    spec = apply_preset(args.preset, seed=args.seed, accounts=args.accounts)
    store = store_for_account(spec.management_account_id)
    store.clock.resume()  # a running endpoint needs running time, also for the frozen example
    changes: dict[str, object] = {"max_jobs_in_progress": args.max_jobs, "short_page_items": args.short_pages,
                                  "failing_paths": frozenset(p.removesuffix("/") for p in args.fail)}  # fmt: skip
    if args.preset != "example" or args.accounts is not None:
        changes["job_seconds"] = args.job_seconds
    store.configure(**changes)
    limits: dict[str | tuple[str, ...], RateLimit] = {}
    if args.throttle_rate:
        limit = RateLimit(rate=args.throttle_rate, burst=max(1.0, args.throttle_rate))
        limits = {REPORT_OPERATIONS: limit}
    store.throttler.configure(limits=limits, failure_rate=args.throttle_failures, seed=args.seed)
    return spec


def describe(spec: OrganizationSpec) -> str:
    return (
        f"organization {spec.organization_id} (root {spec.root_id}), {len(spec.ous)} OUs, "
        f"{len(spec.accounts)} member accounts, management account {spec.management_account_id}"
    )


def serve(endpoint: Endpoint, spec: OrganizationSpec) -> int:
    print(f"Sandbox AWS endpoint: {endpoint.url}\n  {describe(spec)}\nExport these to use it:")
    for name, value in endpoint.environment().items():
        print(f"  export {name}={value}")
    print(f"Try: aws iam generate-organizations-access-report --entity-path {spec.organization_id}/{spec.root_id}")
    print("Press Ctrl+C to stop.", flush=True)
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    with contextlib.suppress(KeyboardInterrupt):
        stopped.wait()
    return 0


def query(sql: str, output: Path) -> int:
    print_arrow(run_query(sql, load_output(output)), sys.stdout, limit=1000)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.command == "query":
        return query(args.sql, args.output)
    started = time.monotonic()
    template = None
    if args.command == "demo":
        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # the endpoint's request log: not for the demo
        print("Synthesizing the CDK app (app.py with cdk.json's context) …", flush=True)
        template = synthesize()
    port = args.port if args.command == "serve" else 0
    host = args.host if args.command == "serve" else LOOPBACK
    with SandboxServer(host=host, port=port) as endpoint:
        # Every client in this process, the handlers' included, talks to the sandbox's endpoint.
        os.environ.update({**endpoint.environment(), "MOTO_PORT": str(endpoint.port)})
        spec = _seed_and_configure(args)
        if args.command == "serve":
            return serve(endpoint, spec)
        print(f"Sandbox at {endpoint.url}: {describe(spec)}")
        if args.command == "report":
            return run_demo(sys.stdout, endpoint, spec)
        assert template is not None
        status = run_collector_demo(sys.stdout, spec, template, output=args.output, started=started)
        if args.keep_running:
            serve(endpoint, spec)
        return status
