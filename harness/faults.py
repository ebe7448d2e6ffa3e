"""Faults answered to a boto3 client's requests in place of the service: a reusable, deterministic injector.

moto answers a client's requests from a `before-send` handler that every botocore session registers (moto
appends it to botocore's BUILTIN_HANDLERS when imported). botocore calls the handlers of the most specific
event name first (`before-send.s3.PutObject` before `before-send`), each node's `register_first` ones
first, and uses the first response one returns. So a handler registered here, first, on
`before-send.<service>.<Operation>` answers in moto's place, and the answer goes through the client's own
parsing and retries exactly as the service's would: a 503 `SlowDown` is retried by botocore's standard
mode, a 403 `AccessDenied` is not. botocore still calls the later handlers (it `emit`s, and keeps the first
response): moto would carry the request out behind the fault, so a request answered with a fault is first
pointed at `FAULT_URL`, a reserved host (RFC 6761) that moto passes by, and the service never sees it, as
with a real refusal.

    faults = FaultInjector(services().s3)           # the collector's own client (in-process functions)
    slow = faults.add(Fault(SLOW_DOWN, ("PutObject",), when=Bursts(ok=5, failing=2)))
    denied = faults.add(Fault(ACCESS_DENIED, S3_WRITES, keys=under("access_details/", "report_jobs/")))
    ...
    slow.injected, slow.matched                     # calls answered with the fault, calls that matched
    faults.lift()                                   # the service answers again

A fault matches a call by operation and by the call's object keys (S3's `Key`, or every key of a
DeleteObjects; a call without a key matches with the key ''). Which matching calls fail is decided by the
count of matching calls so far (`when`): the same sequence of calls gets the same faults. (Calls made from
concurrent threads, like the Distributed Map's batches, reach the count in the order they happen.)
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any
from xml.sax.saxutils import escape

from botocore.awsrequest import AWSResponse
from botocore.compat import HTTPHeaders


@dataclass(frozen=True)
class ServiceError:
    """An error answer: its HTTP status, code and message."""

    status: int
    code: str
    message: str


SLOW_DOWN = ServiceError(503, "SlowDown", "Please reduce your request rate.")
ACCESS_DENIED = ServiceError(403, "AccessDenied", "Access Denied")
# Every S3 operation that writes or deletes an object.
S3_WRITES = (
    "PutObject",
    "CopyObject",
    "CreateMultipartUpload",
    "UploadPart",
    "CompleteMultipartUpload",
    "DeleteObject",
    "DeleteObjects",
)


def always(_: int) -> bool:
    return True


@dataclass(frozen=True)
class Bursts:
    """`ok` matching calls answered by the service, then `failing` answered with the fault, and again."""

    ok: int
    failing: int

    def __call__(self, n: int) -> bool:
        return n % (self.ok + self.failing) >= self.ok


def under(*prefixes: str) -> Callable[[str], bool]:
    """A key predicate: the key starts with one of `prefixes`."""
    return lambda key: key.startswith(prefixes)


def everything(_: str) -> bool:
    return True


@dataclass
class Fault:
    """Answer `error` to the calls of `operations` with a key that `keys` accepts, whenever `when` (given
    how many such calls came before) says so. Of several faults, the first added that fails a call answers
    it (the later ones do not see that call)."""

    error: ServiceError
    operations: tuple[str, ...]
    keys: Callable[[str], bool] = everything
    when: Callable[[int], bool] = always
    matched: int = 0  # calls of those operations and keys, answered by the service or the fault
    injected: int = 0  # calls answered with the fault
    answered: list[tuple[str, str]] = field(default_factory=list)  # (operation, first key) of each

    def decide(self, operation: str, keys: list[str]) -> bool:
        if operation not in self.operations or not any(self.keys(key) for key in keys):
            return False
        fails = self.when(self.matched)
        self.matched += 1
        if fails:
            self.injected += 1
            self.answered.append((operation, keys[0]))
        return fails


_KEYS = "harness_faults_keys"  # where a call's object keys wait for its before-send
_OPERATION = "harness_faults_operation"  # and its operation's name
FAULT_URL = "https://fault.invalid/"  # where a request answered with a fault goes instead: nowhere


class _Raw:
    """The raw body botocore reads an answer from."""

    def __init__(self, body: bytes) -> None:
        self._body = body

    def stream(self, **_: Any) -> list[bytes]:
        return [self._body]


def error_body(protocol: str, error: ServiceError) -> tuple[bytes, str]:
    """The error as the service's protocol writes it, and its content type."""
    code, message = escape(error.code), escape(error.message)
    if protocol == "rest-xml":  # S3
        return f"<Error><Code>{code}</Code><Message>{message}</Message></Error>".encode(), "application/xml"
    if protocol in ("query", "ec2"):
        xml = f"<ErrorResponse><Error><Type>Sender</Type><Code>{code}</Code><Message>{message}</Message></Error>"
        return f"{xml}<RequestId>fault</RequestId></ErrorResponse>".encode(), "text/xml"
    if protocol in ("json", "rest-json"):
        return json.dumps({"__type": error.code, "message": error.message}).encode(), "application/x-amz-json-1.0"
    raise ValueError(f"no error body for the {protocol!r} protocol")


class FaultInjector:
    """Faults for one client: added with `add`, all lifted with `lift` (or on leaving the `with` block)."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.faults: list[Fault] = []
        self._lock = threading.Lock()
        self._service = client.meta.service_model.service_id.hyphenize()
        self._protocol = client.meta.service_model.protocol
        self._registered: list[tuple[str, Callable[..., Any]]] = []

    def add(self, fault: Fault) -> Fault:
        for operation in fault.operations:
            self._register(f"before-parameter-build.{self._service}.{operation}", _note_keys)
            self._register(f"before-send.{self._service}.{operation}", self._answer)
        self.faults.append(fault)
        return fault

    def lift(self) -> None:
        """Every fault gone: the service answers again (their counts stay readable)."""
        for event, handler in self._registered:
            self.client.meta.events.unregister(event, handler)
        self._registered.clear()
        self.faults = []

    def __enter__(self) -> FaultInjector:
        return self

    def __exit__(self, *_: type[BaseException] | BaseException | TracebackType | None) -> None:
        self.lift()

    @property
    def injected(self) -> int:
        return sum(fault.injected for fault in self.faults)

    def _register(self, event: str, handler: Callable[..., Any]) -> None:
        if (event, handler) not in self._registered:
            self.client.meta.events.register_first(event, handler)
            self._registered.append((event, handler))

    def _answer(self, request: Any, **_: Any) -> AWSResponse | None:
        operation = (request.context or {}).get(_OPERATION, "")
        keys = (request.context or {}).get(_KEYS, [""])
        with self._lock:
            error = next((fault.error for fault in self.faults if fault.decide(operation, keys)), None)
        if error is None:
            return None
        url, request.url = request.url, FAULT_URL  # the handlers after this one (moto's) pass it by
        body, content_type = error_body(self._protocol, error)
        headers = HTTPHeaders()
        headers["Content-Type"] = content_type
        return AWSResponse(url, error.status, headers, _Raw(body))


def _note_keys(params: Mapping[str, Any], model: Any, context: dict[str, Any], **_: Any) -> None:
    keys = [item["Key"] for item in params.get("Delete", {}).get("Objects", ())]
    context[_KEYS] = keys or [str(params.get("Key", ""))]
    context[_OPERATION] = model.name
