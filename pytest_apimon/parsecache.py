"""A parse cache for documents: unchanged files are not re-parsed and re-validated on every run.

Keyed by a hash of the file's bytes plus everything else the result depends on (path, pool root, the
package version). Documents that use ${VAR} or {{var}} depend on the environment and are never cached.
Stored as one pickle in the state folder, written atomically; a broken or foreign file is ignored.
"""

from __future__ import annotations

import functools
import hashlib
import os
import pickle
from pathlib import Path

from .atomicfile import atomic_write
from .documents import DocumentFile
from .importers.overrides import SIDECAR_SUFFIXES, sidecar_for
from .importers.refs import external_refs
from .load import load_document
from .loader import DEFAULT_LIMITS, Limits, ParseError, read_limited
from .redact import secret_values

CACHE_FILE = "parse-cache.pickle"
_FORMAT = 3  # 2: DocumentFile.notes, importer results changed; 3: YAML 1.2 core schema, values as written


@functools.cache  # importlib.metadata reads the installed distributions: once per process
def _version() -> str:
    try:
        from importlib.metadata import version

        return version("pytest-apimon")
    except Exception:
        return "dev"


class ParseCache:
    def __init__(self, state_dir: Path | None, limits: Limits = DEFAULT_LIMITS) -> None:
        self.path = state_dir / CACHE_FILE if state_dir is not None else None
        self.limits = limits
        self._old: dict[str, DocumentFile] | None = None
        self._used: dict[str, DocumentFile] = {}
        self._misses = 0
        self._salt = f"{_FORMAT}:{_version()}:{limits}"
        self._listings: dict[Path, frozenset[str] | None] = {}  # folder -> its entry names (sidecar lookups)
        self.hits = 0

    def _load(self) -> dict[str, DocumentFile]:
        if self._old is None:
            self._old = {}
            if self.path is not None and self.path.is_file():
                try:
                    data = pickle.loads(self.path.read_bytes())  # noqa: S301 - our own 0600 file in the state folder
                    if isinstance(data, dict) and data.get("format") == _FORMAT:
                        self._old = data["entries"]
                except Exception:  # a damaged cache only costs a re-parse
                    self._old = {}
        return self._old

    def load(self, path: Path, pool_root: Path, display: str) -> DocumentFile:
        try:
            raw = read_limited(path, self.limits)
        except (OSError, ParseError):  # load_document reports it (without reading a huge file or a pipe)
            return load_document(path, pool_root, display=display, limits=self.limits)
        if b"${" in raw or b"{{" in raw:
            return load_document(path, pool_root, display=display, limits=self.limits)  # depends on the environment
        if external_refs(raw):
            # depends on the fragment files it $refs
            return load_document(path, pool_root, display=display, limits=self.limits)
        digest = hashlib.sha256(raw)
        digest.update(f"\0{self._salt}\0{path}\0{pool_root}\0{display}".encode())
        side = self._sidecar(path)  # an imported spec's overrides file changes the result too
        if side is not None:
            try:
                side_raw = read_limited(side, self.limits)
            except (OSError, ParseError):
                return load_document(path, pool_root, display=display, limits=self.limits)
            if b"${" in side_raw or external_refs(side_raw):  # its expect.schema files
                return load_document(path, pool_root, display=display, limits=self.limits)
            digest.update(b"\0sidecar\0" + side_raw)
        key = digest.hexdigest()
        doc = self._load().get(key)
        if doc is not None:
            self.hits += 1
        else:
            self._misses += 1
            doc = load_document(path, pool_root, display=display, limits=self.limits)
            if _holds_credentials(doc):
                return doc  # never copy a document's credentials into the state folder
        self._used[key] = doc
        return doc

    def _sidecar(self, path: Path) -> Path | None:
        """sidecar_for, answered from one listing per folder: two stat() calls per document otherwise."""
        folder = path.parent
        if folder not in self._listings:
            try:
                self._listings[folder] = frozenset(os.listdir(folder))
            except OSError:
                self._listings[folder] = None
        names = self._listings[folder]
        if names is not None and not any(path.stem + suffix in names for suffix in SIDECAR_SUFFIXES):
            return None
        return sidecar_for(path)

    def save(self) -> None:
        """Keep the entries this run used (stale ones drop out). Only when something was parsed anew."""
        if self.path is None or not self._misses:
            return
        try:
            data = pickle.dumps({"format": _FORMAT, "entries": self._used}, protocol=pickle.HIGHEST_PROTOCOL)
            atomic_write(self.path, data)
        except OSError:
            pass  # the cache is an optimisation; never fail a run over it


def _holds_credentials(doc: DocumentFile) -> bool:
    """A document with a value under a secret-looking name (a literal X-Api-Key) or URL userinfo."""
    if doc.secrets:  # an importer's credential values (Postman auth): never written to the cache file
        return True
    for itf in doc.interfaces:
        body = itf.json if itf.has_json else None
        if secret_values([itf.headers, itf.params, itf.form, body]) or "@" in (itf.url or "") \
                or "@" in (itf.fallback_base_url or ""):
            return True
    return False
