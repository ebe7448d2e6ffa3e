"""The real CDK CLI (`npx cdk synth`, pinned in package.json) on the real app: bundling included, no
Docker, no AWS account, no git. This is what `make synth` and `make deploy` run first."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from lambdas.collector.names import Function
from tests.infra.synth import ROOT

CDK = ROOT / "node_modules" / ".bin" / "cdk"
REPORTER_STACK = {"collector_account": "111122223333", "external_id": "org-access-report-7f3a"}
AARCH64 = 0xB7  # ELF e_machine of arm64


@pytest.fixture(scope="module")
def assembly(tmp_path_factory: pytest.TempPathFactory) -> Path:
    assert CDK.exists(), "the CDK CLI is missing: `make test` installs it from package.json (npm ci)"
    outdir = tmp_path_factory.mktemp("cdk.out")
    home = tmp_path_factory.mktemp("home")
    env = {
        key: value for key, value in os.environ.items() if not key.startswith("AWS_") and key != "CDK_DEFAULT_ACCOUNT"
    }
    env.update(
        # No credentials and no reachable AWS endpoint: a synth that needed AWS would fail here.
        AWS_CONFIG_FILE=str(home / "missing-config"),
        AWS_SHARED_CREDENTIALS_FILE=str(home / "missing-credentials"),
        AWS_EC2_METADATA_DISABLED="true",
        AWS_ENDPOINT_URL="http://127.0.0.1:9",
        CDK_DISABLE_CLI_TELEMETRY="true",
        JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION="20",
    )
    result = subprocess.run(
        [str(CDK), "synth", "--quiet", "--output", str(outdir),
         "--context", f"reporter_stack={json.dumps(REPORTER_STACK)}"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "docker" not in (result.stdout + result.stderr).lower()
    return outdir


def template(assembly: Path, stack: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((assembly / f"{stack}.template.json").read_text())
    return loaded


def test_the_cli_synthesizes_both_stacks_with_cdk_nag_passing(assembly: Path) -> None:
    manifest = json.loads((assembly / "manifest.json").read_text())
    stacks = {
        name for name, artifact in manifest["artifacts"].items() if artifact["type"] == "aws:cloudformation:stack"
    }
    assert stacks == {"OrgAccessReportCollector", "OrgAccessReportReporterRole"}
    (nag,) = json.loads((assembly / "validation-report.json").read_text())["pluginReports"]
    assert (nag["pluginName"], nag["conclusion"], nag["violations"]) == ("AwsSolutions", "success", [])
    # What was acknowledged is in the report with its reason, for the security review.
    assert nag["suppressedViolations"]
    assert all(len(v["reason"]) >= 40 for v in nag["suppressedViolations"])


def test_every_function_deploys_one_bundle_built_for_lambda_arm64_with_the_code(assembly: Path) -> None:
    functions = [
        r["Properties"]
        for r in template(assembly, "OrgAccessReportCollector")["Resources"].values()
        if r["Type"] == "AWS::Lambda::Function"
    ]
    keys = {f["Code"]["S3Key"] for f in functions}
    assert len(functions) == len(Function)
    assert len(keys) == 1
    (key,) = keys
    bundle = assembly / f"asset.{key.removesuffix('.zip')}"
    assert bundle.is_dir()
    for handler in (f["Handler"] for f in functions):
        module = handler.rsplit(".", 1)[0].replace(".", "/")
        assert (bundle / f"{module}.py").read_text() == (ROOT / f"{module}.py").read_text()
    assert not (bundle / "lambdas" / "requirements.txt").exists()
    assert not list(bundle.rglob("__pycache__"))
    # Compiled wheels are for CPython 3.13 on aarch64: check the ELF header, not the file name.
    (pyarrow,) = bundle.glob("pyarrow/lib.cpython-313-*.so")
    header = pyarrow.read_bytes()[:20]
    assert header[:4] == b"\x7fELF"
    assert int.from_bytes(header[18:20], "little") == AARCH64
    for package in ("aws_lambda_powertools", "pydantic", "pydantic_settings", "pydantic_core", "boto3"):
        assert (bundle / package).is_dir(), package


def test_the_bundle_fits_lambdas_unzipped_size_limit(assembly: Path) -> None:
    (bundle,) = [p for p in assembly.glob("asset.*") if p.is_dir()]
    size = sum(f.stat().st_size for f in bundle.rglob("*") if f.is_file())
    assert size < 250 * 1024 * 1024, f"{size / 2**20:.0f} MiB unzipped"  # Lambda's limit for a function
