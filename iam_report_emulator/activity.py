"""The emulator's record of service access: which account last used which service, when and where.

Real IAM learns this from authentication events; the emulator is told it by the seed generator (or a
test). Only the latest access per account and service is kept, as that is all a report can show.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class Access:
    when: datetime
    region: str


class ActivityStore:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_account: dict[str, dict[str, Access]] = {}

    def record(self, account_id: str, namespace: str, when: datetime, region: str) -> None:
        if when.tzinfo is None:
            raise ValueError("access times must be aware datetimes (UTC)")
        with self._lock:
            services = self._by_account.setdefault(account_id, {})
            known = services.get(namespace)
            if known is None or when > known.when:
                services[namespace] = Access(when=when, region=region)

    def of_account(self, account_id: str) -> dict[str, Access]:
        return self._by_account.get(account_id, {})

    def clear(self) -> None:
        with self._lock:
            self._by_account.clear()
