"""The emulator in moto's server mode: a real AWS endpoint on loopback, with the two IAM report calls.

`EmulatorServer` is moto's threaded server in this process, so the report store of an account
(`store_for_account`) can be seeded and configured directly while clients talk HTTP to it.
"""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any
from unittest import mock

from moto.core.config import default_user_config
from moto.server import ThreadedMotoServer

from iam_report_emulator.iam_extension import install

LOOPBACK = "127.0.0.1"


@dataclass(frozen=True)
class Endpoint:
    host: str
    port: int

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def environment(self) -> dict[str, str]:
        """What a shell or SDK needs to talk to the emulator instead of AWS."""
        return {
            "AWS_ENDPOINT_URL": self.url,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
        }


class EmulatorServer:
    """moto's threaded server with the IAM extension; a context manager yielding its `Endpoint`.

    `moto_config` is posted to moto's `/moto-api/config` once started (e.g. Step Functions executing
    state machines); None leaves moto's defaults. moto keeps that configuration process-wide, so it is
    put back as it was when the server stops.
    """

    def __init__(self, host: str = LOOPBACK, port: int = 0, moto_config: Mapping[str, Any] | None = None) -> None:
        install()
        self._server = ThreadedMotoServer(ip_address=host, port=port, verbose=False)
        self._host = host
        self._moto_config = dict(moto_config or {})
        self._restore_config = mock.patch.dict(default_user_config)
        self.endpoint: Endpoint | None = None

    def start(self) -> Endpoint:
        self._restore_config.start()
        self._server.start()
        host, port = self._server.get_host_and_port()
        self.endpoint = Endpoint(self._host if host in ("0.0.0.0", "") else host, port)
        self._configure_moto(self.endpoint)
        return self.endpoint

    @staticmethod
    def _post(endpoint: Endpoint, path: str, body: object) -> None:
        request = urllib.request.Request(
            f"{endpoint.url}{path}",
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=10) as response:  # loopback only
            response.read()

    def _configure_moto(self, endpoint: Endpoint) -> None:
        self._post(endpoint, "/moto-api/reset", {})
        if self._moto_config:
            self._post(endpoint, "/moto-api/config", self._moto_config)

    def stop(self) -> None:
        self._server.stop()
        self._restore_config.stop()

    def __enter__(self) -> Endpoint:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.stop()
