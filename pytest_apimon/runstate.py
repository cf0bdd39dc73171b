"""Per-process run state: what one pytest process knows about the current monitoring run.

Plain Python (no pytest import); plugin.py keeps one ApimonRun in config.stash. An xdist controller holds one too
but never reads a document or sends a request, so what only those need (documents, the parse cache, the engine
and its token cache, the runner) is imported where it is first used: not on the controller's start-up, which
comes before any worker starts (issue 15, ARCHITECTURE.md "Imports follow use").
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from .config import Config
from .messages import say
from .redact import Redactor
from .results import InterfaceResult
from .retries import RetryPolicy
from .sharding import Shard

if TYPE_CHECKING:
    from .documents import Interface, NameRegistry
    from .engine import Engine
    from .hostslots import HostSlots
    from .importers.refs import FragmentIndex
    from .parsecache import ParseCache
    from .runner import Runner

TOKEN_STAT_KEYS = ("logins", "login_failures", "cache_hits", "cache_misses", "file_hits", "relogins")


@dataclass
class ApimonRun:
    config: Config
    roots: list[Path]
    lang: str
    redactor: Redactor
    is_worker: bool
    run_id: str = ""  # the same in every xdist worker of one run (failed logins are shared per run)
    token_dir: Path | None = None  # shared token cache folder (state folder, or a per-run temp folder)
    token_dir_is_temp: bool = False  # token_dir is the run's temp folder (runfolders.py): never made again
    keys: set[str] = field(default_factory=set)  # interface keys claimed during collection (items.py)
    collected: set[str] = field(default_factory=set)  # node ids the run set out to check (controller)
    # node id -> its attempts reported as to be repeated (reruns; a crash made a rerun included), controller:
    # counted by the collector, read by retries.CrashRerun. The attempt after them is attempt reruns + 1.
    reruns: dict[str, int] = field(default_factory=dict)
    started_at: float = field(default_factory=time.time)
    results: dict[str, InterfaceResult] = field(default_factory=dict)
    inprocess: bool = True  # no xdist: this process prefetches concurrently with a Runner
    shard: Shard | None = None  # --apimon-shard K/N: check this share only, write results only (merge.py)
    shard_plan: list[tuple[str, str, str, str, int]] = field(default_factory=list)  # merge.PlanRow per item
    share: int | None = None  # xdist worker: its share index (sharding.share_index), None: prefetch nothing
    concurrency: int = 32
    max_per_host: int = 32
    # The per-host cap across xdist workers when it is smaller than their number (hostslots.py): the slots this
    # worker takes (None: each worker's divided cap suffices).
    host_slots: HostSlots | None = None
    # Controller of an xdist run: the folder it shares with its workers (host slots, in-flight ledgers).
    worker_dir: Path | None = None
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    runner: Runner | None = None
    skips: dict[str, str] = field(default_factory=dict)  # interface key -> reason (open circuits)
    token_stats: dict[str, int] = field(default_factory=dict)  # summed over workers (controller)
    markers: set[str] = field(default_factory=set)  # marker names known to pytest (document tags added)
    warnings: list[str] = field(default_factory=list)  # shown at the end of the terminal summary
    fragments: dict[Path, FragmentIndex] = field(default_factory=dict)  # pool root -> files other files $ref
    proxy: str | None = None  # HTTP(S)_PROXY the services' requests go through (report header); None: direct
    rate_limited: dict[str, int] = field(default_factory=dict)  # host -> 429 answers to the monitor (controller)
    _engine: Engine | None = None
    _names: NameRegistry | None = None
    _parse_cache: ParseCache | None = None
    _pool_names: dict[Path, str] = field(default_factory=dict)  # pool_name per root (asked once per file)

    @property
    def names(self) -> NameRegistry:
        """Interface names claimed so far in this process (duplicates across files), made on first use."""
        if self._names is None:
            from .documents import NameRegistry

            self._names = NameRegistry()
        return self._names

    @property
    def parse_cache(self) -> ParseCache:
        """The parse cache in the state folder (parsecache.py), opened on first use: the first document this
        process reads. An xdist controller reads none, so it never opens (nor saves) one."""
        if self._parse_cache is None:
            from .parsecache import ParseCache

            self._parse_cache = ParseCache(self.config.state_path, self.config.limits)
        return self._parse_cache

    def save_parse_cache(self) -> None:
        """Save the parse cache if this process opened one (see parse_cache)."""
        if self._parse_cache is not None:
            self._parse_cache.save()

    def engine(self) -> Engine:
        if self._engine is None:
            from .engine import Engine
            from .tokencache import TokenCache

            # Another process's login holds the lock at most about one login request long (the longest login
            # deadline of any service); waiting less made a worker give up while another worker's slow login was
            # still within its deadline and log in a second time. Engine.attempt_budget counts this wait.
            d = self.config.defaults
            wait = max([d.timeout, *(s.timeout or d.timeout for s in self.config.services.values()
                                     if s.auth is not None)]) + d.connect_timeout
            cache = (TokenCache(self.token_dir, lock_timeout=wait, create=not self.token_dir_is_temp)
                     if self.token_dir is not None else None)
            self._engine = Engine(self.config, self.redactor, pool_size=self.max_per_host,
                                  token_cache=cache, run_id=self.run_id or None)
        return self._engine

    def add_token_stats(self, stats: dict[str, int]) -> None:
        for key in TOKEN_STAT_KEYS:
            self.token_stats[key] = self.token_stats.get(key, 0) + int(stats.get(key, 0))

    def token_summary(self, lang: str) -> str | None:
        """'登录 1 次 · 令牌缓存命中率 97.5%' — None when no interface needed a token."""
        s = self.token_stats
        lookups = s.get("cache_hits", 0) + s.get("cache_misses", 0)
        if not lookups and not s.get("logins"):
            return None
        rate = f"{s.get('cache_hits', 0) / lookups * 100:.1f}%" if lookups else "-"
        failed = s.get("login_failures", 0)
        if lang == "zh":
            text = f"登录 {s.get('logins', 0)} 次 · 令牌缓存命中率 {rate}"
            return text + (f" · 登录失败 {failed} 次" if failed else "")
        text = f"logins {s.get('logins', 0)} · token cache hit rate {rate}"
        return text + (f" · failed logins {failed}" if failed else "")

    def host(self, itf: Interface) -> str:
        """The host an interface's request goes to (for the per-host cap); cheap, it runs per item."""
        from .runner import host_of

        if itf.url:
            return host_of(itf.url, itf.service)
        base = self.config.service(itf.service).base_url or itf.fallback_base_url
        return host_of(base, itf.service) if base else itf.service

    def details(self, result: InterfaceResult) -> str:
        """Failure text below the headline, in the run's language: reason, then the masked request and
        response (header lines and bodies are the exchange's own text)."""
        from .report import reason_text

        lang = self.lang
        lines = [say("fail.reason", lang, text=reason_text(result, lang))] if result.reason else []
        if result.method:
            lines.append(say("fail.request", lang, method=result.method, url=result.url))
            lines += [f"  {k}: {v}" for k, v in result.request_headers.items()]
            if result.request_body:
                lines.append(say("fail.request_body", lang, text=result.request_body[:500]))
        if result.status is not None:
            lines.append(say("fail.response", lang, status=result.status, ms=f"{result.elapsed_ms or 0:.0f}"))
            if result.response_body:
                lines.append(say("fail.response_body", lang, text=result.response_body[:500]))
        if result.reproduce:
            lines.append(say("fail.reproduce", lang, text=result.reproduce))
        return self.redactor.text("\n".join(lines))

    def warn(self, text: str) -> None:
        """A warning for the end of the terminal summary, once however often it is raised."""
        if text not in self.warnings:
            self.warnings.append(text)

    def is_fragment(self, path: Path, pool_root: Path) -> bool:
        """True when another file in the pool `$ref`s this one (a piece of a spec, not a document)."""
        index = self.fragments.get(pool_root)
        if index is None:
            from .importers.refs import FragmentIndex

            index = self.fragments[pool_root] = FragmentIndex(pool_root)
        return path in index

    def pool_name(self, root: Path) -> str:
        """How the run's memory names a pool: relative to the config's folder when inside it."""
        name = self._pool_names.get(root)
        if name is None:  # two realpath() walks per call: once per root, not once per document
            try:
                name = root.resolve().relative_to(self.config.base_dir.resolve()).as_posix() or "."
            except ValueError:
                name = root.resolve().as_posix()
            self._pool_names[root] = name
        return name

    def interface_document(self, nodeid: str, rootpath: Path) -> tuple[Path, Path] | None:
        """(document path, its pool root) when `nodeid` names an interface: an item of a document under one of
        the run's pools; None for a user's own test in the pool (its file is not a document) or a file node.
        `rootpath` is pytest's, which node ids are relative to. For the xdist controller, which has node ids
        but no items."""
        from .documents import is_document

        file, _, name = nodeid.partition("::")
        path = Path(rootpath, file)
        root = self.pool_root_for(path)
        if not name or root is None or not is_document(path):
            return None
        return path, root

    def pool_root_for(self, path: Path) -> Path | None:
        """The pool root `path` lies under, as the user wrote it (symlinks kept), else None.

        Compared as written first, then with symlinks resolved on both sides, so a document reached through a
        link (`pool/shop -> ../shared/shop`) belongs to the pool whichever way pytest or the user spelled it."""
        text = str(path)
        for root in self.roots:  # as strings: `root in path.parents` builds every parent, per document
            prefix = str(root)
            if text == prefix or text.startswith(prefix.rstrip(os.sep) + os.sep):
                return root
        try:
            real = path.resolve()
        except (OSError, RuntimeError):  # a broken or looping link
            return None
        for root in self.roots:
            try:
                real_root = root.resolve()
            except (OSError, RuntimeError):
                continue
            if real == real_root or real_root in real.parents:
                return root
        return None
