"""Command line of the sandbox: `python -m sandbox serve|demo`."""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
import threading
from collections.abc import Sequence

from sandbox.demo import run_demo
from sandbox.iam_extension import store_for_account
from sandbox.presets import PRESETS, apply_preset
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
    parser.add_argument("--throttle-rate", type=float, help="IAM report calls per second per operation")
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
    demo = commands.add_parser("demo", help="generate and print the root's access report")
    _organization_options(demo)
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
    limits = {}
    if args.throttle_rate:
        limit = RateLimit(rate=args.throttle_rate, burst=max(1.0, args.throttle_rate))
        limits = {"GenerateOrganizationsAccessReport": limit, "GetOrganizationsAccessReport": limit}
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


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    port = args.port if args.command == "serve" else 0
    host = args.host if args.command == "serve" else LOOPBACK
    with SandboxServer(host=host, port=port) as endpoint:
        spec = _seed_and_configure(args)
        if args.command == "serve":
            return serve(endpoint, spec)
        print(f"Sandbox at {endpoint.url}: {describe(spec)}")
        return run_demo(sys.stdout, endpoint, spec)
