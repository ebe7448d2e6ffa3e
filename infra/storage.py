"""The collector's buckets: the data lake, the Athena query results, and the access logs of both.

The data bucket holds scratch parts under `{prefix}runs/` and the daily snapshots under
`{prefix}{dataset}/dt=…/` (see `lambdas.collector.store.storage.Layout`). Lifecycle rules, not code,
clean up: scratch expires after `scratch_days`, overwritten or deleted versions after
`NONCURRENT_DAYS`, and snapshots after `retention_days` when a retention is set. The log bucket is
versioned too, so a deleted access log stays recoverable for `NONCURRENT_DAYS`.

Encryption is SSE-S3: the data is IAM usage metadata, every reader is in the same account, and a
KMS key would add a key grant to every Lambda and Athena user without narrowing who can
read (the bucket policy and IAM already do that).
"""

from __future__ import annotations

import re
from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
from constructs import Construct

from infra.nag import acknowledge, acknowledge_guard, resource_finding
from lambdas.collector.names import DATA_PREFIX, Layout
from lambdas.collector.store.schema import DATASETS

NONCURRENT_DAYS = 30
LOG_DAYS = 365
RESULTS_DAYS = 30
# S3 access logs are delivered by the logging service principal through a bucket policy (AWS's
# recommendation), which also lets the log bucket disable ACLs. CDK only does so behind this flag;
# setting it on this construct makes the construct correct whatever the app's cdk.json says.
_LOGS_USE_BUCKET_POLICY = "@aws-cdk/aws-s3:serverAccessLogsUseBucketPolicy"


def validate_prefix(data_prefix: str) -> str:
    """`data_prefix` is empty or S3-safe path segments each ending in '/' (the functions' own pattern)."""
    if not re.fullmatch(DATA_PREFIX, data_prefix):
        raise ValueError(f"data_prefix must be '' or segments ending in '/' (e.g. 'org-access/'), got {data_prefix!r}")
    return data_prefix


class Storage(Construct):
    """Data, Athena results and access-log buckets, hardened alike: SSE-S3, TLS only, no public access."""

    def __init__(
        self, scope: Construct, id: str, *, data_prefix: str, scratch_days: int, retention_days: int | None
    ) -> None:
        super().__init__(scope, id)
        if scratch_days < 1:
            raise ValueError(f"scratch_days must be at least 1, got {scratch_days}")
        if retention_days is not None and retention_days < 1:
            raise ValueError(f"retention_days must be at least 1 or None (keep forever), got {retention_days}")
        self.node.set_context(_LOGS_USE_BUCKET_POLICY, True)  # before any child reads it
        self.data_prefix = validate_prefix(data_prefix)

        self.log_bucket = _bucket(
            self,
            "LogBucket",
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            versioned=True,  # the access logs are the record: a deletion leaves a recoverable version
            lifecycle_rules=[
                s3.LifecycleRule(
                    id="expire-logs",
                    expiration=cdk.Duration.days(LOG_DAYS),
                    noncurrent_version_expiration=cdk.Duration.days(NONCURRENT_DAYS),
                )
            ],
        )
        acknowledge_guard(
            self.log_bucket,
            {
                "s3_bucket_logging_enabled_check": "this is the access-log bucket the other two log to; logging "
                "its own access would need yet another bucket, with the same finding on that one"
            },
        )

        self.data_bucket = _bucket(
            self,
            "DataBucket",
            versioned=True,
            server_access_logs_bucket=self.log_bucket,
            server_access_logs_prefix="data/",
            lifecycle_rules=_data_rules(self.data_prefix, scratch_days, retention_days),
        )

        self.results_bucket = _bucket(
            self,
            "AthenaResultsBucket",
            server_access_logs_bucket=self.log_bucket,
            server_access_logs_prefix="athena-results/",
            # Query results are re-creatable by rerunning the query; keep them only for a while.
            lifecycle_rules=[
                s3.LifecycleRule(
                    id="expire-results",
                    expiration=cdk.Duration.days(RESULTS_DAYS),
                    abort_incomplete_multipart_upload_after=cdk.Duration.days(1),
                )
            ],
        )
        acknowledge_guard(
            self.results_bucket,
            {
                "s3_bucket_versioning_enabled_check": "not versioned: Athena query results are disposable outputs, "
                f"re-created by rerunning the query and expired after {RESULTS_DAYS} days; the data they are "
                "computed from is versioned"
            },
        )

    def grant_scratch_write(self, role: iam.IRole) -> None:
        """Put the run's scratch objects (manifest, parts): all discover and the batch stages write."""
        self._grant(role, self.data_bucket.grant_put, f"{Layout(self.data_prefix).scratch}*", _PUT_ACTIONS)

    def grant_scratch_resume(self, role: iam.IRole) -> None:
        """Read, list and delete the run's scratch: a retried batch stage reads its checkpoint (a missing one is
        a 404 only with s3:ListBucket, else a 403) and deletes the parts written after it."""
        pattern = f"{Layout(self.data_prefix).scratch}*"
        self._grant(role, self.data_bucket.grant_read, pattern, _READ_ACTIONS)
        self._grant(role, self.data_bucket.grant_delete, pattern, _DELETE_ACTIONS)

    def grant_snapshot_read(self, role: iam.IRole) -> None:
        """Read and list the data under the prefix: the alert reads the day's and the previous snapshot."""
        self._grant(role, self.data_bucket.grant_read, f"{self.data_prefix}*", _READ_ACTIONS)

    def grant_snapshot_write(self, role: iam.IRole) -> None:
        """Read the run's parts, write the day's snapshot, delete the files it replaces (finalize)."""
        pattern = f"{self.data_prefix}*"
        self._grant(role, self.data_bucket.grant_read_write, pattern, {**_READ_ACTIONS, **_PUT_ACTIONS})
        self._grant(role, self.data_bucket.grant_delete, pattern, _DELETE_ACTIONS)

    def _grant(self, role: iam.IRole, grant: Any, pattern: str, actions: dict[str, str]) -> None:
        grant(role, pattern)
        objects = self.data_bucket.arn_for_objects(pattern)
        acknowledge(
            role,
            {
                **{f"IAM5[Action::{action}]": reason for action, reason in actions.items()},
                resource_finding(self, objects): f"objects under '{pattern}' in the collector's own data bucket: "
                "keys are per run, batch and day, not known at deploy time",
            },
        )


