"""The sandbox in moto's server mode: a real AWS endpoint on loopback, seeded and extended."""

from __future__ import annotations

import json
import urllib.request
from dataclasses import dataclass
from types import TracebackType

from moto.server import ThreadedMotoServer

from sandbox.iam_extension import install

LOOPBACK = "127.0.0.1"
SANDBOX_CONFIG = {"stepfunctions": {"execute_state_machine": True}, "lambda": {"use_docker": False}}


@dataclass(frozen=True)
class Endpoint:
    host: str
    port: int

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def environment(self) -> dict[str, str]:
        """What a shell or SDK needs to talk to the sandbox instead of AWS."""
        return {
            "AWS_ENDPOINT_URL": self.url,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
        }


class SandboxServer:
    """moto's threaded server with the IAM extension; a context manager."""

    def __init__(self, host: str = LOOPBACK, port: int = 0) -> None:
        install()
        self._server = ThreadedMotoServer(ip_address=host, port=port, verbose=False)
        self._host = host
        self.endpoint: Endpoint | None = None

    def start(self) -> Endpoint:
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
        self._post(endpoint, "/moto-api/config", SANDBOX_CONFIG)

    def stop(self) -> None:
        self._server.stop()

    def __enter__(self) -> Endpoint:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.stop()
