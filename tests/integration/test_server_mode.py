"""The emulator as a real endpoint on loopback: boto3, the AWS CLI, `python -m iam_report_emulator serve`, and the
harness's commands that start it."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

import iam_report_emulator
from harness.cli import main
from harness.clients import role_session_client
from iam_report_emulator.presets import apply_preset
from iam_report_emulator.seed import OrganizationSpec
from iam_report_emulator.server import EmulatorServer, Endpoint
from tests.conftest import NO_RETRIES, REPORTER_ROLE
from tests.helpers import complete_report

pytestmark = pytest.mark.server
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def served() -> Iterator[tuple[Endpoint, OrganizationSpec]]:
    with EmulatorServer() as endpoint:
        spec = apply_preset("demo")
        iam_report_emulator.store_for_account(spec.management_account_id).configure(job_seconds=0)
        yield endpoint, spec


def reporter(endpoint: Endpoint, spec: OrganizationSpec, session: str) -> Any:
    role = f"arn:aws:iam::{spec.management_account_id}:role/{REPORTER_ROLE}"
    return role_session_client("iam", role, session, endpoint_url=endpoint.url, config=NO_RETRIES)


def test_the_main_flow_and_the_owner_rule_through_the_server(served: tuple[Endpoint, OrganizationSpec]) -> None:
    endpoint, spec = served
    owner = reporter(endpoint, spec, "run-a")
    job_id = owner.generate_organizations_access_report(EntityPath=f"{spec.organization_id}/{spec.root_id}")["JobId"]
    first, details = complete_report(owner, job_id, MaxItems=1000)
    assert first["NumberOfServicesAccessible"] == len(details) > 400
    with pytest.raises(ClientError) as raised:
        reporter(endpoint, spec, "run-b").get_organizations_access_report(JobId=job_id)
    assert raised.value.response["Error"]["Code"] == "NoSuchEntity"
    assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404


def aws_cli(endpoint: Endpoint, *args: str) -> dict[str, Any]:
    env = {**os.environ, **endpoint.environment()}
    done = subprocess.run(
        [sys.executable, "-m", "awscli", "--output", "json", *args],
        env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def test_the_aws_cli_generates_and_reads_a_report(served: tuple[Endpoint, OrganizationSpec]) -> None:
    endpoint, spec = served
    root = f"{spec.organization_id}/{spec.root_id}"
    job = aws_cli(endpoint, "iam", "generate-organizations-access-report", "--entity-path", root)
    report = aws_cli(endpoint, "iam", "get-organizations-access-report", "--job-id", job["JobId"], "--max-items", "5")
    assert report["JobStatus"] == "COMPLETED"
    assert len(report["AccessDetails"]) == 5
    assert report["NumberOfServicesAccessible"] > 400


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def test_python_m_iam_report_emulator_serve_prints_its_endpoint_and_answers_the_cli() -> None:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "iam_report_emulator", "serve", "--port", str(port), "--job-seconds", "0"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        assert process.stdout is not None
        printed = []
        for line in process.stdout:
            printed.append(line)
            if "Press Ctrl+C" in line:
                break
        text = "".join(printed)
        assert f"Emulated AWS endpoint: http://127.0.0.1:{port}" in text
        assert f"export AWS_ENDPOINT_URL=http://127.0.0.1:{port}" in text
        try_line = next(line for line in printed if line.startswith("Try: "))
        root = try_line.split("--entity-path ")[1].strip()
        endpoint = Endpoint("127.0.0.1", port)
        job = aws_cli(endpoint, "iam", "generate-organizations-access-report", "--entity-path", root)
        report = aws_cli(endpoint, "iam", "get-organizations-access-report", "--job-id", job["JobId"])
        assert report["JobStatus"] == "COMPLETED"
    finally:
        process.terminate()
        assert process.wait(timeout=20) == 0


def test_the_report_command_prints_the_roots_report_as_a_table(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", "--job-seconds", "0", "--short-pages", "50"]) == 0
    printed = capsys.readouterr().out
    assert "namespace" in printed
    assert "last used (UTC)" in printed
    assert "services allowed by SCPs at the root" in printed
    assert "(10 page(s)" in printed  # 456 services in pages of 50, read to the end


def test_the_demo_runs_the_deployed_state_machine_and_leaves_the_run_in_its_output(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    output = tmp_path / "demo-output"
    assert main(["demo", "--job-seconds", "0", "--output", str(output)]) == 0
    printed = capsys.readouterr().out
    for shown in ("state Discover", "state CollectBatches", "targets done 20 / 20", "Execution SUCCEEDED",
                  "== unused_services_latest.sql", "Subject: ", "access_details/dt="):  # fmt: skip
        assert shown in printed
    assert '"level"' not in printed  # the functions' JSON logs go to the output's log file
    summary = json.loads((output / "summary.json").read_text())
    assert (summary["execution_status"], summary["targets"], summary["jobs_by_status"]) == (
        "SUCCEEDED",
        20,
        {"COMPLETED": 20},
    )
    assert summary["iam_calls"]["GenerateOrganizationsAccessReport"] == 20
    alert = json.loads((output / "alert.json").read_text())
    assert alert["MessageAttributes"]["unused_services"]["Value"] == str(
        summary["query_rows"]["unused_services_latest"]
    )
    assert list(output.glob("access_details/dt=*/*.parquet"))
    assert list(output.glob("report_jobs/dt=*/*.parquet"))
    # `query` runs Athena SQL on that copy.
    assert main(["query", "SELECT count(*) AS n FROM access_details", "--output", str(output)]) == 0
    assert str(summary["rows"]) in capsys.readouterr().out
