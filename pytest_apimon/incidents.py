"""Incidents: one outage of one interface, from its first announcement to its recovery, and the groups told.

Every announced problem (NEW, FLAPPING, an ONGOING one found without an incident) opens an incident with a
short id (`#a3f9c2`) that its reminders and its RECOVERED carry too. The ledger also remembers which robots
("wecom/ops", "feishu/member-group") were told about it, so that:

- a RECOVERED (and a reminder) goes only to robots that got the NEW — a group that never heard of an outage
  never hears that it ended;
- a robot added while an incident is open, or routed to a service later, gets a NEW for it first.

The ledger lives in the state database (`state.py`, table `incidents`, schema v5): `StateStore.load_incidents`
gives the open incidents of one environment, `StateStore.save_incidents` replaces them, both written by the
controller that holds the run lock, so there is one writer at a time. This module holds only the logic; an
`incidents.json` ledger of an earlier version is imported once by the v5 migration.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field

log = logging.getLogger("pytest_apimon.incidents")

LEGACY_FILE = "incidents.json"  # the ledger before schema v5; state.py imports it once


def incident_id(env: str, key: str, opened_at: float) -> str:
    """Six hex digits, stable for one outage: sha256 of environment, interface key and opening time."""
    return hashlib.sha256(f"{env}\0{key}\0{opened_at:.3f}".encode()).hexdigest()[:6]


@dataclass
class Incident:
    id: str
    key: str  # interface key, service/name
    opened_at: float
    told: list[str] = field(default_factory=list)  # robots ("wecom/ops") that got its NEW


class Ledger:
    """The open incidents of one environment. Not thread-safe: the run lock makes the controller the writer.

    `Ledger(env, incidents)` starts from the incidents a store loaded; `open` is what to save back."""

    def __init__(self, env: str, incidents: Iterable[Incident] = ()) -> None:
        self.env = env
        self.open: dict[str, Incident] = {i.key: i for i in incidents}  # interface key -> its open incident
        self.closing: list[Incident] = []  # closed in this run (their RECOVERED goes to the robots told)

    def opened(self, key: str, now: float) -> Incident:
        """The open incident of key, opened now if there is none."""
        found = self.open.get(key)
        if found is None:
            found = self.open[key] = Incident(incident_id(self.env, key, now), key, now)
        return found

    def told(self, key: str, target: str) -> bool:
        found = self.open.get(key)
        return found is not None and target in found.told

    def tell(self, key: str, target: str) -> None:
        found = self.open.get(key)
        if found is not None and target not in found.told:
            found.told.append(target)

    def close(self, key: str) -> Incident | None:
        found = self.open.pop(key, None)
        if found is not None:
            self.closing.append(found)
        return found

    def close_all(self, keys: Iterable[str]) -> None:
        for key in keys:
            self.close(key)

    def closing_of(self, key: str) -> Incident | None:
        return next((i for i in self.closing if i.key == key), None)


def read_legacy(text: str) -> list[tuple[str, Incident]]:
    """(environment, incident) pairs of an `incidents.json` ledger of before schema v5:
    {env: {key: {"id": str, "opened_at": epoch seconds, "told": [robot, …]}}}. Raises ValueError when the text
    is not JSON; a malformed entry is skipped with a warning (it costs at most one repeated NEW)."""
    data = json.loads(text)
    found = []
    for env, entries in (data.items() if isinstance(data, dict) else ()):
        for key, raw in (entries.items() if isinstance(entries, dict) else ()):
            try:
                told = raw.get("told", [])
                found.append((str(env), Incident(str(raw["id"]), str(key), float(raw["opened_at"]),
                                                 [str(t) for t in told] if isinstance(told, list) else [])))
            except (AttributeError, KeyError, TypeError, ValueError):
                log.warning("skipped a malformed entry %r of the incident ledger", key)
    return found
