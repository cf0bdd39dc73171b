"""External `$ref`s of a spec: fragment files in the pool (`get: {$ref: resources/pet.yml}`).

Vendors split big specs into a root file plus fragments (path items, operations, schemas). The
fragments are files in the pool, so reading them is safe; what a reference may reach is limited:
- local files only, relative to the file holding the `$ref` (JSON Reference, RFC 3986 §5.2: dot segments are
  removed from the path as the pool shows it, links kept); `http(s)://` references are not fetched (monitoring
  must not depend on a third host);
- never outside the pool root, and after symlinks are resolved only inside the pool root's real folder or the real
  folder of a service linked into the pool (`pool/shop -> ../shared/shop`): a link inside a service that leads
  elsewhere is not followed;
- a fragment is read once per spec, however many references point into it.

A fragment is not an interface document: `FragmentIndex` tells the collection which pool files
some other pool file references (a `$ref`, or a sidecar's Postman `environment`), so they are not
reported as broken native documents.

Locations inside a fragment are field paths whose first element is `ext(name)` (see `is_ext`),
so errors can name the fragment's own file, line and JSON pointer.
"""

from __future__ import annotations

import os
import posixpath
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import yaml

from ..errors import ApimonError
from ..loader import DEFAULT_LIMITS, ParseError, Path_, fix_surrogate_escapes, load_json, load_yaml, read_limited

__all__ = ["EXT", "Fragment", "FragmentIndex", "RefProblem", "ext", "external_refs", "is_ext", "load_fragment",
           "split_ref"]

EXT = "\0"  # first character of the path element that marks "inside fragment <name>"
REMOTE = re.compile(r"^[A-Za-z][\w+.-]*://")
# `$ref: resources/x.yml`, `"$ref": "../a.json#/b"`: a reference to another file (not '#...').
# Quoted, or bare YAML; file names may hold braces (Redocly's split writes paths/pets_{petId}.yaml).
_FILE_REF = re.compile(
    rb"""["']?\$ref["']?\s*:\s*"""
    rb"""(?:"([^"#]+)|'([^'#]+)|([^"'\s#,\[\]{}]+(?:\{[^\s{}"']*\}[^"'\s#,\[\]{}]*)*))"""
)
# `expect.schema: schemas/user.schema.json` (response_schema.py): a schema file the document reads.
_SCHEMA_FILE = re.compile(
    rb"""(?<![\w$])["']?schema["']?\s*:\s*(?:"([^"#]+)"|'([^'#]+)'|([^"'\s#,\[\]{}]+))"""
)
_SCHEMA_SUFFIXES = (".json", ".yaml", ".yml")
_ENVIRONMENT = re.compile(rb"""(?m)^environment\s*:\s*["']?([^"'\s#]+)""")  # a sidecar's Postman environment
_MAX_FRAGMENT_BYTES = 20_000_000


class RefProblem(ApimonError):
    """An external `$ref` that cannot be followed; the message says why and what to do."""


def ext(name: str) -> str:
    """The first element of a location inside fragment `name`."""
    return EXT + name


def is_ext(at: Path_) -> bool:
    """True when the location `at` is inside a fragment file (not the spec itself)."""
    return bool(at) and isinstance(at[0], str) and at[0].startswith(EXT)


def split_ref(ref: str) -> tuple[str, str]:
    """'resources/x.yml#/get' -> ('resources/x.yml', '/get'); '#/a' -> ('', '/a')."""
    target, _, fragment = ref.partition("#")
    return target.strip(), fragment


@dataclass
class Fragment:
    """A parsed fragment file: its name relative to the spec's folder, data, text (for lines)."""

    name: str
    path: Path
    data: Any
    text: str
    _lines: dict[Path_, int] | None = field(default=None, repr=False)

    def line(self, at: Path_) -> int | None:
        """1-based line of the field at `at` (or its nearest ancestor) in the fragment."""
        if self._lines is None:
            self._lines = line_map(self.text) if len(self.text) <= _MAX_FRAGMENT_BYTES else {}
        at = tuple(str(p) if not isinstance(p, int) else p for p in at)
        while at not in self._lines and at:
            at = at[:-1]
        return self._lines.get(at)


def target_path(ref_file: str, holder: Path, pool_root: Path) -> Path:
    """The file a reference names, relative to the file holding it; RefProblem when remote or outside the pool."""
    if REMOTE.match(ref_file):
        raise RefProblem(f"remote $ref '{ref_file}' is not supported: only files in the pool are read; download "
                         "it next to the spec (or bundle the spec into one file, e.g. `redocly bundle`)")
    relative = ref_file.removeprefix("file:")
    if "%" in relative and not (holder.parent / relative).exists():
        relative = unquote(relative)  # a URI-encoded reference (RFC 3986): 'pets_%7BpetId%7D.yaml'
    if os.path.isabs(relative):
        raise RefProblem(f"$ref '{ref_file}' is an absolute path: use a path relative to {holder.name}")
    outside = RefProblem(f"$ref '{ref_file}' points outside the pool ({pool_root}): only files in the pool are read")
    # Resolved against the holder's path as the pool shows it (a service may be a link into the pool), dot segments
    # removed lexically (RFC 3986 §5.2.4), so `..` never walks out through a link's real parent.
    path = Path(os.path.normpath(os.path.join(os.path.abspath(holder.parent), relative)))
    root = Path(os.path.normpath(os.path.abspath(pool_root)))
    if path == root or root not in path.parents:
        raise outside
    real = os.path.realpath(path)
    allowed = {os.path.realpath(root), os.path.realpath(root / path.relative_to(root).parts[0])}
    if not any(real.startswith(folder + os.sep) for folder in allowed):
        raise outside  # a link inside the pool that leads out of it
    return path


