"""Outbox: the write-ahead log of reports to deliver, kept on disk until the provider accepts them.

Every rendered report is stored here *before* its first send attempt and removed only after the provider
accepted its last message (notify/wecom.py); after each accepted message the entry is rewritten with only
what is left, so a run killed at any point of delivery (Ctrl-C, SIGTERM, SIGKILL) leaves the rest for the
next run, which delivers it first. An entry written before its run was recorded in the state database
carries `awaiting_run`: the next run sends it only if that run was recorded (alerts.py decides), since an
unrecorded run's alerts are announced again by the next evaluation.

One JSON file per report and target. Files are written atomically (temp file, fsync, os.replace) with
mode 0600, so a crash leaves either the old state or the new one, never half a report. The folder is
bounded: beyond max_entries the oldest reports are dropped and a per-target counter remembers how many, so
the next report delivered to that target can say so. A report the provider refuses for its content even
after repair is moved to `rejected/` (kept for a human, never resent automatically, never blocking newer
reports).
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import secrets
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..atomicfile import atomic_write, is_temporary
from ..results import EPOCH_MAX, finite_number

log = logging.getLogger("pytest_apimon.notify.outbox")

FORMAT = "apimon-outbox/1"
_DROPPED = "_dropped.json"
REJECTED_DIR = "rejected"
_STALE_TMP_S = 3600.0  # a temp file this old belongs to a crashed writer, not a concurrent one


@dataclass
class OutboxEntry:
    notifier: str  # provider, e.g. "wecom"
    target: str  # robot name within the provider
    run_started_at: float  # epoch seconds of the run that produced the report
    title: str
    lang: str
    steps: list[dict[str, Any]]  # provider-specific, JSON-able messages still to deliver, in order
    reason: str = ""  # why it was not delivered (secret-free)
    stored_at: float = 0.0
    attempts: int = 0  # deliveries tried after it was stored
    awaiting_run: str = ""  # env of the run whose record this entry waits for ("" = deliverable)
    noted: bool = False  # the delayed/dropped notes are already part of steps
    path: Path | None = field(default=None, compare=False, repr=False)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("path")
        return {"format": FORMAT, **data}

    @classmethod
    def from_json(cls, data: Any, path: Path) -> OutboxEntry:
        """The entry stored in `path` (its JSON `data`). Raises ValueError naming the first field that is
        missing or of the wrong type: a damaged or hand-edited file is set aside (`pending`), never a crash of
        the delivery that would hold back every later report (tests/test_fuzz_state.py)."""
        if not isinstance(data, dict):
            raise ValueError(f"expected a JSON object, not {type(data).__name__}")
        if data.get("format") != FORMAT:
            raise ValueError(f"unknown outbox format {data.get('format')!r}")
        try:  # a lone surrogate (a "\\udXXX" escape) could never be written back (update, quarantine) or sent
            json.dumps(data, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError:
            raise ValueError("holds a lone surrogate escape (not UTF-8 text)") from None
        fields = {k: data[k] for k in cls.__dataclass_fields__ if k in data and k != "path"}
        for key, kinds in _FIELD_TYPES.items():
            if key in fields and not _fits(fields[key], kinds):
                raise ValueError(f"field {key!r}: expected {kinds[0].__name__}"
                                 + (" of objects" if key == "steps" else ""))
        for key in ("run_started_at", "stored_at"):  # rendered as times: beyond datetime's range they raise
            if key in fields and not finite_number(fields[key], 0, EPOCH_MAX):
                raise ValueError(f"field {key!r}: expected epoch seconds between 0 and {EPOCH_MAX:.0f}")
        return cls(**fields, path=path)


def _fits(value: Any, kinds: tuple[type, ...]) -> bool:
    """`value` is of one of `kinds` (a bool only where bool is named, a float only finite, a list only of
    objects)."""
    if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
        return False
    if isinstance(value, float):
        return finite_number(value)
    return not isinstance(value, list) or all(isinstance(step, dict) for step in value)


# What each stored field must hold (from_json); ints are accepted where floats are.
_FIELD_TYPES: dict[str, tuple[type, ...]] = {
    "notifier": (str,), "target": (str,), "run_started_at": (float, int), "title": (str,), "lang": (str,),
    "steps": (list,), "reason": (str,), "stored_at": (float, int), "attempts": (int,), "awaiting_run": (str,),
    "noted": (bool,),
}


def atomic_write_json(path: Path, data: Any) -> None:
    """Write JSON so that readers see the old file or the complete new one, even across a crash (0600)."""
    atomic_write(path, json.dumps(data, ensure_ascii=False, indent=1))


class Outbox:
    def __init__(self, directory: Path | str, max_entries: int = 50) -> None:
        self.directory = Path(directory)
        self.max_entries = max(1, max_entries)
        self._seq = 0

    # ---- storing

    def put(self, entry: OutboxEntry, *, bounded: bool = True) -> Path:
        """Store entry as the newest report; drops the oldest beyond max_entries (unless `bounded` is False:
        a run's own write-ahead entry must not push out a backlog it is about to deliver; `enforce_bound`
        runs after the delivery). Raises OSError."""
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._seq += 1
        entry.stored_at = entry.stored_at or time.time()
        target = re.sub(r"[^A-Za-z0-9_.-]", "_", entry.target)[:40]
        name = f"{time.time_ns():020d}-{self._seq:04d}-{entry.notifier}-{target}-{secrets.token_hex(3)}.json"
        path = self.directory / name
        atomic_write_json(path, entry.to_json())
        entry.path = path
        if bounded:
            self.enforce_bound()
        return path

    def update(self, entry: OutboxEntry) -> None:
        """Rewrite a stored entry in place (e.g. fewer steps left after a partial delivery)."""
        assert entry.path is not None
        atomic_write_json(entry.path, entry.to_json())

    def quarantine(self, entry: OutboxEntry) -> Path | None:
        """Move an entry the provider refused for its content to rejected/ (kept, never resent); its new path."""
        if entry.path is None:
            return None
        folder = self.directory / REJECTED_DIR
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        target = folder / entry.path.name
        try:
            atomic_write_json(target, entry.to_json())
        except OSError:
            return entry.path  # could not move it: it stays where it is
        self.remove(entry)
        entry.path = target
        return target

    def rejected(self) -> int:
        """How many refused reports are kept in rejected/ for a human."""
        folder = self.directory / REJECTED_DIR
        return len(list(folder.glob("*.json"))) if folder.is_dir() else 0

    def remove(self, entry: OutboxEntry) -> None:
        if entry.path is not None:
            with contextlib.suppress(FileNotFoundError):
                entry.path.unlink()

    def enforce_bound(self) -> None:
        files = self._files()
        for path in files[: max(0, len(files) - self.max_entries)]:
            try:
                entry = OutboxEntry.from_json(json.loads(path.read_text(encoding="utf-8")), path)
                key = f"{entry.notifier}/{entry.target}"
            except (OSError, ValueError, TypeError):
                key = "?"
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
            counts = self._dropped_counts()
            counts[key] = counts.get(key, 0) + 1
            atomic_write_json(self.directory / _DROPPED, counts)
            log.warning("outbox over its limit of %d reports: dropped the oldest (%s)", self.max_entries, path.name)

    # ---- reading

    def _files(self) -> list[Path]:
        if not self.directory.is_dir():
            return []
        now = time.time()
        out = []
        for path in self.directory.iterdir():
            name = path.name
            if is_temporary(name):
                with contextlib.suppress(OSError):
                    if now - path.stat().st_mtime > _STALE_TMP_S:
                        path.unlink()  # left by a crashed writer; its target file was never replaced
                continue
            if name.endswith(".json") and not name.startswith(("_", ".")):
                out.append(path)
        return sorted(out)  # names start with the store time: oldest first

    def pending(self, notifier: str | None = None, target: str | None = None) -> list[OutboxEntry]:
        """Stored entries, oldest first. An unreadable file is renamed *.bad (kept for a human) and skipped."""
        out = []
        for path in self._files():
            try:
                entry = OutboxEntry.from_json(json.loads(path.read_text(encoding="utf-8")), path)
            except FileNotFoundError:
                continue
            except (OSError, ValueError, TypeError) as exc:
                log.error("outbox file %s is unreadable (%s); renamed to .bad", path, exc)
                with contextlib.suppress(OSError):
                    path.rename(path.with_suffix(".bad"))
                continue
            if (notifier is None or entry.notifier == notifier) and (target is None or entry.target == target):
                out.append(entry)
        return out

    def __len__(self) -> int:
        return len(self._files())

    def _dropped_counts(self) -> dict[str, int]:
        try:
            data = json.loads((self.directory / _DROPPED).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        if not isinstance(data, dict):
            return {}
        # A damaged count is dropped, not raised: this file only adds a note, it must never stop a delivery.
        return {str(k): v for k, v in data.items() if isinstance(v, int) and not isinstance(v, bool)}

    def dropped(self, notifier: str, target: str) -> int:
        """How many reports for this target were dropped for space since the last note about it."""
        counts = self._dropped_counts()
        return counts.get(f"{notifier}/{target}", 0) + counts.get("?", 0)

    def clear_dropped(self, notifier: str, target: str) -> None:
        counts = self._dropped_counts()
        removed = [counts.pop(k, None) for k in (f"{notifier}/{target}", "?")]
        if any(r is not None for r in removed):
            atomic_write_json(self.directory / _DROPPED, counts)
