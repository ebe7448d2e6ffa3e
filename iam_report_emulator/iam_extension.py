"""moto extension: IAM's GenerateOrganizationsAccessReport and GetOrganizationsAccessReport.

`install()` registers both operations on moto's IAM responses (and the emulator's other extensions:
trust policies evaluated on `sts:AssumeRole`, Organizations' throttle); afterwards they work under
`mock_aws` and in moto's server mode. The state of each account lives on that account's moto IAM
backend, so a fresh `mock_aws` (which resets the backends) starts clean. Requests are validated as
the botocore model constrains them, and answered with IAM's error codes.
"""

from __future__ import annotations

import re
from typing import Any

from moto.core.responses import ActionResult
from moto.iam.responses import IamResponse
from moto.organizations.models import organizations_backends
from moto.sts.models import sts_backends

from iam_report_emulator import organizations_extension, sts_extension
from iam_report_emulator.errors import AccessDenied, ServiceFailure, constraint_error
from iam_report_emulator.permissions import missing_reads
from iam_report_emulator.report_xml import get_report_response
from iam_report_emulator.reports_content import DEFAULT_SORT_KEY, SORT_KEYS
from iam_report_emulator.stores import report_store, store_for_account

__all__ = ["REPORT_OPERATIONS", "install", "report_store", "store_for_account"]

GENERATE = "GenerateOrganizationsAccessReport"
GET = "GetOrganizationsAccessReport"
REPORT_OPERATIONS = (GENERATE, GET)

# Constraints from the botocore model iam/2010-05-08.
ENTITY_PATH_PATTERN = r"^o-[0-9a-z]{10,32}\/r-[0-9a-z]{4,32}[0-9a-z-\/]*"
POLICY_ID_PATTERN = r"^p-[0-9a-zA-Z_]{8,128}$"
MARKER_PATTERN = r"[\u0020-\u00FF]+"
DEFAULT_MAX_ITEMS = 100


def _require_length(field: str, value: str, low: int, high: int) -> None:
    if not low <= len(value) <= high:
        raise constraint_error(field, value, f"have length between {low} and {high}")


def _require_pattern(field: str, value: str, pattern: str) -> None:
    if re.match(pattern, value) is None:
        raise constraint_error(field, value, f"satisfy regular expression pattern: {pattern}")


def validate_generate(entity_path: Any, policy_id: Any) -> None:
    if not entity_path:
        raise constraint_error("entityPath", None, "not be null")
    _require_length("entityPath", entity_path, 19, 427)
    _require_pattern("entityPath", entity_path, ENTITY_PATH_PATTERN)
    if policy_id is not None:
        _require_pattern("organizationsPolicyId", policy_id, POLICY_ID_PATTERN)


def validate_get(job_id: Any, max_items: Any, marker: Any, sort_key: Any) -> None:
    if not job_id:
        raise constraint_error("jobId", None, "not be null")
    _require_length("jobId", job_id, 36, 36)
    if max_items is not None and not 1 <= int(max_items) <= 1000:
        raise constraint_error("maxItems", max_items, "have value between 1 and 1000")
    if marker is not None:
        _require_length("marker", marker, 1, 320)
        _require_pattern("marker", marker, MARKER_PATTERN)
    if sort_key is not None and sort_key not in SORT_KEYS:
        raise constraint_error("sortKey", sort_key, f"satisfy enum value set: [{', '.join(SORT_KEYS)}]")


def _caller(response: IamResponse) -> str:
    """The principal ARN of the request: the assumed-role session, the IAM user, or moto's default."""
    sts = sts_backends[response.current_account][response.partition]
    return sts.get_caller_identity(response.get_access_key(), response.region)[1]


def _with_status(self: IamResponse, error: AccessDenied | ServiceFailure) -> tuple[str | bytes, dict[str, Any]]:
    """An error IAM's model does not list for the operation (moto would answer 400), with IAM's status."""
    _, headers, body = self.serialized(ActionResult(error))
    return body, {**headers, "status": str(error.http_status)}


def generate_organizations_access_report(self: IamResponse) -> ActionResult | tuple[str | bytes, dict[str, Any]]:
    store = report_store(self.backend)
    try:
        store.admit(GENERATE)
    except ServiceFailure as error:
        return _with_status(self, error)
    entity_path = self._get_param("EntityPath")
    policy_id = self._get_param("OrganizationsPolicyId")
    validate_generate(entity_path, policy_id)
    org_backend = organizations_backends[self.current_account][self.partition]
    caller = _caller(self)
    missing = missing_reads(self.backend, caller, policy_id)
    try:
        job = store.generate(org_backend, entity_path, policy_id, owner=caller, missing_reads=missing)
    except AccessDenied as error:  # moto would answer 400 for an error IAM's model does not list
        return _with_status(self, error)
    return ActionResult({"JobId": job.job_id})


def get_organizations_access_report(self: IamResponse) -> str | tuple[str | bytes, dict[str, Any]]:
    store = report_store(self.backend)
    try:
        store.admit(GET)
    except ServiceFailure as error:
        return _with_status(self, error)
    job_id = self._get_param("JobId")
    max_items = self._get_param("MaxItems")
    marker = self._get_param("Marker")
    sort_key = self._get_param("SortKey")
    validate_get(job_id, max_items, marker, sort_key)
    report = store.read(
        job_id,
        owner=_caller(self),
        max_items=int(max_items) if max_items is not None else DEFAULT_MAX_ITEMS,
        marker=marker,
        sort_key=sort_key or DEFAULT_SORT_KEY,
    )
    return get_report_response(report)


def install() -> None:
    """Register the two operations with moto, with STS's trust policies and Organizations' throttle beside
    them (idempotent). Call before the first request."""
    IamResponse.generate_organizations_access_report = generate_organizations_access_report  # type: ignore[attr-defined]
    IamResponse.get_organizations_access_report = get_organizations_access_report  # type: ignore[attr-defined]
    sts_extension.install()
    organizations_extension.install()
