"""The IAM errors the access-report extension answers, as moto serializes them.

Codes and HTTP statuses are IAM's: `ReportGenerationLimitExceeded` (409) and `NoSuchEntity` (404) are
in the botocore model; `ValidationError`, `InvalidInput` and `Throttling` (400) are what IAM answers
for constraint violations, bad values and rate limits.
"""

from __future__ import annotations

from moto.iam.exceptions import IAMException


class ValidationError(IAMException):
    code = "ValidationError"


class InvalidInput(IAMException):
    code = "InvalidInput"


class AccessDenied(IAMException):
    """Not in IAM's service model, so moto would answer 400: the extension answers `http_status`."""

    code = "AccessDenied"
    http_status = 403


class ServiceFailure(IAMException):
    """IAM's `ServiceFailure` (500): not in these operations' model, so the extension answers `http_status`."""

    code = "ServiceFailure"
    http_status = 500

    def __init__(self) -> None:
        super().__init__("Request processing has failed because of an unknown error, exception or failure.")


class NoSuchEntity(IAMException):
    code = "NoSuchEntity"


class ReportGenerationLimitExceeded(IAMException):
    code = "ReportGenerationLimitExceeded"


class Throttling(IAMException):
    code = "Throttling"

    def __init__(self) -> None:
        super().__init__("Rate exceeded")


def constraint_error(field: str, value: object, constraint: str) -> ValidationError:
    """IAM's wording for a request value that breaks the API model's constraints."""
    return ValidationError(
        f"1 validation error detected: Value '{value}' at '{field}' failed to satisfy constraint: "
        f"Member must {constraint}"
    )
