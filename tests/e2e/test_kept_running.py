"""`python -m harness demo --keep-running`: after the demo's own run, an execution started through the printed
endpoint with plain boto3, as `aws stepfunctions start-execution` starts it (no name), runs the real functions
(not moto's echo stubs) and writes its snapshot."""

from __future__ import annotations

import io
import json
import re
import time
from pathlib import Path
from typing import Any, TextIO

import boto3
import pyarrow.parquet as pq
import pytest

from harness import cli
from lambdas.collector.services import services
from tests.e2e.conftest import FAST

pytestmark = pytest.mark.server


def run_through_the_endpoint(url: str, state_machine_arn: str) -> dict[str, Any]:
    """What a person does with the printed endpoint: start an execution, wait for it, list the bucket."""
    sfn = boto3.client("stepfunctions", endpoint_url=url, region_name="us-east-1")
    arn = sfn.start_execution(stateMachineArn=state_machine_arn, input=json.dumps(FAST))["executionArn"]
    deadline = time.monotonic() + 120
    while (description := sfn.describe_execution(executionArn=arn))["status"] == "RUNNING":
        assert time.monotonic() < deadline, "the execution started through the endpoint did not end"
        time.sleep(0.2)
    s3 = boto3.client("s3", endpoint_url=url, region_name="us-east-1")
    (bucket,) = [b["Name"] for b in s3.list_buckets()["Buckets"] if "-data-" in b["Name"]]
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket)
    keys = [o["Key"] for page in pages for o in page.get("Contents", [])]
    # whose rows the day's report_jobs file holds (a rerun writes the day's files under the same keys)
    jobs = [k for k in keys if re.search(r"report_jobs/dt=[^/]+/part-\d{5}-of-\d{5}\.parquet$", k)]
    runs = {
        run
        for k in jobs
        for run in pq.read_table(io.BytesIO(s3.get_object(Bucket=bucket, Key=k)["Body"].read()))["run_id"].to_pylist()
    }
    return {"run_id": arn.rsplit(":", 1)[-1], "description": description, "keys": keys, "job_runs": runs}


def test_an_execution_started_through_a_kept_running_demos_endpoint_runs_the_real_functions(
    template: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given the demo's command line, kept running (the session's template instead of a second synthesis)
    monkeypatch.setattr(cli, "synthesize", lambda: template)
    second: dict[str, Any] = {}

    def use_the_printed_endpoint(out: TextIO) -> None:  # where the command waits for Ctrl+C
        printed = capsys.readouterr().out
        url = re.search(r"Emulated AWS endpoint: (\S+)", printed)
        state_machine = re.search(r"--state-machine-arn (\S+)", printed)
        assert url is not None, printed
        assert state_machine is not None, printed
        second.update(run_through_the_endpoint(url[1], state_machine[1]))

    monkeypatch.setattr(cli, "wait_until_stopped", use_the_printed_endpoint)
    services.cache_clear()  # the handlers' clients: created for this endpoint

    # When the demo has run and another execution is started through its endpoint
    status = cli.main(["demo", "--keep-running", "--job-seconds", "0", "--output", str(tmp_path)])
    services.cache_clear()

    # Then both succeeded (the second named as AWS names it), and the second wrote its jobs and its snapshot
    assert status == 0
    run_id, keys = second["run_id"], second["keys"]
    assert re.fullmatch(r"[0-9a-f-]{36}", run_id)
    assert second["description"]["status"] == "SUCCEEDED", second["description"].get("cause")
    assert any(f"runs/{run_id}/parts/report_jobs/" in key for key in keys), keys
    for dataset in ("access_details", "report_jobs"):
        assert any(re.search(rf"{dataset}/dt=[^/]+/part-\d{{5}}-of-\d{{5}}\.parquet$", key) for key in keys), keys
    assert run_id in second["job_runs"]  # the day's report_jobs is the second run's (roots and OUs at least)
    assert run_id in (tmp_path / cli.KEPT_RUNNING_LOG).read_text()  # the functions' own logs
