"""The learned limits in their DynamoDB item (moto's DynamoDB): one item per organization, written
only if nobody wrote it since it was read, a lost race re-applied on the fresh state."""

from __future__ import annotations

from typing import Any

import pytest

from harness.clients import client
from lambdas.collector.collect.limits import Ceiling, DynamoLimitStore, LimitState, admitted, grant
from lambdas.collector.errors import LimitsError
from tests.collector_run import LIMITS_TABLE, create_limits_table

ORG = "o-a1b2c3d4e5"


@pytest.fixture
def dynamodb(aws: Any) -> Any:
    create_limits_table()
    return client("dynamodb")


def test_a_new_organization_starts_at_one_job_and_what_is_learned_is_kept(dynamodb: Any) -> None:
    store = DynamoLimitStore(dynamodb, LIMITS_TABLE, ORG)
    assert store.read() == LimitState()
    ceiling = Ceiling(50, 20.0)
    granted = store.change(lambda s: grant(s, "a", 0.0, ceiling))
    probe = store.change(lambda s: grant(s, "b", 0.0, ceiling))
    assert granted is not None
    assert probe is not None
    assert probe.probe
    store.change(lambda s: (admitted(s, "b", 1.0), None))
    # Another function's store (a later invocation, another lane, the next run) reads what was learned
    again = DynamoLimitStore(dynamodb, LIMITS_TABLE, ORG).read()
    assert (again.admitted, set(again.leases), again.version) == (2, {"a", "b"}, 3)
    assert DynamoLimitStore(dynamodb, LIMITS_TABLE, "o-zzzzzzzzzz").read() == LimitState()  # per organization


def test_a_lane_that_loses_the_race_applies_its_change_again_to_what_the_winner_wrote(dynamodb: Any) -> None:
    ours, theirs = (DynamoLimitStore(dynamodb, LIMITS_TABLE, ORG) for _ in range(2))
    ceiling = Ceiling(1, 20.0)
    attempts: list[LimitState] = []

    def take_the_slot(state: LimitState) -> Any:
        attempts.append(state)
        if len(attempts) == 1:  # between our read and our write, the other lane takes the one slot
            theirs.change(lambda s: grant(s, "theirs", 0.0, ceiling))
        return grant(state, "ours", 0.0, Ceiling(1, 20.0))

    state = ours.read()
    assert state.next_probe == 0.0  # a probe would be due: make it not so, for a plain race on one slot
    ours.change(lambda s: (LimitState(next_probe=1e12), None))
    result = ours.change(take_the_slot)
    assert len(attempts) == 2  # the first write lost (the version moved), the second saw their lease
    assert result is None  # no slot: theirs holds it
    assert set(ours.read().leases) == {"theirs"}


def test_a_missing_table_is_a_named_error(aws: Any) -> None:
    with pytest.raises(LimitsError, match="no-such-table"):
        DynamoLimitStore(client("dynamodb"), "no-such-table", ORG).read()
