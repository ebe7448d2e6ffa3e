"""The Lambda code asset, bundled on this machine with pip for the Lambda platform (no Docker).

`pip install --platform manylinux2014_aarch64 --platform manylinux_2_28_aarch64 --only-binary=:all:`
fetches the arm64 wheels for Python 3.13 (without the 2_28 tag pip falls back to an old pyarrow);
then the `lambdas` package is copied beside them. The asset hash is taken from the output, so a
changed dependency or file never reuses a stale bundle.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import aws_cdk as cdk
import jsii
from aws_cdk import aws_lambda as lambda_

ROOT = Path(__file__).resolve().parent.parent
LAMBDAS = ROOT / "lambdas"
PYTHON_VERSION = "3.13"
RUNTIME = lambda_.Runtime.PYTHON_3_13  # the same version, for the functions and the bundling image


@jsii.implements(cdk.ILocalBundling)
class PipBundling:
    def try_bundle(self, output_dir: str, *, image: cdk.DockerImage, **_: object) -> bool:
        subprocess.run(
            [
                sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                "-r", str(LAMBDAS / "requirements.txt"),
                "--target", output_dir, "--no-compile",
                "--platform", "manylinux2014_aarch64", "--platform", "manylinux_2_28_aarch64",
                "--implementation", "cp", "--python-version", PYTHON_VERSION, "--only-binary=:all:",
            ],
            check=True,
        )  # fmt: skip
        shutil.copytree(
            LAMBDAS,
            Path(output_dir) / "lambdas",
            ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "requirements.txt"),
            dirs_exist_ok=True,
        )
        return True


def lambda_code() -> lambda_.Code:
    return lambda_.Code.from_asset(
        str(LAMBDAS),
        asset_hash_type=cdk.AssetHashType.OUTPUT,
        bundling=cdk.BundlingOptions(
            image=RUNTIME.bundling_image,
            local=PipBundling(),
            # Used only if local bundling were impossible; kept equivalent to the local one.
            command=[
                "bash",
                "-c",
                "pip install -r requirements.txt -t /asset-output && mkdir -p /asset-output/lambdas && "
                "cp -r . /asset-output/lambdas",
            ],
        ),
    )
