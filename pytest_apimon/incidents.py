"""Incidents: one outage of one interface, from its first announcement to its recovery, and the groups told.

Every announced problem (NEW, FLAPPING, an ONGOING one found without an incident) opens an incident with a
short id (`#a3f9c2`) that its reminders and its RECOVERED carry too. The ledger also remembers which robots
("wecom/ops", "feishu/member-group") were told about it, so that:

- a RECOVERED (and a reminder) goes only to robots that got the NEW — a group that never heard of an outage
  never hears that it ended;
- a robot added while an incident is open, or routed to a service later, gets a NEW for it first.

The ledger is `incidents.json` in the state folder, one object per environment, written atomically (temp file,
fsync, rename: notify/outbox.py) by the controller that holds the run lock, so there is one writer at a time.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .notify.outbox import atomic_write_json

log = logging.getLogger("pytest_apimon.incidents")

FILE = "incidents.json"


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
    """The open incidents of one environment. Not thread-safe: the run lock makes the controller the writer."""

    def __init__(self, path: Path | None, env: str) -> None:
        self.path, self.env = path, env
        self.open: dict[str, Incident] = {}  # interface key -> its open incident
        self.closing: list[Incident] = []  # closed in this run (their RECOVERED goes to the robots told)
        self._others: dict[str, Any] = {}  # the other environments' entries, written back unchanged
        if path is not None:
            self._load()

    @classmethod
    def in_dir(cls, directory: Path, env: str) -> Ledger:
        return cls(Path(directory) / FILE, env)

    def _load(self) -> None:
        assert self.path is not None
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return
        except (OSError, ValueError) as exc:  # a broken ledger costs at most one repeated NEW, never the run
            log.warning("incident ledger %s is unreadable (%s); starting a new one", self.path, exc)
            return
        if not isinstance(data, dict):
            return
        self._others = {k: v for k, v in data.items() if k != self.env}
        for key, raw in (data.get(self.env) or {}).items():
            try:
                self.open[key] = Incident(str(raw["id"]), key, float(raw["opened_at"]),
                                          [str(t) for t in raw.get("told", [])])
            except (KeyError, TypeError, ValueError):
                continue

    def save(self) -> None:
        if self.path is None:
            return
        data = {**self._others, self.env: {k: {"id": i.id, "opened_at": i.opened_at, "told": i.told}
                                           for k, i in sorted(self.open.items())}}
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_json(self.path, data)
        except OSError as exc:
            log.warning("could not write the incident ledger %s: %s", self.path, exc)

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