def load_fragment(path: Path, name: str) -> Fragment:
    """Read and parse a fragment (YAML, or JSON by suffix). RefProblem when missing or unparsable."""
    try:
        if path.stat().st_size > _MAX_FRAGMENT_BYTES:
            raise RefProblem(f"referenced file {name} is larger than {_MAX_FRAGMENT_BYTES // 1_000_000} MB")
        # Capped, regular files only (a FIFO would block), and parsed within the loader's limits (depth,
        # YAML alias expansion) like every other file.
        text = read_limited(path, replace(DEFAULT_LIMITS, max_file_bytes=_MAX_FRAGMENT_BYTES)).decode("utf-8-sig")
    except FileNotFoundError:
        raise RefProblem(f"referenced file {name} does not exist") from None
    except (OSError, UnicodeDecodeError, ParseError) as exc:
        raise RefProblem(f"referenced file {name} cannot be read: {getattr(exc, 'message', exc)}") from None
    try:
        data = load_json(text) if path.suffix.lower() == ".json" else load_yaml(text)
    except ParseError as exc:
        kind = "JSON" if path.suffix.lower() == ".json" else "YAML"
        where = f" (line {exc.line})" if exc.line else ""
        raise RefProblem(f"referenced file {name} is not valid {kind}{where}: "
                         f"{exc.message.removeprefix(f'invalid {kind}: ')}") from None
    return Fragment(name, path, data, text)


def fragment_name(path: Path, spec: Path) -> str:
    """How errors call a fragment: its path relative to the spec's folder, with '/'."""
    try:
        return posixpath.normpath(os.path.relpath(path, os.path.abspath(spec.parent)).replace(os.sep, "/"))
    except ValueError:  # another drive on Windows
        return str(path)


def external_refs(raw: bytes) -> list[str]:
    """File parts of the `$ref`s to other files in a document's text, and the schema files its `expect.schema`
    names (cheap: no parsing). The result depends on those files; they are read with it, not on their own."""
    out = []
    if b"$ref" in raw:
        for match in _FILE_REF.finditer(raw):
            target = next(g for g in match.groups() if g is not None).decode("utf-8", errors="replace").strip()
            if not REMOTE.match(target):
                out.append(target)
    if b"schema" in raw:
        for match in _SCHEMA_FILE.finditer(raw):
            target = next(g for g in match.groups() if g is not None).decode("utf-8", errors="replace").strip()
            if target.lower().endswith(_SCHEMA_SUFFIXES) and not REMOTE.match(target):
                out.append(target)
    return out


class FragmentIndex:
    """Which files under a pool root are referenced by another file's `$ref` (built on first use).

    Only asked about files that are neither specs nor valid native documents, so a pool without
    broken files never pays for the scan.
    """

    def __init__(self, root: Path) -> None:
        self.root = root.parent if root.is_file() else root
        self._referenced: set[Path] | None = None

    def __contains__(self, path: object) -> bool:
        if not isinstance(path, Path):
            return False
        if self._referenced is None:
            self._referenced = self._scan()
        try:
            return path.resolve() in self._referenced
        except (OSError, RuntimeError):
            return False

    def _scan(self) -> set[Path]:
        from ..documents import DOCUMENT_SUFFIXES
        from ..poolfiles import files_under

        out: set[Path] = set()
        # One read per file, walked as the collection walks (linked service folders too): this runs once per
        # process, and only when some file in the pool is broken as a whole; a 10 000-file pool costs about 0.3 s on
        # the reference machine.
        for holder in files_under(self.root):
            name = holder.name
            sidecar = name.endswith((".apimon.yaml", ".apimon.yml"))
            if not (sidecar or name.lower().endswith(DOCUMENT_SUFFIXES)):
                continue
            try:
                raw = read_limited(holder, DEFAULT_LIMITS)  # a FIFO named *.yaml must not block the scan
            except (OSError, ParseError):
                continue
            targets = _ENVIRONMENT.findall(raw) + external_refs(raw) if sidecar else external_refs(raw)
            for target in (t.decode("utf-8", errors="replace") if isinstance(t, bytes) else t for t in targets):
                try:
                    out.add(Path(os.path.realpath(target_path(target, holder, self.root))))
                except RefProblem:
                    continue
        return out


def line_map(text: str) -> dict[Path_, int]:
    """Field path -> 1-based line of a YAML or JSON text (the importers' line map).

    Best effort: libyaml's composer is ~10x faster than the pure-Python one on big specs."""
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        node = yaml.compose(fix_surrogate_escapes(text, for_yaml=True), Loader=loader)
    except yaml.YAMLError:
        return {}
    out: dict[Path_, int] = {}
    stack: list[tuple[yaml.Node, Path_]] = [(node, ())] if node is not None else []
    while stack:
        current, path = stack.pop()
        out.setdefault(path, current.start_mark.line + 1)
        if isinstance(current, yaml.MappingNode):
            for key_node, value_node in current.value:
                key = str(key_node.value)
                out.setdefault(path + (key,), key_node.start_mark.line + 1)
                stack.append((value_node, path + (key,)))
        elif isinstance(current, yaml.SequenceNode):
            stack.extend((item, path + (i,)) for i, item in enumerate(current.value))
    return out
