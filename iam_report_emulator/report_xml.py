"""GetOrganizationsAccessReport's XML answer, written directly.

moto serialises a plain dict through the botocore model, walking every member of every shape: for a
report page of ~456 services that walk is most of what an emulated call costs, and at 10,000 targets
it would be most of a benchmark's time, spent simulating IAM rather than in the collector. This
writer produces the same document (the query protocol's `<member>` lists, ISO timestamps in UTC)
for this one operation; tests parse it with botocore and compare it with the store's answer.

A field absent from the answer (or None) has no element at all, never an empty one: a never-used row
is `<ServiceName>`, `<ServiceNamespace>` and `<TotalAuthenticatedEntities>0` only, as IAM answers it.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any
from xml.sax.saxutils import escape

NAMESPACE = "https://iam.amazonaws.com/doc/2010-05-08/"
_DETAIL_FIELDS = (
    "ServiceName",
    "ServiceNamespace",
    "Region",
    "EntityPath",
    "LastAuthenticatedTime",
    "TotalAuthenticatedEntities",
)
_RESULT_FIELDS = (
    "JobStatus",
    "JobCreationDate",
    "JobCompletionDate",
    "NumberOfServicesAccessible",
    "NumberOfServicesNotAccessed",
)


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return escape(str(value))


def _elements(values: Mapping[str, Any], fields: tuple[str, ...]) -> str:
    return "".join(f"<{name}>{_text(values[name])}</{name}>" for name in fields if values.get(name) is not None)


def _detail(detail: Mapping[str, Any]) -> str:
    return f"<member>{_elements(detail, _DETAIL_FIELDS)}</member>"


def get_report_response(report: Mapping[str, Any]) -> str:
    """The response document of GetOrganizationsAccessReport for the store's answer `report`."""
    parts = [_elements(report, _RESULT_FIELDS)]
    details = report.get("AccessDetails")
    if details is not None:
        parts.append(f"<AccessDetails>{''.join(_detail(d) for d in details)}</AccessDetails>")
    if "IsTruncated" in report:
        parts.append(f"<IsTruncated>{_text(report['IsTruncated'])}</IsTruncated>")
    if report.get("Marker") is not None:
        parts.append(f"<Marker>{_text(report['Marker'])}</Marker>")
    error = report.get("ErrorDetails")
    if error is not None:
        parts.append(f"<ErrorDetails>{_elements(error, ('Message', 'Code'))}</ErrorDetails>")
    return (
        f'<GetOrganizationsAccessReportResponse xmlns="{NAMESPACE}"><GetOrganizationsAccessReportResult>'
        f"{''.join(parts)}</GetOrganizationsAccessReportResult>"
        f"<ResponseMetadata><RequestId>{uuid.uuid4()}</RequestId></ResponseMetadata>"
        "</GetOrganizationsAccessReportResponse>"
    )
