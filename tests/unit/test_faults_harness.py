"""The fault injector (`harness.faults`) on moto, and the named S3 refusals (`lambdas.collector.store.access`)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from botocore.stub import Stubber
from moto import mock_aws

from harness.clients import client
from harness.faults import ACCESS_DENIED, S3_WRITES, SLOW_DOWN, Bursts, Fault, FaultInjector, under
from lambdas.collector.errors import StorageAccessError
from lambdas.collector.services import STANDARD_RETRIES
from lambdas.collector.store.access import name_denials

BUCKET = "fault-test-bucket"


@pytest.fixture
def s3() -> Iterator[Any]:
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1", config=STANDARD_RETRIES)
        s3.create_bucket(Bucket=BUCKET)
        yield s3


def keys(s3: Any) -> list[str]:
    return [item["Key"] for item in s3.list_objects_v2(Bucket=BUCKET).get("Contents", ())]


def test_a_slow_down_burst_answers_before_moto_and_the_standard_retries_absorb_it(s3: Any) -> None:
    with FaultInjector(s3) as faults:
        slow = faults.add(Fault(SLOW_DOWN, ("PutObject",), when=Bursts(ok=2, failing=1)))
        for n in range(4):
            s3.put_object(Bucket=BUCKET, Key=f"k{n}", Body=b"x")
    # calls 0, 1 answered by moto, 2 by the fault (k2, retried: call 3), 4 by moto: every object once
    assert (slow.matched, slow.injected, slow.answered) == (5, 1, [("PutObject", "k2")])
    assert keys(s3) == ["k0", "k1", "k2", "k3"]


def test_access_denied_is_not_retried_and_only_the_chosen_keys_meet_it(s3: Any) -> None:
    faults = FaultInjector(s3)
    denied = faults.add(Fault(ACCESS_DENIED, S3_WRITES, keys=under("data/")))
    s3.put_object(Bucket=BUCKET, Key="runs/a", Body=b"x")
    with pytest.raises(ClientError) as raised:
        s3.put_object(Bucket=BUCKET, Key="data/a", Body=b"x")
    assert raised.value.response["Error"]["Code"] == "AccessDenied"
    assert (denied.matched, denied.injected) == (1, 1)
    assert keys(s3) == ["runs/a"]  # moto never saw the refused request
    faults.lift()
    s3.put_object(Bucket=BUCKET, Key="data/a", Body=b"x")  # lifted: S3 answers again
    assert keys(s3) == ["data/a", "runs/a"]


def test_a_denied_write_is_a_storage_access_error_naming_the_object_and_the_grant(s3: Any) -> None:
    with FaultInjector(name_denials(name_denials(s3))) as faults:  # registering twice changes nothing
        faults.add(Fault(ACCESS_DENIED, S3_WRITES))
        with pytest.raises(StorageAccessError) as raised:
            s3.put_object(Bucket=BUCKET, Key="data/dt=1/a.parquet", Body=b"x")
        with pytest.raises(StorageAccessError, match="s3:DeleteObject grant") as deleted:
            s3.delete_objects(Bucket=BUCKET, Delete={"Objects": [{"Key": "a"}, {"Key": "b"}]})
    message = str(raised.value)
    assert message.startswith(
        f"S3 refused PutObject of s3://{BUCKET}/data/dt=1/a.parquet (AccessDenied: Access Denied)"
    )
    assert "the function role's s3:PutObject grant on the bucket" in message
    assert "the key policy's kms:GenerateDataKey" in message
    assert f"S3 refused DeleteObjects of s3://{BUCKET}/a and 1 more object(s)" in str(deleted.value)
    assert keys(s3) == []


def test_keys_a_delete_objects_refuses_inside_its_200_are_a_storage_access_error_too() -> None:
    s3 = name_denials(boto3.client("s3", region_name="us-east-1"))
    with Stubber(s3) as stub:
        refused = [{"Key": "b", "Code": "AccessDenied", "Message": "Access Denied"}]
        stub.add_response("delete_objects", {"Deleted": [{"Key": "a"}], "Errors": refused})
        with pytest.raises(
            StorageAccessError, match=rf"refused DeleteObjects of 1 of 2 object\(s\), first s3://{BUCKET}/b"
        ):
            s3.delete_objects(Bucket=BUCKET, Delete={"Objects": [{"Key": "a"}, {"Key": "b"}], "Quiet": True})


def test_other_errors_stay_botocores(s3: Any) -> None:
    name_denials(s3)
    with pytest.raises(ClientError) as raised:
        s3.get_object(Bucket=BUCKET, Key="missing")
    assert raised.value.response["Error"]["Code"] == "NoSuchKey"


@pytest.mark.parametrize(
    ("service", "operation", "method"),
    [("sns", "ListTopics", "list_topics"), ("dynamodb", "ListTables", "list_tables")],
)
def test_other_protocols_get_their_error_bodies(service: str, operation: str, method: str) -> None:
    with mock_aws():
        other = client(service)
        FaultInjector(other).add(Fault(ACCESS_DENIED, (operation,)))
        with pytest.raises(ClientError) as raised:
            getattr(other, method)()
    assert raised.value.response["Error"]["Code"] == "AccessDenied"
