"""pytest collection nodes: a document file and one item per interface (or per document error)."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from .categories import Category, Outcome
from .documents import DocumentError, DocumentFile, Interface, service_and_module
from .failures import InterfaceFailure
from .loader import did_you_mean
from .redact import excerpt
from .results import InterfaceResult
from .retries import attempt_of
from .stash import RUN_KEY

if TYPE_CHECKING:
    from .runstate import ApimonRun

log = logging.getLogger("pytest_apimon")

try:  # Structured failure text: JUnit's message = the classified first line, body = details.
    from _pytest._code.code import ReprEntryNative, ReprExceptionInfo, ReprFileLocation, ReprTraceback
except ImportError:  # pragma: no cover - private API moved; fall back to plain text
    ReprExceptionInfo = None  # type: ignore[assignment,misc]


def _internal(exc: BaseException) -> str:
    text = excerpt(" ".join(str(exc).split()), 200)  # masked whole later (plugin._mask_report); "…" marks the cut
    return f"{type(exc).__name__}: {text} (an internal error of pytest-apimon; the log has the traceback)"


def _run(config: pytest.Config) -> ApimonRun:
    return config.stash[RUN_KEY]


# pytest.Dir is @final for type checkers only; subclassing it keeps pytest's own folder collection (ignore rules,
# conftest.py, norecursedirs) and adds what it skips. pytest_collect_directory is the public hook returning it.
class PoolDir(pytest.Dir):  # type: ignore[misc]
    """A folder of a pool: pytest's directory collector, plus the document-named entries it skips.

    pytest's Dir.collect only hands regular files and folders on (and drops ELOOP entries), so a broken
    symlink, a symlink loop or a FIFO named `x.yaml` would vanish and the run say "all passed". Each one
    becomes an InterfaceFile here, whose load fails as one invalid_document item naming the file and why.
    """

    def collect(self) -> Iterator[pytest.Item | pytest.Collector]:
        from .documents import is_document
        from .poolfiles import is_regular_or_dir

        yield from super().collect()
        try:
            with os.scandir(self.path) as entries:
                odd = sorted(e.path for e in entries if not is_regular_or_dir(e) and is_document(Path(e.path)))
        except OSError:
            return
        run = _run(self.config)
        for raw in odd:
            path = Path(raw)
            root = run.pool_root_for(path) or run.pool_root_for(self.path)
            if root is not None:
                yield InterfaceFile.from_parent(self, path=path, pool_root=root)


class InterfaceFile(pytest.File):
    """One interface document; yields items in file order, bad entries as failing items."""

    def __init__(self, *, pool_root: Path, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.pool_root = pool_root

    def collect(self) -> Iterator[pytest.Item]:
        """Never raises: any exception while reading the file or making an item becomes one failing
        invalid_document item, so one file can never abort collection ("errors during collection")."""
        display = self.nodeid.split("::")[0] or str(self.path)
        try:
            doc = _run(self.config).parse_cache.load(self.path, self.pool_root, display)
        except Exception as exc:  # a bug or an unforeseen input costs this file, not the run
            log.exception("could not read %s", display)
            error = DocumentError(display, None, "", f"could not be read: {_internal(exc)}")
            service, _ = _service_module(self.path, self.pool_root)
            yield InvalidDocumentItem.from_parent(  # keyed per file, like every whole-file error
                self, name="<invalid document>", error=error, pool=_run(self.config).pool_name(self.pool_root),
                key=f"{service}/<invalid document> [{_rel(self.path, self.pool_root)}]")
            return
        yield from self._items(doc, display)

    def _items(self, doc: DocumentFile, display: str) -> Iterator[pytest.Item]:
        run = _run(self.config)
        if doc.errors and not doc.interfaces and run.is_fragment(self.path, self.pool_root):
            return  # a fragment of a spec (its external $ref target): read with the spec, not on its own
        run.redactor.add_secrets(doc.secrets)
        for note in doc.notes:  # once per file (not per request), at the end of the terminal summary
            run.warn(f"{display}: {note}")
        entries: list[tuple[int, Interface | DocumentError]] = [(i.index, i) for i in doc.interfaces]
        file_errors = [e for e in doc.errors if e.index is None]
        entries += [(e.index, e) for e in doc.errors if e.index is not None]
        pool = run.pool_name(self.pool_root)
        service, _ = _service_module(self.path, self.pool_root)
        where = _rel(self.path, self.pool_root)

        def claim(base: str) -> str:
            """One identity per item: base, or (taken by another file's item) base qualified by this file."""
            key = base if base not in run.keys else f"{base} [{where}]"
            n = 2
            while key in run.keys:
                key, n = f"{base} [{where} #{n}]", n + 1
            run.keys.add(key)
            return key

        for n, err in enumerate(file_errors):
            name = "<invalid document>" + (f"#{n + 1}" if n else "")
            # Whole-file errors are keyed per file: a newly broken file is NEW, not another file's ONGOING.
            yield InvalidDocumentItem.from_parent(self, name=name, error=err, pool=pool,
                                                  key=claim(f"{service}/{name} [{where}]"))
        used: set[str] = set()

        def unique(name: str, index: int | None) -> str:
            # Node ids must be unique (xdist, --lf): a repeated name gets its position in the file.
            if name in used:
                name = f"{name} (#{(index or 0) + 1})"
            used.add(name)
            return name

        for _, entry in sorted(entries, key=lambda pair: pair[0]):
            if isinstance(entry, DocumentError):
                name = unique(entry.name or f"#{(entry.index or 0) + 1}", entry.index)
                base = f"{service}/{entry.name}" if entry.name else f"{service}/{name} [{where}]"
                yield InvalidDocumentItem.from_parent(self, name=name, error=entry, pool=pool, key=claim(base))
                continue
            bad_auth = _auth_problem(entry, run)
            if bad_auth is not None:
                yield InvalidDocumentItem.from_parent(self, name=unique(entry.name, entry.index), error=bad_auth,
                                                      pool=pool, key=claim(entry.key))
                continue
            dup = run.names.claim(entry)
            if dup is not None:
                # Never the original's identity: its results and alerts stay its own.
                name = unique(f"{entry.name} (duplicate)", entry.index)
                yield InvalidDocumentItem.from_parent(self, name=name, error=dup, pool=pool,
                                                      key=claim(f"{entry.service}/{entry.name} (duplicate)"))
                continue
            name = unique(entry.name, entry.index)
            item: pytest.Item
            try:
                item = InterfaceItem.from_parent(self, name=name, interface=entry, pool=pool,
                                                key=claim(entry.key))
            except Exception as exc:  # see collect()
                log.exception("could not make an item of %s", name)
                error = DocumentError(display, entry.line, "", f"could not be collected: {_internal(exc)}",
                                      entry.name, entry.index)
                item = InvalidDocumentItem.from_parent(self, name=unique(f"{name} (error)", entry.index), error=error,
                                                       pool=pool, key=claim(f"{entry.key} (error)"))
            yield item


class _ApimonItem(pytest.Item):
    result: InterfaceResult | None = None

    def __init__(self, *, key: str = "", pool: str = "", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.key, self.pool = key, pool  # identity in the run's memory, and the pool it belongs to

    def identity(self) -> InterfaceResult:
        raise NotImplementedError

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> Any:
        if not isinstance(excinfo.value, InterfaceFailure):
            return super().repr_failure(excinfo)
        from .report import headline as localized_headline

        failure = excinfo.value
        # What pytest shows (FAILURES, the short summary, JUnit's message) is in the run's language; the
        # exception's own text (str(failure), what --only-rerun / --rerun-except match) stays the English
        # canonical line with the machine category: `[timeout] …`.
        headline = localized_headline(failure.result, _run(self.config).lang)
        text = headline + ("\n" + failure.details if failure.details else "")
        if ReprExceptionInfo is None:
            return text
        path, line, _ = self.reportinfo()
        lines = [ln + "\n" for ln in text.splitlines()]
        return ReprExceptionInfo(
            reprtraceback=ReprTraceback([ReprEntryNative(lines)], None, "native"),
            reprcrash=ReprFileLocation(str(path), (line or 0) + 1, headline),
        )

    def set_properties(self, result: InterfaceResult) -> None:
        """JUnit properties of this item from its result (also for a skipped interface)."""
        # JUnit takes the teardown report's properties, copied from item.user_properties; reset
        # per attempt since reruns reuse the item object.
        props = [
            ("service", result.service), ("module", result.module), ("method", result.method),
            ("url", result.url), ("category", result.category or ""),
            ("status", "" if result.status is None else str(result.status)),
            ("latency_ms", "" if result.elapsed_ms is None else f"{result.elapsed_ms:.0f}"),
            ("attempts", str(result.attempts)),
            ("flaky", "true" if result.outcome == Outcome.PASSED and result.attempts > 1 else "false"),
            ("key", result.key),
        ]
        if result.outcome == Outcome.SKIPPED:
            props.append(("skip_reason", result.reason))
            # What is down now: an open circuit means the last checks failed (the breaker saves requests).
            props.append(("state", "down" if result.circuit_open else "unknown"))
        self.user_properties[:] = props


class InterfaceItem(_ApimonItem):
    def __init__(self, *, interface: Interface, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.interface = interface
        self.retry_after_waited = 0.0  # seconds this item waited on Retry-After before its reruns (xdist)
        self.extra_keyword_matches.update({interface.service, interface.module})
        if interface.tags:
            registered = _run(self.config).markers
            if not registered:
                registered.update(line.split(":")[0].split("(")[0].strip() for line in self.config.getini("markers"))
            for tag in interface.tags:
                if tag not in registered:
                    # Document tags become markers; registering them keeps --strict-markers happy.
                    self.config.addinivalue_line("markers", f"{tag}: tag from interface documents")
                    registered.add(tag)
                self.add_marker(_mark(tag))
        self.add_marker(_mark("apimon"))
        # plugin.py gives pytest an ini filter for urllib3's InsecureRequestWarning, but pytest applies `-W error`
        # after ini filters: a mark is applied last, so verification turned off on purpose stays no failure there.
        self.add_marker(_INSECURE_OK)
        if interface.skip:
            self.add_marker(pytest.mark.skip(reason=interface.skip))

    def identity(self) -> InterfaceResult:
        itf = self.interface
        return InterfaceResult(
            nodeid=self.nodeid, service=itf.service, module=itf.module, name=itf.name, method=itf.method,
            url=self.full_url(), file=itf.file, line=itf.line, tags=list(itf.tags), key=self.key or itf.key,
            pool=self.pool, owners=list(itf.owner), severity=itf.severity or "",
        )

    def full_url(self) -> str:
        """The URL the check requests (base_url + path), also for a skipped interface; the path alone when
        the service has no base URL (that is reported as a config problem when it runs)."""
        itf = self.interface
        if itf.url:
            return itf.url
        try:
            return _run(self.config).engine().build_request(itf).url
        except (ValueError, KeyError, TypeError):  # no base_url: the check reports it as a config problem
            return itf.path or ""

    def runtest(self) -> None:
        run = _run(self.config)
        attempt = attempt_of(self)
        previous, self.result = self.result, None  # a rerun reuses the item: never report the previous result
        # Fetched concurrently ahead of time by the single-process Runner; else (xdist, stopped) check now.
        result = run.runner.result(self.nodeid, attempt) if run.runner is not None else None
        if result is None:
            if attempt > 1 and previous is not None:
                wait = run.retry.wait_after(previous, attempt - 1, self.retry_after_waited)
                if previous.retry_after is not None:
                    self.retry_after_waited += wait  # the interface's Retry-After budget (RetryPolicy.max_wait)
                if run.inprocess:
                    # Not prefetched (an xdist worker handed a crashed worker's item): pytest-rerunfailures was
                    # told not to wait (reruns_delay 0, the Runner waits), so the whole wait is waited here.
                    time.sleep(wait)
                elif previous.retry_after is not None:
                    # pytest-rerunfailures already slept the normal backoff; wait the rest of what Retry-After asked.
                    time.sleep(max(0.0, wait - run.retry.backoff(attempt - 1)))
            # Under xdist with a shared per-host cap, this holds one of its host's slots (plugin.HostSlotHold).
            result = run.engine().check(self.interface)
        result.nodeid = self.nodeid
        result.key, result.pool = self.key or result.key, self.pool
        result.attempts = attempt
        result.owners, result.severity = list(self.interface.owner), self.interface.severity or ""
        self.result = result
        self.set_properties(result)
        if result.outcome == Outcome.FAILED:
            raise InterfaceFailure.of(result, run.details(result))

    def reportinfo(self) -> tuple[Path, int | None, str]:
        itf = self.interface
        # pytest asserts a line for skipped items (INTERNALERROR otherwise): 0 when the line is unknown.
        return self.path, (itf.line - 1) if itf.line else 0, f"{itf.service}/{itf.module} · {itf.name}"


class InvalidDocumentItem(_ApimonItem):
    def __init__(self, *, error: DocumentError, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.error = error

    def identity(self) -> InterfaceResult:
        parent = self.parent
        pool_root = getattr(parent, "pool_root", None)
        service, module = _service_module(self.path, pool_root)
        from .messages import display_name

        # The name is shown (in the run's language); the node id and the key stay the item's identity.
        return InterfaceResult(
            nodeid=self.nodeid, service=service, module=module,
            name=self.error.name or display_name(self.name, _run(self.config).lang),
            file=self.error.file, line=self.error.line, key=self.key, pool=self.pool,
        )

    def runtest(self) -> None:
        result = self.identity()
        result.outcome = Outcome.FAILED
        result.category = Category.INVALID_DOCUMENT
        result.reason = str(self.error)
        self.result = result
        self.set_properties(result)
        raise InterfaceFailure(result, "")

    def reportinfo(self) -> tuple[Path, int | None, str]:
        text = str(self.error)
        if _run(self.config).lang == "zh":
            from .messages import zh_document

            text = zh_document(text)
        return self.path, (self.error.line - 1) if self.error.line else 0, text


_MARKS: dict[str, pytest.MarkDecorator] = {}


def _mark(name: str) -> pytest.MarkDecorator:
    """`pytest.mark.<name>`, built once per name: the same few tags go on every item, and each getattr on
    pytest.mark looks the name up among the ini markers again. Names are registered before (see above)."""
    mark = _MARKS.get(name)
    if mark is None:
        mark = _MARKS[name] = getattr(pytest.mark, name)
    return mark


def _auth_problem(itf: Interface, run: ApimonRun) -> DocumentError | None:
    """`auth: <service>` must name a configured service that has auth: else nothing would be sent, or a
    typo would silently check the interface without its credential."""
    if not isinstance(itf.auth, str):
        return None
    services = run.config.services
    other = services.get(itf.auth)
    if other is None:
        known = ", ".join(sorted(n for n, s in services.items() if s.auth is not None)) or "none"
        message = (f"auth: '{itf.auth}' is not a service in the config{did_you_mean(itf.auth, tuple(services))} "
                   f"(services with auth: {known})")
    elif other.auth is None:
        message = f"auth: service '{itf.auth}' has no auth configured (services.{itf.auth}.auth in the config)"
    else:
        return None
    return DocumentError(file=itf.file, line=itf.line, field="auth", message=message, name=itf.name,
                         index=itf.index)


def _rel(path: Path, pool_root: Path) -> str:
    try:
        return path.relative_to(pool_root).as_posix()
    except ValueError:
        return path.as_posix()


def _service_module(path: Path, pool_root: Path | None) -> tuple[str, str]:
    if pool_root is None:
        return path.parent.name, path.stem
    try:
        return service_and_module(path, pool_root)
    except Exception:  # a broken file must still be reportable
        return path.parent.name, path.stem


# Requests run on the Runner's threads while pytest's warning filters follow items (plugin.py's ini filter).
_INSECURE_OK = pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning")
