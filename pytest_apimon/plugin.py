"""pytest hooks and options: wires the core modules into a run. Inert unless --apimon is given."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from . import alerts, logs
from .config import Config, ConfigError, load_config
from .documents import Interface, NameRegistry, is_document
from .engine import Engine
from .items import InterfaceFile, InterfaceItem, _ApimonItem
from .redact import Redactor
from .report import compute_stats, render_json, render_markdown, render_terminal
from .results import InterfaceResult, RunResult
from .runner import TRANSIENT, RetryPolicy, Runner, host_of

log = logging.getLogger("pytest_apimon")
DEFAULT_CONCURRENCY = 32  # see README "Concurrency defaults" (bench/ figures)


@dataclass
class ApimonRun:
    """Per-process run state, kept in config.stash."""

    config: Config
    roots: list[Path]
    lang: str
    redactor: Redactor
    is_worker: bool
    names: NameRegistry = field(default_factory=NameRegistry)
    started_at: float = field(default_factory=time.time)
    results: dict[str, InterfaceResult] = field(default_factory=dict)
    inprocess: bool = True  # no xdist: this process prefetches concurrently with a Runner
    concurrency: int = DEFAULT_CONCURRENCY
    max_per_host: int = DEFAULT_CONCURRENCY
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    runner: Runner | None = None
    _engine: Engine | None = None

    def engine(self) -> Engine:
        if self._engine is None:
            self._engine = Engine(self.config, self.redactor, pool_size=self.max_per_host)
        return self._engine

    def host(self, itf: Interface) -> str:
        try:
            return host_of(self.engine().build_request(itf).url, itf.service)
        except ValueError:
            return itf.service

    def details(self, result: InterfaceResult) -> str:
        """Failure text below the headline: reason, then the masked request and response."""
        lines = [f"reason: {result.reason}"] if result.reason else []
        if result.method:
            lines.append(f"request: {result.method} {result.url}")
            lines += [f"  {k}: {v}" for k, v in result.request_headers.items()]
            if result.request_body:
                lines.append(f"  body: {result.request_body[:500]}")
        if result.status is not None:
            lines.append(f"response: {result.status} in {result.elapsed_ms:.0f} ms")
            if result.response_body:
                lines.append(f"  body: {result.response_body[:500]}")
        return "\n".join(lines)

    def pool_root_for(self, path: Path) -> Path | None:
        for root in self.roots:
            if path == root or root in path.parents:
                return root
        return None


RUN_KEY = pytest.StashKey[ApimonRun]()
# Regex for pytest-rerunfailures: rerun only failures of a transient category (the headline starts "[timeout]").
ONLY_RERUN = r"^InterfaceFailure: \[(" + "|".join(TRANSIENT) + r")\]"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("apimon", "API monitoring (pytest-apimon)")
    group.addoption(
        "--apimon", nargs="+", action="extend", default=[], metavar="PATH",
        help="monitor the interface documents under PATH (an Interface-pool folder); enables the plugin",
    )
    group.addoption("--apimon-config", metavar="FILE", help="config file (default: config.yaml in the rootdir)")
    group.addoption("--apimon-env", metavar="NAME", help="environment whose base URLs to use")
    group.addoption("--apimon-report", metavar="PATH", help="write the report as Markdown to PATH")
    group.addoption("--apimon-json", metavar="PATH", help="write one JSON record per interface to PATH")
    group.addoption("--apimon-lang", choices=("zh", "en"), help="report language (default: config or zh)")
    group.addoption("--apimon-concurrency", type=int, metavar="N",
                    help="requests in flight at once in a single-process run (default: config or 32)")
    group.addoption("--apimon-dry-run", action="store_true",
                    help="render and print every notification message instead of sending it")
    group.addoption("--apimon-test-webhook", action="store_true",
                    help="send one short test message to each configured robot, print the answer, and exit")
    parser.addini("apimon_config", "pytest-apimon config file", default="")
    parser.addini("apimon_env", "pytest-apimon environment", default="")
    parser.addini("apimon_report", "pytest-apimon Markdown report path", default="")
    parser.addini("apimon_json", "pytest-apimon JSON results path", default="")
    parser.addini("apimon_lang", "pytest-apimon report language (zh|en)", default="")
    parser.addini("apimon_concurrency", "pytest-apimon in-process concurrency", default="")


def _option(config: pytest.Config, name: str) -> str | None:
    return config.getoption(f"apimon_{name}") or config.getini(f"apimon_{name}") or None


def _resolve_roots(config: pytest.Config, cfg: Config, paths: list[str]) -> list[Path]:
    roots = []
    for raw in paths:
        path = Path(raw)
        path = (path if path.is_absolute() else Path(config.invocation_params.dir) / path).resolve()
        if not path.exists():
            raise pytest.UsageError(f"--apimon: path not found: {raw}")
        # A path inside a pool (a service folder or a single document) keeps the pool as the root,
        # so the service is still the first folder under the pool.
        for candidate in [path, *path.parents]:
            if candidate.name in cfg.services and candidate.is_dir():
                path = candidate.parent
                break
        else:
            if path.is_file():
                path = path.parent.parent
        roots.append(path)
    return roots


def _load(config: pytest.Config) -> Config:
    cfg_path = _option(config, "config")
    if cfg_path:
        path: Path | None = Path(cfg_path)
        if not path.is_absolute():
            path = Path(config.invocation_params.dir) / path
    else:
        path = config.rootpath / "config.yaml"
        path = path if path.is_file() else None
    try:
        return load_config(path, env=_option(config, "env"))
    except ConfigError as exc:
        raise pytest.UsageError(f"pytest-apimon: invalid config: {exc}") from None


def pytest_cmdline_main(config: pytest.Config) -> int | None:
    if not config.getoption("apimon_test_webhook"):
        return None
    from .notify.wecom import check_webhooks

    cfg = _load(config)
    if not cfg.notify.wecom:
        print("pytest-apimon: no WeCom robot configured (notify.wecom in the config)")
        return pytest.ExitCode.USAGE_ERROR
    checks = check_webhooks(cfg.notify, lang=cfg.notify.language or cfg.report.language)
    for check in checks:
        print(f"WeCom robot '{check.robot}': {check.answer}")
    return 0 if all(c.ok for c in checks) else 1


@pytest.hookimpl(trylast=True)
def pytest_configure(config: pytest.Config) -> None:
    paths = config.getoption("apimon")
    if not paths:
        return
    cfg = _load(config)
    lang = _option(config, "lang") or cfg.report.language
    if lang not in ("zh", "en"):
        raise pytest.UsageError(f"pytest-apimon: apimon_lang must be zh or en, got {lang!r}")
    is_worker = hasattr(config, "workerinput")
    roots = _resolve_roots(config, cfg, paths)
    run = ApimonRun(config=cfg, roots=roots, lang=lang, redactor=Redactor(cfg.secrets), is_worker=is_worker)
    _configure_concurrency(config, run)
    config.stash[RUN_KEY] = run
    if config.args_source != pytest.Config.ArgsSource.ARGS:
        # The PATHs were consumed by --apimon: collect exactly them, not testpaths or the cwd.
        config.args[:] = [str(p) for p in paths]
    config.addinivalue_line("markers", "apimon: an interface checked by pytest-apimon")
    if not is_worker:
        logs.setup_logging(cfg.logging, cfg.base_dir, mask=run.redactor.text)
        log.info(
            "run started: env=%s config=%s pools=%s", cfg.env, cfg.path or "(built-in defaults)",
            ", ".join(str(r) for r in roots),
        )
        config.pluginmanager.register(ResultCollector(run, config), "apimon-results")


def _configure_concurrency(config: pytest.Config, run: ApimonRun) -> None:
    d = run.config.defaults
    raw = config.getoption("apimon_concurrency") or config.getini("apimon_concurrency") or getattr(
        d, "concurrency", DEFAULT_CONCURRENCY)
    try:
        run.concurrency = max(1, int(raw))
    except ValueError:
        raise pytest.UsageError(f"pytest-apimon: apimon_concurrency must be a number, got {raw!r}") from None
    run.max_per_host = min(run.concurrency, getattr(d, "max_per_host", None) or run.concurrency)
    # xdist: the controller runs nothing and workers get items one batch at a time: no prefetch there.
    run.inprocess = not run.is_worker and not getattr(config.option, "numprocesses", None)
    reruns = config.getoption("reruns", None) if config.pluginmanager.hasplugin("rerunfailures") else 0
    delay = config.getoption("reruns_delay", None)
    factor = config.getoption("reruns_delay_backoff_factor", None)
    run.retry = RetryPolicy(
        retries=d.retries if reruns is None else reruns,
        delay=d.retry_delay if delay is None else delay,
        factor=d.backoff_factor if factor is None else factor,
    )


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    run = parent.config.stash.get(RUN_KEY, None)
    if run is None or not is_document(file_path):
        return None
    root = run.pool_root_for(file_path)
    if root is None:
        return None
    return InterfaceFile.from_parent(parent, path=file_path, pool_root=root)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    run = config.stash.get(RUN_KEY, None)
    if run is None:
        return
    retry = run.retry
    user_filter = config.getoption("only_rerun", None) or config.getoption("rerun_except", None)
    guard = None
    if config.pluginmanager.hasplugin("timeout") and config.getoption("timeout", None) is None \
            and not config.getini("timeout"):
        guard = 5.0 + (retry.backoff(retry.retries) if retry.retries else 0.0)
    for item in items:
        if not isinstance(item, InterfaceItem):
            continue
        if retry.retries > 0 and item.get_closest_marker("flaky") is None:
            kwargs: dict[str, object] = {
                "reruns": retry.retries,
                # In-process the Runner already waited the backoff before the next attempt.
                "reruns_delay": 0 if run.inprocess else retry.delay,
                "reruns_delay_backoff_factor": 1.0 if run.inprocess else retry.factor,
            }
            if not user_filter:
                kwargs["only_rerun"] = [ONLY_RERUN]
            item.add_marker(pytest.mark.flaky(**kwargs))
        if guard is not None and item.get_closest_marker("timeout") is None:
            # Hang guard per attempt (func_only: re-armed for every rerun, see pytest-internals §4).
            request_timeout = run.engine().timeout_for(item.interface)
            item.add_marker(pytest.mark.timeout(2 * request_timeout + guard, func_only=True))


@pytest.hookimpl(tryfirst=True)
def pytest_runtestloop(session: pytest.Session) -> None:
    run = session.config.stash.get(RUN_KEY, None)
    if run is None or not run.inprocess or session.config.option.collectonly or not session.items:
        return
    jobs = [
        (item.nodeid, item.interface) for item in session.items
        if isinstance(item, InterfaceItem) and item.get_closest_marker("skip") is None
    ]
    if jobs:
        engine = run.engine()
        run.runner = Runner(
            engine.check, concurrency=run.concurrency, max_per_host=run.max_per_host,
            retry=run.retry, host=run.host,
        )
        run.runner.start(jobs)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> object:
    result = yield
    run = item.config.stash.get(RUN_KEY, None)
    if run is not None and run.runner is not None and (item.session.shouldfail or item.session.shouldstop):
        run.runner.stop()  # -x / --maxfail: issue no new requests
    return result


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> pytest.TestReport:
    report: pytest.TestReport = yield
    if isinstance(item, _ApimonItem) and (call.when == "call" or report.outcome != "passed"):
        result = item.result if call.when == "call" and item.result is not None else item.identity()
        result.nodeid = item.nodeid
        result.attempts = getattr(item, "execution_count", 1)
        if report.skipped:
            result.outcome = "skipped"
            longrepr = report.longrepr
            result.reason = longrepr[2] if isinstance(longrepr, tuple) else str(longrepr or "")
            result.reason = result.reason.removeprefix("Skipped: ")
        elif report.failed and result.outcome != "failed":
            # Not raised by the engine: a hang cut by pytest-timeout, or a bug; still one category.
            text = str(call.excinfo.value) if call.excinfo else str(report.longrepr)
            result.outcome = "failed"
            is_timeout = "Timeout" in text and "pytest-timeout" in text
            result.category = "timeout" if is_timeout else "unexpected"
            result.sub = "hang" if is_timeout else "error"
            result.reason = text.splitlines()[0][:300] if text else "error"
        report.apimon = result.to_dict()  # type: ignore[attr-defined]  # crosses xdist as a dict
    return report


class ResultCollector:
    """Controller-side (or single-process) aggregation; the only place that writes outputs."""

    def __init__(self, run: ApimonRun, config: pytest.Config) -> None:
        self.run = run
        self.config = config
        self.written = False

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        data = getattr(report, "apimon", None)
        if data is None or report.outcome == "rerun":
            return
        result = InterfaceResult.from_dict(data)
        self.run.results[report.nodeid] = result
        if result.outcome == "failed":
            headline = result.headline(self.run.lang)
            if result.reason and result.reason not in headline:
                headline += f" | {result.reason}"
            log.warning("%s", headline)

    def run_result(self) -> RunResult:
        return RunResult(
            started_at=self.run.started_at,
            finished_at=getattr(self, "finished_at", time.time()),
            env=self.run.config.env,
            results=list(self.run.results.values()),
        )

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        if self.written or self.config.option.collectonly:
            return
        self.written = True
        self.finished_at = time.time()
        run_result = self.run_result()
        cfg = self.run.config
        outputs = (
            ("report", cfg.report.markdown,
             lambda: render_markdown(run_result, self.run.lang, cfg.report.title, redactor=self.run.redactor)),
            ("json", cfg.report.json, lambda: render_json(run_result, redactor=self.run.redactor)),
        )
        for option, from_config, render in outputs:
            # A path given on the command line is relative to the cwd; one from config.yaml to its folder.
            cli = _option(self.config, option)
            target = cli or from_config
            if not target:
                continue
            path = Path(target)
            if not path.is_absolute():
                path = (Path(self.config.invocation_params.dir) if cli else cfg.base_dir) / path
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(render(), encoding="utf-8")
            log.info("wrote %s", path)
        self.alert = alerts.deliver(
            run_result, cfg, self.run.lang, self.run.redactor,
            dry_run=bool(self.config.getoption("apimon_dry_run")),
            selection_complete=not (self.config.option.keyword or self.config.option.markexpr
                                    or self.config.getoption("lf", False)),
        )
        stats = compute_stats(run_result)
        log.info(
            "run finished: total=%d passed=%d failed=%d skipped=%d by_category=%s p95_ms=%s duration=%.1fs",
            stats.total, stats.passed, stats.failed, stats.skipped, stats.by_category, stats.p95_ms,
            run_result.duration,
        )

    def pytest_terminal_summary(self, terminalreporter: pytest.TerminalReporter) -> None:
        if self.config.option.collectonly:
            return
        run_result = self.run_result()
        terminalreporter.section("pytest-apimon")
        terminalreporter.write_line(render_terminal(run_result, self.run.lang, redactor=self.run.redactor))
        alert = getattr(self, "alert", None)
        if alert is not None and self.config.getoption("apimon_dry_run"):
            terminalreporter.section("pytest-apimon: notification (dry run)")
            terminalreporter.write_line(alert.reason)
        elif alert is not None and alert.results:
            for res in alert.results:
                state = "delivered" if res.delivered else "NOT delivered (kept in the outbox)"
                terminalreporter.write_line(
                    f"{res.notifier}: {state}, {res.messages_sent} message(s)"
                    + (f", {res.redelivered} from earlier runs" if res.redelivered else "")
                )
                for error in res.errors:
                    terminalreporter.write_line(f"  {self.run.redactor.text(error)}")
        elif alert is not None and alert.reason and self.run.config.notify.wecom:
            terminalreporter.write_line(f"WeCom: {alert.reason}")

    def pytest_unconfigure(self) -> None:
        logs.teardown_logging()


def _dedupe_junit_reruns(config: pytest.Config) -> None:
    """One <testcase> per interface: drop the entries pytest's junitxml opened for earlier attempts.

    pytest-rerunfailures reports every attempt; junitxml then writes each as its own testcase and the
    failed attempts look like passes (rerunfailures#170). The last entry per nodeid is the final outcome.
    Uses junitxml's internals (xml_key, node_reporters_ordered); skipped if they ever change.
    """
    try:
        from _pytest.junitxml import xml_key
    except ImportError:  # pragma: no cover
        return
    xml = config.stash.get(xml_key, None)
    ordered = getattr(xml, "node_reporters_ordered", None)
    if not isinstance(ordered, list):
        return

    def key(rep: object) -> object:
        # A finalized reporter keeps only its XML element (its __dict__ is cleared).
        try:
            element = rep.to_xml()  # type: ignore[attr-defined]
            return element.get("classname"), element.get("name")
        except Exception:  # unknown shape: keep it
            return id(rep)

    keys = [key(rep) for rep in ordered]
    last = {k: i for i, k in enumerate(keys)}
    ordered[:] = [rep for i, rep in enumerate(ordered) if last[keys[i]] == i]


@pytest.hookimpl(tryfirst=True)
def pytest_sessionfinish(session: pytest.Session) -> None:
    run = session.config.stash.get(RUN_KEY, None)
    if run is None:
        return
    if not run.is_worker:
        _dedupe_junit_reruns(session.config)
    if run.runner is not None:
        run.runner.close()
    if run._engine is not None:
        run._engine.close()