# The wildcard actions of CDK's bucket grants, each on the data bucket only.
_READ_ACTIONS = {
    "s3:GetObject*": "CDK's read grant: GetObject and its version/ACL/tagging/attribute reads, on the data bucket only",
    "s3:GetBucket*": "CDK's read grant: the data bucket's own metadata (location, versioning), that bucket only",
    "s3:List*": "CDK's read grant: ListBucket (and version/multipart listings) of the data bucket only",
}
_PUT_ACTIONS = {
    "s3:Abort*": "CDK's put grant: s3:AbortMultipartUpload (the only Abort action) under the granted prefix",
}
_DELETE_ACTIONS = {
    "s3:DeleteObject*": "CDK's delete grant: DeleteObject/DeleteObjectVersion/DeleteObjectTagging under the "
    "prefix; finalize replaces a same-day rerun's files (versioning keeps the old ones recoverable)",
}


def _bucket(scope: Construct, id: str, **props: Any) -> s3.Bucket:
    """A bucket with the hardening all three share; RETAIN because logs and snapshots are the record."""
    bucket = s3.Bucket(
        scope,
        id,
        encryption=s3.BucketEncryption.S3_MANAGED,
        block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
        enforce_ssl=True,
        minimum_tls_version=1.2,
        removal_policy=cdk.RemovalPolicy.RETAIN,
        **props,
    )
    acknowledge_guard(bucket, _GUARD_REASONS)
    return bucket


# Control Tower rules all three buckets are exempt from, and why.
_GUARD_REASONS = {
    "s3_bucket_default_encryption_kms_check": "SSE-S3, not KMS (see the module's docstring): IAM usage metadata "
    "read only in this account, where a key grant to every function and Athena user would narrow nothing the "
    "bucket policy and IAM do not; S3 delivers server access logs only to an SSE-S3 bucket",
    "s3_bucket_object_lock_enabled_check": "no Object Lock: the lifecycle rules must delete scratch parts, old "
    "versions, expired logs and results on schedule, which a retention lock would block; loss is guarded by "
    "versioning (data and logs) and the RETAIN removal policy",
    "s3_event_notifications_enabled_check": "no event notifications: nothing reacts to an object landing; the "
    "state machine writes and reads the objects itself, so a notification would have no consumer",
}


def _data_rules(data_prefix: str, scratch_days: int, retention_days: int | None) -> list[s3.LifecycleRule]:
    layout = Layout(data_prefix)
    rules = [
        s3.LifecycleRule(
            id="expire-scratch", prefix=Layout(data_prefix).scratch, expiration=cdk.Duration.days(scratch_days)
        ),
        # Versioning protects snapshots from a bad rerun; old versions need not live forever.
        s3.LifecycleRule(
            id="expire-noncurrent",
            noncurrent_version_expiration=cdk.Duration.days(NONCURRENT_DAYS),
            expired_object_delete_marker=True,
            abort_incomplete_multipart_upload_after=cdk.Duration.days(1),
        ),
    ]
    if retention_days is not None:
        rules.extend(
            s3.LifecycleRule(
                id=f"expire-{dataset.name}",
                prefix=layout.dataset(dataset),
                expiration=cdk.Duration.days(retention_days),
            )
            for dataset in DATASETS
        )
        rules.append(
            s3.LifecycleRule(
                id="expire-recommendations",
                prefix=layout.recommendations,
                expiration=cdk.Duration.days(retention_days),
            )
        )
    return rules
