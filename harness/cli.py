"""Command line of the harness: `python -m harness demo|report|query`.

`demo` and `report` start the emulator on loopback and seed it with the emulator's organization options
(`python -m iam_report_emulator serve` is the emulator alone).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from unittest import mock

from harness.athena_sql import run_query
from harness.collector_demo import OUTPUT, RunningCollector, load_output, run_collector_demo, running_collector
from harness.executions import handler_output
from harness.root_report import print_root_report
from harness.runner import MOTO_CONFIG, synthesize
from harness.tables import print_arrow
from iam_report_emulator import OrganizationSpec, store_for_account
from iam_report_emulator.cli import (
    add_organization_options,
    describe,
    describe_model,
    print_endpoint,
    seed_and_configure,
    wait_until_stopped,
)
from iam_report_emulator.server import EmulatorServer, Endpoint

KEPT_RUNNING_LOG = "lambda-logs-kept-running.jsonl"
DEMO_TIME_SCALE = 0.1


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m harness", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    demo = commands.add_parser(
        "demo", help="run the deployed state machine end to end on the emulator (what `make demo` runs)"
    )
    add_organization_options(demo)
    # IAM's observed model at a tenth of real time: 20 reports one at a time take ~20 s of IAM's time
    # instead of ~3 min.
    demo.set_defaults(time_scale=DEMO_TIME_SCALE)
    demo.add_argument(
        "--keep-running", action="store_true", help="leave the emulator and the collector up for the AWS CLI afterwards"
    )
    demo.add_argument("--output", type=Path, default=OUTPUT, help="where to leave a copy of the run")
    report = commands.add_parser("report", help="generate and print the root's access report")
    add_organization_options(report)
    query = commands.add_parser("query", help="run Athena SQL on the last demo's data (demo-output/)")
    query.add_argument("sql", help="one Athena SQL statement over access_details and report_jobs")
    query.add_argument("--output", type=Path, default=OUTPUT, help="the demo's output to query")
    return parser.parse_args(argv)


def query(sql: str, output: Path) -> int:
    print_arrow(run_query(sql, load_output(output)), sys.stdout, limit=1000)
    return 0


def keep_serving(endpoint: Endpoint, spec: OrganizationSpec, collector: RunningCollector, output: Path) -> None:
    """Serve until stopped, the collector's functions still running the real handlers (their logs to a file)."""
    out = sys.stdout
    out.write("\n")
    print_endpoint(endpoint, spec, out)
    arn = collector.deployment.state_machine_arn
    out.write(f"The collector: aws stepfunctions start-execution --state-machine-arn {arn} --input '{{}}'\n")
    output.mkdir(parents=True, exist_ok=True)
    log_path = output / KEPT_RUNNING_LOG
    out.write(f"Its functions log to {log_path}\n")
    with log_path.open("a") as log, handler_output(collector.lambdas, log):
        wait_until_stopped(out)


def demo(
    args: argparse.Namespace, endpoint: Endpoint, spec: OrganizationSpec, template: dict[str, Any], started: float
) -> int:
    with running_collector(template, spec) as collector:
        status = run_collector_demo(sys.stdout, spec, collector, output=args.output, started=started)
        if args.keep_running:
            keep_serving(endpoint, spec, collector, args.output)
    return status


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.command == "query":
        return query(args.sql, args.output)
    started = time.monotonic()
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # the endpoint's request log: not for these commands
    template = None
    if args.command == "demo":
        print("Synthesizing the CDK app (app.py with cdk.json's context) …", flush=True)
        template = synthesize()
    # Every client in this process, the handlers' included, talks to the emulator's endpoint while it runs.
    with (
        EmulatorServer(moto_config=MOTO_CONFIG) as endpoint,
        mock.patch.dict(os.environ, {**endpoint.environment(), "MOTO_PORT": str(endpoint.port)}),
    ):
        spec = seed_and_configure(args)
        print(f"Emulator at {endpoint.url}: {describe(spec)}")
        print(describe_model(store_for_account(spec.management_account_id).settings))
        if args.command == "report":
            return print_root_report(sys.stdout, endpoint, spec)
        assert template is not None
        return demo(args, endpoint, spec, template, started)
