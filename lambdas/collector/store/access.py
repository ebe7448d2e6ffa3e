"""S3 refusing the collector, named: a refused request on the data bucket raises `StorageAccessError`, which
says which operation on which object S3 refused and which grants to check, in place of botocore's "An error
occurred (AccessDenied) when calling the PutObject operation: Access Denied", which names neither.

`name_denials(s3)` hooks the client's own events, so it covers every call the client makes, whoever makes
it (the store's helpers, finalize's writer, the report page): each call's bucket and key are noted while
its parameters are built (`before-parameter-build`), and its answer is read once botocore has finished
retrying (`after-call`, before botocore would raise its `ClientError`). A refusal S3 answers inside a 200
counts too: DeleteObjects reports each key's error in its body, and a caller that reads no body would leave
the files in place without a word. Registering again is a no-op (botocore's `unique_id`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from lambdas.collector.errors import StorageAccessError

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

# S3's codes of a refusal; `KMS.*` are its answers when the bucket's KMS key refuses or cannot be used.
DENIED = frozenset({"AccessDenied", "AllAccessDisabled"})
# The IAM action each operation needs, and the KMS one an SSE-KMS bucket adds.
ACTIONS = {
    "PutObject": "s3:PutObject",
    "CopyObject": "s3:PutObject",
    "CreateMultipartUpload": "s3:PutObject",
    "UploadPart": "s3:PutObject",
    "CompleteMultipartUpload": "s3:PutObject",
    "DeleteObject": "s3:DeleteObject",
    "DeleteObjects": "s3:DeleteObject",
    "GetObject": "s3:GetObject",
    "HeadObject": "s3:GetObject",
    "ListObjectsV2": "s3:ListBucket",
    "ListObjects": "s3:ListBucket",
}
_READS = frozenset({"GetObject", "HeadObject", "ListObjectsV2", "ListObjects"})
_TARGET = "org_access_report_s3_object"  # where a call's (bucket, key, keys in the request) waits for its answer


def denied(code: str | None) -> bool:
    return code is not None and (code in DENIED or code.startswith("KMS."))


def name_denials(s3: S3Client) -> S3Client:
    """`s3`, raising `StorageAccessError` whenever S3 refuses one of its requests."""
    s3.meta.events.register("before-parameter-build.s3", _note_target, unique_id="org-access-report-note-target")
    s3.meta.events.register("after-call.s3", _name_denial, unique_id="org-access-report-name-denial")
    return s3


def fix(operation: str) -> str:
    """What to check when S3 refuses `operation` on the data bucket."""
    action = ACTIONS.get(operation, f"s3:{operation}")
    kms = "kms:Decrypt" if operation in _READS else "kms:GenerateDataKey" if action == "s3:PutObject" else None
    key = f", and, if the bucket's default encryption is SSE-KMS, the key policy's {kms} for the role" if kms else ""
    return (
        f"check the data bucket's policy (an explicit Deny), the function role's {action} grant on the bucket "
        f"and any SCP or permissions boundary over the collector's account{key}; then start the run again"
    )


def _note_target(params: Mapping[str, Any], context: dict[str, Any], **_: Any) -> None:
    keys = [item["Key"] for item in params.get("Delete", {}).get("Objects", ())]
    context[_TARGET] = (params.get("Bucket", "?"), params.get("Key") or (keys[0] if keys else ""), len(keys))


def _name_denial(http_response: Any, parsed: Mapping[str, Any], model: Any, context: dict[str, Any], **_: Any) -> None:
    operation = model.name
    bucket, key, count = context.get(_TARGET, ("?", "", 0))
    if http_response.status_code >= 300:
        error = parsed.get("Error", {})
        if denied(error.get("Code")):
            where = f"s3://{bucket}/{key}" + (f" and {count - 1} more object(s)" if count > 1 else "")
            raise StorageAccessError(
                f"S3 refused {operation} of {where} ({error['Code']}: {error.get('Message', '')}): {fix(operation)}"
            )
        return
    refused = [error for error in parsed.get("Errors", ()) if denied(error.get("Code"))]  # DeleteObjects
    if refused:
        first = refused[0]
        raise StorageAccessError(
            f"S3 refused {operation} of {len(refused)} of {count} object(s), first s3://{bucket}/{first.get('Key')} "
            f"({first['Code']}: {first.get('Message', '')}): {fix(operation)}"
        )
