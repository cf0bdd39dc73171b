"""A token cache on disk, shared by every process that uses the same directory.

One JSON file (`tokens.json`, mode 0600, replaced atomically) holds an entry per service and auth
fingerprint; lock files serialise the processes. The TokenManager holds a per-service *login lock*
while it checks the file and, on a miss, logs in and writes the result, so of N processes asking at
once exactly one logs in and the others read its token. The same file outlives the run, so the next
(cron) run reuses a token that is still valid. Writers additionally take a short *data lock* for the
read-modify-write of the file; readers need none because the file is only ever swapped whole.

Locks are `filelock.FileLock`s, as for the run lock (runlock.py): flock on POSIX and LockFileEx on
Windows, both released by the OS if a process dies, so a lock file left behind holds no lock. Every lock
wait is bounded: on timeout the caller goes on without the cache rather than hanging the run, and any
I/O error disables the cache with one logged warning, because a cache must never fail a run.

The key fingerprints the auth config and base URL (changed credentials or environment: a new
entry). It is a salted PBKDF2 digest, so the file does not hold a fast hash of a password.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import time
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from filelock import FileLock, Timeout

from .atomicfile import atomic_write
from .statedir import PRIVATE_FILE, ensure_state_dir, make_private

log = logging.getLogger("pytest_apimon")

CACHE_FILE = "tokens.json"
_VERSION = 1
_KEEP_UNDATED_S = 24 * 3600  # prune failures and unknown-lifetime tokens after a day
_FINGERPRINT_ROUNDS = 20_000  # ~ms once per service; makes brute-forcing a password from the file slow


def fingerprint(material: Mapping[str, Any]) -> str:
    """A stable digest of what identifies a token: service, auth config (with secrets), base URL."""
    data = json.dumps(material, sort_keys=True, default=str, ensure_ascii=False).encode("utf-8")
    return hashlib.pbkdf2_hmac("sha256", data, b"pytest-apimon token cache v1", _FINGERPRINT_ROUNDS).hex()[:32]


@dataclass
class CacheEntry:
    """A token (value set) or a failed login (error set) of one service + fingerprint."""

    service: str
    value: str | None = field(default=None, repr=False)
    obtained_at: float = 0.0
    expires_at: float | None = None  # None: unknown lifetime, reused only by the run that got it
    run_id: str | None = None  # the run that wrote the entry
    error: str | None = None  # the login failure, shared with the other workers of run_id only

    @classmethod
    def from_dict(cls, data: Any) -> CacheEntry | None:
        if not isinstance(data, dict) or not isinstance(data.get("service"), str):
            return None
        try:
            return cls(
                service=data["service"],
                value=data.get("value") if isinstance(data.get("value"), str) else None,
                obtained_at=float(data.get("obtained_at") or 0.0),
                expires_at=None if data.get("expires_at") is None else float(data["expires_at"]),
                run_id=data.get("run_id") if isinstance(data.get("run_id"), str) else None,
                error=data.get("error") if isinstance(data.get("error"), str) else None,
            )
        except (TypeError, ValueError):
            return None

    def expired(self, now: float) -> bool:
        if self.value is not None and self.expires_at is not None:
            return self.expires_at <= now
        return self.obtained_at < now - _KEEP_UNDATED_S


LOCK_POLL_SECONDS = 0.01  # token locks are held for a login or a file rewrite: short


def _acquire(lock: FileLock, timeout: float) -> bool:
    """True once `lock` is held; False after `timeout` seconds. Raises OSError (an unusable folder)."""
    try:
        lock.acquire(timeout=timeout, poll_interval=LOCK_POLL_SECONDS)
    except Timeout:
        return False
    return True


class TokenCache:
    """tokens.json in `directory` (created 0700 if missing). Pass a per-run temporary directory to share
    tokens between the workers of one run without keeping them for the next run."""

    def __init__(self, directory: str | os.PathLike[str], *, lock_timeout: float = 60.0,
                 clock: Any = time.time, create: bool = True) -> None:
        """`create`: make `directory` if it is missing (the state folder). False for a run's temporary folder
        (runfolders.py): once it is gone (the run ended, or a later run removed it after this run's controller
        was killed) it is never made again, so an orphaned xdist worker cannot write a live token back into
        the temp folder; the cache is then unusable and the process goes on with the tokens in memory."""
        self.directory = Path(directory)
        self._create = create
        self.path = self.directory / CACHE_FILE
        self.lock_timeout, self._clock = lock_timeout, clock
        self.disabled: str | None = None  # why the cache stopped working, if it did
        self._checked = False

    # ---- public

    @contextlib.contextmanager
    def login_lock(self, service: str) -> Iterator[bool]:
        """Hold the service's login lock; yields False (not locked) on timeout or error, and the caller
        goes on alone: a duplicate login beats a hung run."""
        name = "tokens." + hashlib.sha256(service.encode("utf-8")).hexdigest()[:16] + ".lock"
        lock = self._lock(name)
        held = lock is not None and self._guard(lambda: _acquire(lock, self.lock_timeout), False)
        try:
            yield held
        finally:
            if lock is not None and held:
                self._guard(lock.release, None)

    def get(self, key: str) -> CacheEntry | None:
        if self.disabled or self._guard(self._ensure_dir, False) is False:
            return None
        return self._guard(lambda: CacheEntry.from_dict(self._read().get(key)), None)

    def put(self, key: str, entry: CacheEntry) -> bool:
        def change(entries: dict[str, Any]) -> bool:
            entries[key] = asdict(entry)
            # A token of unknown lifetime is never reused by a later run: do not keep earlier runs' on disk.
            for k, v in list(entries.items()):
                old = CacheEntry.from_dict(v)
                if k != key and old is not None and old.value and old.expires_at is None and old.run_id != entry.run_id:
                    del entries[k]
            return True

        return self._update(change)

    def purge_run(self, run_id: str) -> bool:
        """At the end of a run: drop its tokens of unknown lifetime (useless to the next run) and its
        failures, and every expired entry, so no token sits on disk longer than its stated lifetime."""

        def change(entries: dict[str, Any]) -> bool:
            doomed = [k for k, v in entries.items() if (e := CacheEntry.from_dict(v)) is None
                      or (e.run_id == run_id and (e.error or e.expires_at is None))
                      or e.expired(self._clock())]
            for k in doomed:
                del entries[k]
            return True

        if not self.path.exists():
            return False
        return self._update(change)

    def remove(self, key: str, value: str | None = None) -> bool:
        """Drop the entry (only if it still holds `value`, when given: another process may have refreshed it)."""

        def change(entries: dict[str, Any]) -> bool:
            current = entries.get(key)
            if current is None or (value is not None and isinstance(current, dict) and current.get("value") != value):
                return False
            del entries[key]
            return True

        return self._update(change)

    # ---- internals

    def _guard(self, fn: Any, fallback: Any) -> Any:
        try:
            return fn()
        except OSError as exc:
            if not self.disabled:
                self.disabled = f"token cache {self.directory} unusable: {exc}"
                log.warning("%s; going on without it", self.disabled)
            return fallback

    def _ensure_dir(self) -> None:
        if not self._create and not self.directory.is_dir():
            # Checked before every use, not once: filelock and atomic_write would make the folder again.
            raise FileNotFoundError(f"{self.directory} is gone")
        if not self._checked:
            ensure_state_dir(self.directory)
            # 0600 also when an older version (or a user's copy) left it wider: it holds live tokens.
            make_private(self.path)
            self._checked = True

    def _lock(self, name: str) -> FileLock | None:
        if self.disabled or self._guard(self._ensure_dir, False) is False:
            return None
        # thread_local=False: a lock object is used by one call at a time, in whichever thread.
        return FileLock(self.directory / name, mode=PRIVATE_FILE, thread_local=False)

    def _read(self) -> dict[str, Any]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (ValueError, UnicodeDecodeError):
            return {}  # damaged by hand or by a crash: start afresh, it is only a cache
        entries = data.get("entries") if isinstance(data, dict) and data.get("version") == _VERSION else None
        return entries if isinstance(entries, dict) else {}

    def _update(self, change: Any) -> bool:
        lock = self._lock(CACHE_FILE + ".lock")
        if lock is None or not self._guard(lambda: _acquire(lock, self.lock_timeout), False):
            return False
        try:
            return bool(self._guard(lambda: self._write_changed(change), False))
        finally:
            self._guard(lock.release, None)

    def _write_changed(self, change: Any) -> bool:
        entries = self._read()
        if not change(entries):
            return False
        now = self._clock()
        kept = {k: v for k, v in entries.items() if (e := CacheEntry.from_dict(v)) is not None and not e.expired(now)}
        self._write({"version": _VERSION, "entries": kept})
        return True

    def _write(self, data: dict[str, Any]) -> None:
        atomic_write(self.path, json.dumps(data, ensure_ascii=False, indent=1))  # 0600 from the first byte
