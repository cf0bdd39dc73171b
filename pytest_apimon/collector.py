"""Controller-side (or single-process) aggregation of the run: the only place that writes outputs.

A pytest plugin object registered by plugin.py on the process that sees every report: it collects the
`report.apimon` dicts, and at the end writes the report files, remembers the run and notifies.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from . import alerts, coverage, metrics, statuspage
from .report import Extras, compute_stats, render_json, render_markdown, render_terminal
from .results import InterfaceResult, RunResult
from .runner import host_of
from .runstate import ApimonRun
from .stash import apimon_option
from .statedir import file_mode

if TYPE_CHECKING:
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

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        data = getattr(report, "apimon", None)
        if data is not None and data.get("category") == "rate_limited":  # every attempt counts, reruns too
            host = host_of(data.get("url") or "", data.get("service") or "")
            self.run.rate_limited[host] = self.run.rate_limited.get(host, 0) + 1
        if data is None or report.outcome == "rerun":
            return
        result = InterfaceResult.from_dict(data)
        self.run.results[report.nodeid] = result
        if result.outcome == "failed":
            headline = result.headline(self.run.lang)
            if result.reason and result.reason not in headline:
                headline += f" | {result.reason}"
            log.warning("%s", self.run.redactor.text(headline))

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

    def selection_is_complete(self) -> bool:
        opt = self.config.option
        subset = opt.keyword or opt.markexpr or self.config.getoption("lf", False) or opt.deselect
        return self.selection_complete and not subset

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        if self.finished_at is not None or self.config.option.collectonly:
            return
        self.finished_at = time.time()
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
                selection_complete=self.selection_is_complete(),
            )
        except Exception:  # the report files below must still be written
            log.exception("pytest-apimon: remembering or notifying the run failed")
        red = self.run.redactor
        coverage_md, coverage_json = "", None
        if self.config.getoption("apimon_coverage"):
            # Walks the pools itself (the controller of an xdist run collected nothing).
            report = coverage.coverage(*_scan(coverage.scan(self.run.roots, rootdir=self.config.rootpath)))
            self.coverage = report
            coverage_md = "\n" + coverage.render_coverage(report, self.run.lang, markdown=True)
            coverage_json = coverage.to_dict(report)

        def markdown() -> str:
            text = render_markdown(run_result, self.run.lang, cfg.report.title, redactor=red, extras=self.extras)
            return text + coverage_md

        def as_json() -> str:
            text = render_json(run_result, redactor=red)
            if coverage_json is None:
                return text
            doc = json.loads(text)
            doc["coverage"] = coverage_json
            return json.dumps(doc, ensure_ascii=False, indent=2)

        outputs: tuple[tuple[str, str | None, Callable[[], str]], ...] = (
            ("report", cfg.report.markdown, markdown), ("json", cfg.report.json, as_json))
        memory = self.memory
        if memory is not None:  # the page and metrics draw on the history (not recorded in a dry run)
            store, verdict = memory.store, memory.verdict
            lang, title = self.run.lang, cfg.report.title
            outputs += (
                ("html", cfg.report.html, lambda: statuspage.render_status_page(
                    store, cfg.env, run_result, verdict, lang=lang, title=title, redactor=red)),
                ("prometheus", cfg.report.prometheus, lambda: metrics.render_prometheus(run_result, store, verdict)),
            )
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
                metrics.atomic_write_text(path, render(), mode=file_mode(cfg.report.publish))
            except Exception:
                log.exception("pytest-apimon: writing %s failed", path)
                continue
            log.info("wrote %s", path)
        stats = compute_stats(run_result)
        log.info(
            "run finished: total=%d passed=%d failed=%d skipped=%d flaky=%d by_category=%s p95_ms=%s duration=%.1fs"
            " | %s",
            stats.total, stats.passed, stats.failed, stats.skipped, stats.flaky, stats.by_category, stats.p95_ms,
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
            metrics.atomic_write_text(path, text, mode=file_mode(self.run.config.report.publish))
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
        for warning in self.run.warnings:
            write(f"WARNING: {warning}", yellow=True)
        if self.coverage is not None:
            terminalreporter.section("pytest-apimon: coverage")
            write(coverage.render_coverage(self.coverage, self.run.lang).rstrip("\n"))
        alert = self.alert
        if alert is None:
            return
        if self.config.getoption("apimon_dry_run"):
            terminalreporter.section("pytest-apimon: notification (dry run)")
            write(red.text(alert.reason))
            return
        for res in alert.results:
            state = "delivered" if res.delivered else "NOT delivered (kept in the outbox)"
            extra = f", {res.redelivered} from earlier runs" if res.redelivered else ""
            write(f"{res.notifier}: {state}, {res.messages_sent} message(s){extra}")
            for error in res.errors:
                write(f"  {red.text(error)}")
        if alert.reason and self.run.config.notify.enabled:
            write(f"WeCom: {alert.reason}")


def _scan(found: coverage.Scan) -> tuple[list, dict]:
    return found.files, found.services


def dedupe_junit_reruns(config: pytest.Config) -> None:
    """One <testcase> per interface: drop the entries pytest's junitxml opened for earlier attempts.

    pytest-rerunfailures reports every attempt; junitxml then writes each as its own testcase and the
    failed attempts look like passes (rerunfailures#170). The last entry per nodeid is the final outcome.
    Uses junitxml's internals (xml_key, node_reporters_ordered); does nothing if they ever change.
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
