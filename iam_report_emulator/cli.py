"""Command line of the emulator: `python -m iam_report_emulator serve|presets`.

The organization options and `seed_and_configure` are public: any command that starts the emulator
(the harness's `demo` and `report` included) seeds it the same way.
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
import threading
from collections.abc import Sequence
from typing import TextIO

from iam_report_emulator.iam_extension import REPORT_OPERATIONS, store_for_account
from iam_report_emulator.iam_model import MODELS, CapScope, model_named
from iam_report_emulator.presets import PRESETS, apply_preset
from iam_report_emulator.scp import DEFAULT_PRINCIPAL_EXEMPT_DENIES, PRINCIPAL_EXEMPT_DENIES
from iam_report_emulator.seed import OrganizationSpec
from iam_report_emulator.server import LOOPBACK, EmulatorServer, Endpoint
from iam_report_emulator.settings import ReportSettings
from iam_report_emulator.throttling import RateLimit


def add_organization_options(parser: argparse.ArgumentParser) -> None:
    """The options that choose the seeded organization and how its report jobs behave."""
    parser.add_argument("--preset", choices=sorted(PRESETS), default="demo", help="organization to seed")
    parser.add_argument("--seed", type=int, default=7, help="seed of the generated organization")
    parser.add_argument("--accounts", type=int, help="generate an organization of this many accounts instead")
    parser.add_argument(
        "--iam-model", choices=sorted(MODELS), default="observed", help="IAM's job cap and latencies (iam_model.py)"
    )
    parser.add_argument(
        "--cap-scope",
        choices=[scope.value for scope in CapScope],
        default=CapScope.ACCOUNT.value,
        help="what the job cap counts: every job of the account, or the jobs on one entity path",
    )
    parser.add_argument(
        "--time-scale", type=float, default=1.0, help="multiply every report latency and the reuse window by this"
    )
    parser.add_argument("--job-seconds", type=float, help="every report takes exactly this long (overrides the model)")
    parser.add_argument("--max-jobs", type=int, help="concurrent job cap (overrides the model)")
    parser.add_argument(
        "--throttle-rate", type=float, help="IAM report calls per second, both operations together (one token bucket)"
    )
    parser.add_argument("--throttle-failures", type=float, default=0.0, help="fraction of calls throttled")
    parser.add_argument(
        "--organizations-rate",
        type=float,
        help="Organizations calls per second of the management account, every operation together (one token "
        "bucket; AWS publishes no rate): beyond it TooManyRequestsException",
    )
    parser.add_argument(
        "--organizations-burst", type=float, help="the Organizations bucket's burst (default: one second's calls)"
    )
    parser.add_argument("--short-pages", type=int, help="return at most this many items per page")
    parser.add_argument("--fail", action="append", default=[], metavar="PATH", help="entity path whose job fails")
    parser.add_argument(
        "--principal-exempt-denies",
        choices=PRINCIPAL_EXEMPT_DENIES,
        default=DEFAULT_PRINCIPAL_EXEMPT_DENIES,
        help="a Deny whose Condition only exempts principals by ARN (break-glass): removes nothing (ignored) "
        "or counts as unconditional (applied); IAM's treatment is unknown",
    )


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m iam_report_emulator", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run the emulator as an AWS endpoint until interrupted")
    serve.add_argument("--host", default=LOOPBACK)
    serve.add_argument("--port", type=int, default=5000)
    add_organization_options(serve)
    commands.add_parser("presets", help="list the organizations `--preset` seeds")
    return parser.parse_args(argv)


def seed_and_configure(args: argparse.Namespace) -> OrganizationSpec:
    """Seed the organization and apply the options to its management account's report store."""
    spec = apply_preset(args.preset, seed=args.seed, accounts=args.accounts)
    store = store_for_account(spec.management_account_id)
    store.clock.resume()  # a running endpoint needs running time, also for the frozen example
    changes: dict[str, object] = {
        "model": model_named(args.iam_model, args.cap_scope),
        "time_scale": args.time_scale,
        "max_jobs_in_progress": args.max_jobs,
        "short_page_items": args.short_pages,
        "failing_paths": frozenset(p.removesuffix("/") for p in args.fail),
        "principal_exempt_denies": args.principal_exempt_denies,
        "organizations_rate_limit": organizations_rate_limit(args.organizations_rate, args.organizations_burst),
    }
    if args.job_seconds is not None:
        changes["job_seconds"] = args.job_seconds
    store.configure(**changes)
    limits: dict[str | tuple[str, ...], RateLimit] = {}
    if args.throttle_rate:
        limit = RateLimit(rate=args.throttle_rate, burst=max(1.0, args.throttle_rate))
        limits = {REPORT_OPERATIONS: limit}
    store.throttler.configure(limits=limits, failure_rate=args.throttle_failures, seed=args.seed)
    return spec


def organizations_rate_limit(rate: float | None, burst: float | None) -> RateLimit | None:
    """`--organizations-rate` and `--organizations-burst` as the setting (None: unthrottled)."""
    if not rate:
        return None
    return RateLimit(rate=rate, burst=burst if burst is not None else max(1.0, rate))


def describe_model(store_settings: ReportSettings) -> str:
    """The IAM model a store runs, in one line."""
    model = store_settings.model
    cap = store_settings.job_cap
    latency = (
        f"{store_settings.job_seconds:g} s per report"
        if store_settings.job_seconds is not None
        else (f"latencies x {store_settings.time_scale:g}")
    )
    return f"IAM model {model.name}: {cap} job(s) in progress per {model.cap_scope.value}, {latency}"


def describe(spec: OrganizationSpec) -> str:
    return (
        f"organization {spec.organization_id} (root {spec.root_id}), {len(spec.ous)} OUs, "
        f"{len(spec.accounts)} member accounts, management account {spec.management_account_id}"
    )


def print_endpoint(endpoint: Endpoint, spec: OrganizationSpec, out: TextIO) -> None:
    """The endpoint, the variables a shell needs to use it, and a first CLI call to try."""
    out.write(f"Emulated AWS endpoint: {endpoint.url}\n  {describe(spec)}\nExport these to use it:\n")
    for name, value in endpoint.environment().items():
        out.write(f"  export {name}={value}\n")
    root = f"{spec.organization_id}/{spec.root_id}"
    out.write(f"Try: aws iam generate-organizations-access-report --entity-path {root}\n")


def wait_until_stopped(out: TextIO) -> None:
    """Block until Ctrl+C or SIGTERM (call from the main thread: it installs the signal handler)."""
    out.write("Press Ctrl+C to stop.\n")
    out.flush()
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    with contextlib.suppress(KeyboardInterrupt):
        stopped.wait()


def list_presets(out: TextIO) -> int:
    for name, preset in PRESETS.items():
        out.write(f"{name:8}  {preset.description}\n")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.command == "presets":
        return list_presets(sys.stdout)
    with EmulatorServer(host=args.host, port=args.port) as endpoint:
        spec = seed_and_configure(args)
        print_endpoint(endpoint, spec, sys.stdout)
        settings = store_for_account(spec.management_account_id).settings
        sys.stdout.write(describe_model(settings) + "\n")
        if settings.organizations_rate_limit is not None:
            limit = settings.organizations_rate_limit
            sys.stdout.write(f"Organizations throttled at {limit.rate:g} calls/s (burst {limit.burst:g})\n")
        wait_until_stopped(sys.stdout)
    return 0
