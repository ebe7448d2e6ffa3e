"""The collector's named errors. The state machine retries or catches them by these names."""

from __future__ import annotations


class CollectorError(Exception):
    """Base of the errors the collector raises on purpose."""


class ConfigurationError(CollectorError):
    """A function's environment is missing a setting or has an invalid one (the message names it)."""


class TargetSelectionError(CollectorError):
    """The configured scope, include or exclude lists do not select a usable set of targets."""


class OrganizationNotReadyError(CollectorError):
    """The organization cannot answer an access report: not all features, SCPs not enabled at a root, or
    the reporter role not in its management account (the message says what to change)."""


class ReportSessionError(CollectorError):
    """The reporter role could not be assumed."""


class AlertDeliveryError(CollectorError):
    """The alert could not be published."""


class LimitsError(CollectorError):
    """The learned limits (the limits table) could not be read or written."""


class StorageAccessError(CollectorError):
    """S3 refused the collector a request on the data bucket (AccessDenied, or the bucket's KMS key): the
    message names the operation, the object and the grants to check. Not transient: never retried."""


class ReporterRoleDeniedError(ReportSessionError):
    """STS refused to let the collector assume the reporter role (AccessDenied): its trust policy, the
    ExternalId, or a policy above the caller says no. The message names the role, the caller and what to
    check. Not transient (another name than `ReportSessionError`, which is retried): never retried."""
