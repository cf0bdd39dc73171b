"""Controller-side (or single-process) aggregation of the run: the only place that writes outputs.

A pytest plugin object registered by plugin.py on the process that sees every report: it collects the
`report.apimon` dicts, and at the end writes the report files, remembers the run and notifies.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from . import alerts
from .atomicfile import atomic_write
from .categories import Category, Outcome
from .messages import localize, say
from .report import Extras, compute_stats, iter_json, render_markdown, render_terminal
from .results import InterfaceResult, RunResult
from .retries import is_rerun_report
from .runner import host_of
from .runstate import ApimonRun
from .stash import apimon_option
from .statedir import file_mode

if TYPE_CHECKING:  # coverage, metrics and statuspage are imported when their output is asked for (issue 15)
    from . import coverage
    from .alerts import AlertOutcome, Memory

log = logging.getLogger("pytest_apimon")


class ResultCollector:
    def __init__(self, run: ApimonRun, config: pytest.Config, memory: Memory | None,
                 selection_complete: bool) -> None:
        self.run = run
        self.config = config
        self.memory = memory
        self.selection_complete = selection_complete
        self.finished_at: float | None = None
        self.alert: AlertOutcome | None = None
        self.extras: Extras | None = None
        self.coverage: dict | None = None
        self.reported: set[str] = set()  # node ids with a final report (apimon or a user's own test)
        self.lost_workers: list[str] = []  # xdist workers that died (gw0 …), replaced or not

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        """Single process: what the run set out to check (xdist: plugin.XdistHooks fills run.collected)."""
        self.run.collected.update(item.nodeid for item in session.items)

    @pytest.hookimpl(optionalhook=True)  # xdist's hook: unknown without xdist
    def pytest_testnodedown(self, node: object, error: object) -> None:
        if error is not None:  # the worker died (xdist's worker_errordown); None: it finished
            gateway = getattr(node, "gateway", None)
            self.lost_workers.append(str(getattr(gateway, "id", "?")))

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        # An attempt that is to be repeated is not a final report: after a crash its retry may never run.
        if is_rerun_report(report):
            self.run.reruns[report.nodeid] = self.run.reruns.get(report.nodeid, 0) + 1
        else:
            self.reported.add(report.nodeid)
        data = getattr(report, "apimon", None)
        if data is not None and data.get("category") == "rate_limited":  # every attempt counts, reruns too
            host = host_of(data.get("url") or "", data.get("service") or "")
            self.run.rate_limited[host] = self.run.rate_limited.get(host, 0) + 1
        if is_rerun_report(report):
            return
        if data is None:
            unchecked = getattr(report, "apimon_unchecked", None)
            if unchecked:  # a crash not blamed on it (retries.CrashRerun): neither up nor down this run
                self._record_unchecked(report.nodeid, str(unchecked))
                return
            earlier = self.run.results.get(report.nodeid)
            # A worker that died after the item's check had reported (in its teardown) makes pytest count the
            # item passed and then failed: the run counts it failed, as pytest's exit code does.
            if report.failed and (earlier is None or earlier.outcome != Outcome.FAILED):
                self._record_crash(report)
            return
        # The run's copy is the InterfaceResult below; pytest keeps every report to the end (10 000 dicts).
        del report.apimon  # type: ignore[attr-defined]
        earlier = self.run.results.get(report.nodeid)
        if earlier is not None and earlier.sub == "crash" and earlier.category == Category.UNEXPECTED:
            # Its worker died on its last attempt, and xdist ran it once more (--dist loadscope without
            # pytest-rerunfailures, docs/scaling.md): pytest counted that crash failed, so the run keeps it.
            return
        result = InterfaceResult.from_dict(data)
        if result.circuit_open and self.memory is not None:
            state = self.memory.states.get(result.key)
            last = state.last_category if state is not None else None
            result.category = Category(last) if last else None
        self.run.results[report.nodeid] = result
        if result.outcome == Outcome.FAILED:
            headline = result.headline(self.run.lang)
            if result.reason and result.reason not in headline:
                headline += f" | {result.reason}"
            log.warning("%s", self.run.redactor.text(headline))

    def _record_crash(self, report: pytest.TestReport) -> None:
        """A failed report of an interface that carries no result: xdist made it on the controller because the
        worker died while checking it (its "worker 'gw0' crashed while running …" report), or after its check
        passed. pytest counts it failed, so the run does too: `unexpected` / `crash`, with xdist's line as the
        reason. Without this the report said "all passed" while pytest said "1 failed". A user's own test in
        the pool is not an interface (its file is not a document) and stays pytest's alone."""
        text = str(report.longrepr or "").strip().splitlines()
        self._record_without_result(report.nodeid, text[0] if text else "", Outcome.FAILED,
                                    category=Category.UNEXPECTED, sub="crash")

    def _record_unchecked(self, nodeid: str, reason: str) -> None:
        """A crash retries.CrashRerun did not blame on the item xdist named: not checked, with its reason."""
        self._record_without_result(nodeid, reason, Outcome.SKIPPED, unchecked=True)

    def _record_without_result(self, nodeid: str, reason: str, outcome: Outcome, *, category: Category | None = None,
                               sub: str = "", unchecked: bool = False) -> None:
        """The run's result of an interface whose final report carries none (made on the controller after a
        worker died): its identity from the node id, `outcome`, the masked `reason`, and its attempts (the
        earlier ones were reruns). Nothing for what is not an interface."""
        result = self._interface(nodeid)
        if result is None:
            return
        result.outcome, result.category, result.sub, result.unchecked = outcome, category, sub, unchecked
        result.reason = self.run.redactor.excerpt(reason, 300)
        result.attempts = self.run.reruns.get(nodeid, 0) + 1
        self.run.results[nodeid] = result
        log.warning("%s", self.run.redactor.text(f"{result.headline(self.run.lang)} | {result.reason}"))

    def _interface(self, nodeid: str) -> InterfaceResult | None:
        """An interface's identity from its node id alone (the controller of an xdist run has no item), as a
        passed InterfaceResult; None for what is not an interface: a user's own test in the pool (its file is
        not a document) or a whole-file node."""
        from .documents import service_and_module

        found = self.run.interface_document(nodeid, self.config.rootpath)
        if found is None:
            return None
        path, root = found
        file, _, name = nodeid.partition("::")
        service, module = service_and_module(path, root)
        return InterfaceResult(nodeid=nodeid, service=service, module=module, name=name, key=f"{service}/{name}",
                               pool=self.run.pool_name(root), file=file)

    def _add_unchecked(self, session: pytest.Session, exitstatus: int) -> int:
        """Every collected item that got no report although the run was neither stopped (-x, --maxfail) nor
        interrupted: xdist gave up replacing a dead worker (--max-worker-restart; docs/scaling.md "When a
        worker dies") and the items that worker still held never ran. Each such interface is added as skipped
        and `unchecked`, with the reason, so no output drops it or counts it passed. Returns how many collected
        items (interfaces or a user's own tests) went unreported or are not checked (also a crash not blamed on
        the item xdist named, retries.CrashRerun): the run is incomplete when it is not 0."""
        stopped = bool(session.shouldstop or session.shouldfail)
        if stopped or exitstatus == pytest.ExitCode.INTERRUPTED:
            return 0  # the user's -x / --maxfail / Ctrl-C: pytest already says the run stopped early
        missing = sorted(self.run.collected - self.reported)
        workers = ", ".join(dict.fromkeys(self.lost_workers))
        cause = f"xdist worker {workers} died and was not replaced (--max-worker-restart)" if workers else ""
        for nodeid in missing:
            result = self._interface(nodeid)
            if result is None or nodeid in self.run.results:
                continue
            if not cause:
                reason = "not checked: the run ended without a result for it"
            elif nodeid in self.run.reruns:  # e.g. its own check killed the worker, and its retry had nowhere to run
                reason = f"not checked: its retry never ran: {cause}"
            else:
                reason = f"not checked: {cause}"
            result.outcome, result.unchecked, result.reason = Outcome.SKIPPED, True, reason
            self.run.results[nodeid] = result
        if missing:
            log.warning("run incomplete: %d collected item(s) got no result (%s)", len(missing),
                        cause or "the run ended without them")
        # …and those whose final report says not checked (the missing ones have none)
        said = sum(1 for nodeid, r in self.run.results.items() if r.unchecked and nodeid in self.reported)
        return len(missing) + said

    def run_result(self) -> RunResult:
        runner = self.run.runner
        caps = {h: cap for h, (_, cap) in runner.rate_limited_hosts().items()} if runner is not None else {}
        return RunResult(
            started_at=self.run.started_at,
            finished_at=self.finished_at or time.time(),
            env=self.run.config.env,
            results=list(self.run.results.values()),
            proxy=self.run.proxy,
            rate_limited=dict(self.run.rate_limited),
            host_caps=caps,
        )

    def selection_is_complete(self, session: pytest.Session | None = None, exitstatus: int = 0) -> bool:
        """The whole pools were collected and every collected item reported: only then may the run forget
        remembered interfaces it did not see (removed from the pool). A -k/-m/--lf/--deselect subset, a run
        stopped by -x/--maxfail or interrupted, or items that never reported make it partial."""
        opt = self.config.option
        subset = opt.keyword or opt.markexpr or self.config.getoption("lf", False) or opt.deselect
        stopped = session is not None and bool(session.shouldstop or session.shouldfail)
        interrupted = exitstatus == pytest.ExitCode.INTERRUPTED
        unreported = bool(self.run.collected - self.reported)
        return self.selection_complete and not (subset or stopped or interrupted or unreported)

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        if self.finished_at is not None or self.config.option.collectonly:
            return
        self.finished_at = time.time()
        if self._add_unchecked(session, exitstatus) and session.exitstatus in (pytest.ExitCode.OK,
                                                                               pytest.ExitCode.TESTS_FAILED):
            # Incomplete: part of what the run set out to check never ran. 2, as `apimon merge` exits when a
            # shard's results are missing (and pytest when a run is cut short): neither "healthy" (0) nor a
            # verdict on the services (1); `apimon watch` treats it as the monitor not doing its job.
            session.exitstatus = pytest.ExitCode.INTERRUPTED
        if self.run._engine is not None:  # this process's own logins (single process; 0 on a controller)
            self.run.add_token_stats(self.run._engine.tokens.stats())
        run_result = self.run_result()
        cfg = self.run.config
        if self.run.shard is not None:
            self._write_shard(run_result)
            return
        try:
            self.alert, self.extras = alerts.finish(
                run_result, cfg, self.run.lang, self.run.redactor, self.memory,
                dry_run=bool(self.config.getoption("apimon_dry_run")),
                selection_complete=self.selection_is_complete(session, exitstatus),
                pools=[self.run.pool_name(root) for root in self.run.roots],
            )
        except Exception:  # the report files below must still be written
            log.exception("pytest-apimon: remembering or notifying the run failed")
        red = self.run.redactor
        coverage_md, coverage_json = "", None
        if self.config.getoption("apimon_coverage"):
            from . import coverage

            # Walks the pools itself (the controller of an xdist run collected nothing).
            report = coverage.coverage(*_scan(coverage.scan(self.run.roots, rootdir=self.config.rootpath)))
            self.coverage = report
            # Masked like every output: a skipped interface's path or reason may hold a ${VAR}'s secret.
            coverage_md = "\n" + red.text(coverage.render_coverage(report, self.run.lang, markdown=True))
            coverage_json = coverage.to_dict(report)

        def markdown() -> str:
            text = render_markdown(run_result, self.run.lang, cfg.report.title, redactor=red, extras=self.extras)
            return text + coverage_md

        def as_json() -> Iterable[str]:  # written piece by piece: a large run is never held whole
            return iter_json(run_result, redactor=red, extras=self.extras, coverage=coverage_json)

        outputs: tuple[tuple[str, str | None, Callable[[], str | Iterable[str]]], ...] = (
            ("report", cfg.report.markdown, markdown), ("json", cfg.report.json, as_json))
        memory = self.memory
        if memory is not None:  # the page and metrics draw on the history (not recorded in a dry run)
            store, verdict = memory.store, memory.verdict
            lang, title = self.run.lang, cfg.report.title

            def status_page() -> str:
                from .statuspage import render_status_page  # Jinja2: only when a status page is written

                return render_status_page(store, cfg.env, run_result, verdict, lang=lang, title=title, redactor=red,
                                          certificates=self.extras.certificates if self.extras else None)

            def textfile() -> str:
                from .metrics import render_prometheus  # prometheus_client: only when a textfile is written

                return render_prometheus(run_result, store, verdict)

            outputs += (("html", cfg.report.html, status_page), ("prometheus", cfg.report.prometheus, textfile))
        for name, from_config, render in outputs:
            # A path given on the command line is relative to the cwd; one from config.yaml to its folder.
            cli = apimon_option(self.config, name)
            target = cli or from_config
            if not target:
                continue
            path = Path(target)
            if not path.is_absolute():
                path = (Path(self.config.invocation_params.dir) if cli else cfg.base_dir) / path
            try:
                # Atomic: a web server or node_exporter never reads half a file.
                atomic_write(path, render(), mode=file_mode(cfg.report.publish))
            except Exception:
                log.exception("pytest-apimon: writing %s failed", path)
                continue
            log.info("wrote %s", path)
        stats = compute_stats(run_result)
        if stats.circuit_open and session.exitstatus == pytest.ExitCode.OK:
            # Known down behind an open circuit: the run is not green (issue 14: the breaker saves requests,
            # not the truth).
            session.exitstatus = pytest.ExitCode.TESTS_FAILED
        log.info(
            "run finished: total=%d passed=%d failed=%d (circuit open %d) skipped=%d flaky=%d by_category=%s"
            " p95_ms=%s duration=%.1fs | %s",
            stats.total, stats.passed, stats.failed, stats.circuit_open, stats.skipped, stats.flaky,
            stats.by_category, stats.p95_ms,
            run_result.duration, self.run.token_summary("en") or "no logins needed",
        )

    def _write_shard(self, run_result: RunResult) -> None:
        """--apimon-shard: only the results file; `apimon merge` does the report, notification and state."""
        from .merge import shard_document

        shard = self.run.shard
        assert shard is not None
        cli = apimon_option(self.config, "json")
        target = cli or self.run.config.report.json or f"apimon-shard-{shard.index}-of-{shard.total}.json"
        path = Path(target)
        if not path.is_absolute():
            path = (Path(self.config.invocation_params.dir) if cli or not self.run.config.report.json
                    else self.run.config.base_dir) / path
        text = shard_document(run_result, shard, selection_complete=self.selection_is_complete(),
                              redactor=self.run.redactor, plan=self.run.shard_plan)
        try:
            atomic_write(path, text, mode=file_mode(self.run.config.report.publish))
        except Exception:
            log.exception("pytest-apimon: writing %s failed", path)
            return
        log.info("wrote shard %s results to %s", shard, path)

    def pytest_terminal_summary(self, terminalreporter: pytest.TerminalReporter) -> None:
        if self.config.option.collectonly:
            return
        write = terminalreporter.write_line
        red = self.run.redactor
        terminalreporter.section("pytest-apimon")
        write(render_terminal(self.run_result(), self.run.lang, redactor=red, extras=self.extras).rstrip("\n"))
        tokens = self.run.token_summary(self.run.lang)
        if tokens:
            write(tokens)
        lang = self.run.lang
        for warning in self.run.warnings:
            write(say("term.warning", lang, text=localize(warning, lang)), yellow=True)
        if self.coverage is not None:
            from . import coverage

            terminalreporter.section(say("term.coverage", lang))
            write(red.text(coverage.render_coverage(self.coverage, lang)).rstrip("\n"))
        alert = self.alert
        if alert is None:
            return
        if self.config.getoption("apimon_dry_run"):
            terminalreporter.section(say("term.dry_run", lang))
            write(red.text(alert.reason))
            return
        for res in alert.results:
            if not (res.own or res.messages_sent or res.pending or res.rejected or res.errors):
                continue  # a flush with nothing in the outbox: nothing to say
            write(res.describe(lang), red=bool(res.pending or res.rejected or not res.delivered))
            for error in res.errors:
                write(f"  {localize(red.text(error), lang)}")
        if alert.reason and self.run.config.notify.enabled:
            write(say("term.notify_reason", lang, text=alert.reason))


def _scan(found: coverage.Scan) -> tuple[list, dict]:
    return found.files, found.services
