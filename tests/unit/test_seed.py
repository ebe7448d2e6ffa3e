"""Seeded organizations: deterministic, nested, and of a realistic shape."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest

from iam_report_emulator.catalog import load_catalog
from iam_report_emulator.seed import CORE_SERVICES, generate_organization

NOW = datetime(2026, 11, 24, tzinfo=UTC)


def test_the_same_seed_gives_the_same_organization() -> None:
    first = generate_organization(accounts=60, seed=3, now=NOW)
    again = generate_organization(accounts=60, seed=3, now=NOW)
    other = generate_organization(accounts=60, seed=4, now=NOW)
    assert (first.organization_id, first.accounts, first.activity) == (
        again.organization_id,
        again.accounts,
        again.activity,
    )
    assert first.organization_id != other.organization_id


def test_ids_follow_aws_formats_and_ous_nest_five_deep() -> None:
    spec = generate_organization(accounts=400, seed=1, now=NOW)
    assert spec.organization_id.startswith("o-")
    assert len(spec.organization_id) == 12
    assert all(u.id.startswith(f"ou-{spec.root_id[2:]}-") for u in spec.ous)
    assert len({a.id for a in spec.accounts}) == 400
    assert all(len(a.id) == 12 and a.id.isdigit() for a in spec.accounts)
    depths = [len(spec.chain(u.id)) - 1 for u in spec.ous]
    assert max(depths) == 5


def test_activity_has_a_realistic_shape() -> None:
    spec = generate_organization(accounts=300, seed=2, now=NOW)
    users = Counter(record.namespace for record in spec.activity)
    members = len(spec.accounts)
    assert all(users[ns] > members * 0.5 for ns in ("sts", "s3"))  # used almost everywhere
    never_used = set(load_catalog().services) - set(users)
    assert len(never_used) > 300  # the long tail
    old = [r for r in spec.activity if timedelta(days=90) < NOW - r.when <= timedelta(days=400)]
    expired = [r for r in spec.activity if NOW - r.when > timedelta(days=400)]
    assert old
    assert expired
    assert len({r.region for r in spec.activity}) >= 4
    assert set(CORE_SERVICES) <= set(users)


def test_an_organization_needs_an_account() -> None:
    with pytest.raises(ValueError, match="at least one"):
        generate_organization(accounts=0, seed=1, now=NOW)


def test_accounts_joined_years_ago_but_a_few_recently() -> None:
    spec = generate_organization(accounts=160, seed=5, now=NOW)
    ages = [(NOW - account.joined).days for account in spec.accounts]
    recent = [age for age in ages if age < 90]
    assert len(recent) == 160 // 16  # one in sixteen: too new to be evidence that a service is unneeded
    assert all(10 <= age <= 80 for age in recent)
    assert all(400 <= age <= 1800 for age in ages if age >= 90)
    # The same seed gives the same dates
    again = generate_organization(accounts=160, seed=5, now=NOW)
    assert [a.joined for a in again.accounts] == [a.joined for a in spec.accounts]
