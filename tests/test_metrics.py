"""Prometheus textfile output: parsed back with prometheus_client, escaping, atomic replacement."""

from __future__ import annotations

import json
import os
import stat
import threading
from pathlib import Path

import pytest

from pytest_apimon import atomicfile, metrics
from pytest_apimon.metrics import render_prometheus, write_prometheus
from pytest_apimon.policy import evaluate
from pytest_apimon.policy_settings import parse_policy
from pytest_apimon.report import render_json
from pytest_apimon.results import InterfaceResult, RunResult
from pytest_apimon.state import StateStore

parser = pytest.importorskip("prometheus_client.parser")

T0 = 1_700_000_000.0
NASTY = 'say "hi"\\ back\nnext line · 中文'


def itf(name: str, outcome: str = "passed", *, service: str = "user", module: str = "账户", category: str | None = None,
        status: int | None = 200, elapsed: float | None = 120.0, attempts: int = 1) -> InterfaceResult:
    return InterfaceResult(nodeid=f"p/{service}/{module}.yaml::{name}", service=service, module=module, name=name,
                           outcome=outcome, category=category, status=status, elapsed_ms=elapsed, attempts=attempts)


def sample_run(ts: float = T0) -> RunResult:
    return RunResult(ts, ts + 12.5, "prod", [
        itf("获取用户信息"),
        itf("登录", "failed", category="server_error", status=503, elapsed=40.0),
        itf("慢接口", "failed", service="nurse", module="排班", category="timeout", status=None, elapsed=5000.0,
            attempts=3),
        itf("导出", "skipped", service="report", module="导出", status=None, elapsed=None),
        itf(NASTY, service='svc"\\', module="m\nx"),
    ])


def families(text: str) -> dict[str, list]:
    return {f.name: f.samples for f in parser.text_string_to_metric_families(text)}


def value(samples: list, **labels: str) -> float:
    hits = [s.value for s in samples if all(s.labels.get(k) == v for k, v in labels.items())]
    assert len(hits) == 1, (labels, samples)
    return hits[0]


def test_parses_with_prometheus_client() -> None:
    text = render_prometheus(sample_run())
    got = families(text)
    up = got["apimon_interface_up"]
    assert value(up, interface="获取用户信息", service="user", module="账户", env="prod") == 1
    assert value(up, interface="登录") == 0 and value(up, interface="慢接口") == 0
    assert not [s for s in up if s.labels["interface"] == "导出"]  # a plain skip says nothing about up/down
    assert value(got["apimon_interface_latency_seconds"], interface="慢接口") == 5.0
    assert value(got["apimon_interface_http_status"], interface="登录") == 503
    assert value(got["apimon_interface_attempts"], interface="慢接口") == 3
    info = got["apimon_interface_last_failure_info"]  # a gauge named _info, value 1 (text format 0.0.4)
    assert {(s.labels["interface"], s.labels["category"]) for s in info} == {("登录", "server_error"),
                                                                              ("慢接口", "timeout")}
    assert all(s.value == 1 for s in info)
    runs = got["apimon_run_interfaces"]
    assert [value(runs, result=r) for r in ("passed", "failed", "skipped")] == [2, 2, 1]
    assert value(got["apimon_run_failures"], category="timeout") == 1
    assert value(got["apimon_run_failures"], category="auth") == 0  # every category, so rate() has a series
    assert value(got["apimon_run_duration_seconds"]) == 12.5
    assert value(got["apimon_run_last_timestamp_seconds"]) == T0 + 12.5
    assert value(got["apimon_run_success_ratio"]) == 0.5
    assert "apimon_open_circuits" not in got  # no alert state given
    for line in text.splitlines():
        if line.startswith("# TYPE"):
            assert line.endswith(" gauge")
    assert text.endswith("\n") and "\r" not in text


def test_label_escaping_round_trips() -> None:
    text = render_prometheus(sample_run())
    assert 'interface="say \\"hi\\"\\\\ back\\nnext line · 中文"' in text
    assert len(text.splitlines()) == len([line for line in text.splitlines() if line])  # no raw newline leaked
    sample = next(s for s in families(text)["apimon_interface_up"] if s.labels["service"] == 'svc"\\')
    assert sample.labels == {"env": "prod", "service": 'svc"\\', "module": "m\nx", "interface": NASTY}


def test_duplicate_label_sets_are_written_once() -> None:
    run = RunResult(T0, T0 + 1, "prod", [itf("a"), itf("a", "failed", category="auth", status=401)])
    up = families(render_prometheus(run))["apimon_interface_up"]
    assert [s.value for s in up] == [0]  # the failure wins; node_exporter rejects files with duplicates


def test_state_from_store_and_verdict(tmp_path: Path) -> None:
    settings = parse_policy(None, {"failures": 2, "cooldown": "1h"})
    with StateStore.in_dir(tmp_path) as store:
        verdict = None
        for i in range(3):  # 慢接口 fails three times: down, circuit open
            run = sample_run(T0 + i * 60)
            verdict = evaluate(store.load_states("prod"), run.results, settings, run.finished_at)
            store.record_run(run, verdict.states, verdict.memory, now=run.finished_at)
        healed = RunResult(T0 + 600, T0 + 601, "prod", [itf("登录")])  # a subset run, 登录 passes now
        got = families(render_prometheus(healed, store=store))
        # The last failure comes from the history when this run passed.
        info = got["apimon_interface_last_failure_info"]
        assert [(s.labels["interface"], s.labels["category"]) for s in info] == [("登录", "server_error")]
        assert value(got["apimon_interface_last_failure_timestamp_seconds"], interface="登录") == T0 + 120
        assert value(got["apimon_open_circuits"]) == 2 and value(got["apimon_interfaces_down"]) == 2
        assert value(got["apimon_interface_circuit_open"], interface="登录") == 1
        got = families(render_prometheus(sample_run(T0 + 180), verdict=verdict))
        assert value(got["apimon_interface_down"], interface="慢接口") == 1
        assert value(got["apimon_storm"]) == 0


def test_open_circuit_skip_counts_as_down(tmp_path: Path) -> None:
    settings = parse_policy(None, {"failures": 1, "cooldown": "1h"})
    run = RunResult(T0, T0 + 1, "prod", [itf("a", "failed", category="timeout")])
    verdict = evaluate({}, run.results, settings, run.finished_at)
    skipped = RunResult(T0 + 60, T0 + 61, "prod", [itf("a", "skipped", status=None, elapsed=None)])
    up = families(render_prometheus(skipped, verdict=verdict))["apimon_interface_up"]
    assert [s.value for s in up] == [0]


def test_atomic_write(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "textfile" / "apimon.prom"
    write_prometheus(target, sample_run())
    first = target.read_text(encoding="utf-8")
    assert families(first) and stat.S_IMODE(target.stat().st_mode) == 0o644  # readable by node_exporter
    assert os.listdir(target.parent) == ["apimon.prom"]  # no temporary file left

    # A reader polling during many rewrites only ever sees a complete file.
    stop = threading.Event()
    seen: list[str] = []

    def reader() -> None:
        while not stop.is_set():
            seen.append(target.read_text(encoding="utf-8"))

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        for i in range(50):
            write_prometheus(target, sample_run(T0 + i))
    finally:
        stop.set()
        thread.join()
    assert seen and all(text.endswith("\n") and families(text) for text in set(seen))  # each version once

    # A failure while writing leaves the old file and no temporary file behind.
    before = target.read_text(encoding="utf-8")

    def boom(fd: int) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(atomicfile.os, "fsync", boom)
    with pytest.raises(OSError, match="disk full"):
        write_prometheus(target, sample_run(T0 + 999))
    assert target.read_text(encoding="utf-8") == before
    assert os.listdir(target.parent) == ["apimon.prom"]


def test_availability_windows_from_the_rollups(tmp_path: Path) -> None:
    """Daily runs over 40 days (raw tier 48 h): 24h/7d/30d/90d/1y ratios count the rolled-up checks."""
    day = 86400.0
    with StateStore.in_dir(tmp_path) as store:
        for i in range(40):  # 登录 fails on every 4th day
            run = RunResult(T0 + i * day, T0 + i * day + 5, "prod", [
                itf("登录", "failed" if i % 4 == 0 else "passed", category="server_error"),
                itf("排班", service="nurse", module="排班")])
            store.record_run(run, {}, now=run.finished_at)
        assert store.conn.execute("SELECT COUNT(*) FROM runs").fetchone()[0] <= 3  # the rest is rolled up
        last = RunResult(T0 + 39 * day, T0 + 39 * day + 5, "prod", run.results)
        got = families(render_prometheus(last, store=store))
    ratio = got["apimon_interface_availability_ratio"]
    checks = got["apimon_interface_checks"]
    assert value(checks, interface="登录", window="7d") in (7, 8)  # whole hours: 7 days + the run on the edge
    assert value(checks, interface="登录", window="90d") == 40 == value(checks, interface="登录", window="1y")
    assert value(ratio, interface="登录", window="1y") == 30 / 40
    assert value(ratio, interface="排班", window="30d") == 1
    assert value(got["apimon_service_availability_ratio"], service="user", window="90d") == 30 / 40


def test_metrics_and_status_page_ask_the_same_windows() -> None:
    """So state.availability_windows computes them once per run (the page, then the metrics)."""
    from pytest_apimon import statuspage

    assert metrics._STATUS_WINDOWS == statuspage.WINDOWS


def test_every_series_once_and_values_round_trip_for_any_names() -> None:
    """prometheus_client writes, its parser reads back: any label text, one series per label set, exact values
    (fractional Unix timestamps, sub-millisecond latencies)."""
    hypothesis = pytest.importorskip("hypothesis")
    st = hypothesis.strategies
    text_st = st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=12)

    @hypothesis.settings(max_examples=60, deadline=None)
    @hypothesis.given(names=st.lists(st.tuples(text_st, text_st, text_st), min_size=1, max_size=6),
                      ts=st.floats(min_value=0, max_value=4e9), ms=st.floats(min_value=0, max_value=1e6))
    def check(names: list[tuple[str, str, str]], ts: float, ms: float) -> None:
        run = RunResult(ts, ts + 1, "prod", [itf(n, "failed" if i % 2 else "passed", service=s, module=m,
                                                 category="timeout", elapsed=ms) for i, (s, m, n) in enumerate(names)])
        got = list(parser.text_string_to_metric_families(render_prometheus(run)))
        for family in got:
            keys = [tuple(sorted(s.labels.items())) for s in family.samples]
            assert len(keys) == len(set(keys)), family.name
        by_name = {f.name: f.samples for f in got}
        assert {(s.labels["service"], s.labels["module"], s.labels["interface"])
                for s in by_name["apimon_interface_up"]} == set(names)
        assert {s.value for s in by_name["apimon_interface_latency_seconds"]} == {ms / 1000}
        assert by_name["apimon_run_last_timestamp_seconds"][0].value == ts + 1

    check()


def test_cert_expiry_gauge_per_origin_and_service() -> None:
    shop, pay = "https://shop.example.com:443", "https://pay.example.com:443"
    results = [itf("a"), itf("b"), itf("c", service="pay"), itf("plain")]
    results[0].certificates = {shop: T0 + 5 * 86400}
    results[1].certificates = {shop: T0 + 4 * 86400, pay: T0 + 90 * 86400}  # the sooner of two wins
    results[2].certificates = {pay: T0 + 90 * 86400}
    text = render_prometheus(RunResult(T0, T0 + 1, "prod", results))
    got = {(s.labels["origin"], s.labels["service"]): s.value
           for family in parser.text_string_to_metric_families(text)
           if family.name == "apimon_cert_expiry_timestamp_seconds" for s in family.samples}
    assert got == {(shop, "user"): T0 + 4 * 86400, (pay, "user"): T0 + 90 * 86400, (pay, "pay"): T0 + 90 * 86400}
    assert "apimon_cert_expiry_timestamp_seconds" not in render_prometheus(sample_run())  # no HTTPS, no family


def test_run_totals_are_the_json_stats() -> None:
    """apimon_run_* is the JSON report's `stats` (one source: report.compute_stats): an interface skipped behind
    an open circuit, or not checked while last known down, is down — failed, in its category, in the success
    ratio — in both; a not-checked one last known up and a plain skip are skipped in both."""
    run = sample_run()
    run.results += [
        InterfaceResult(nodeid="p/user/账户.yaml::熔断", service="user", module="账户", name="熔断", outcome="skipped",
                        category="server_error", circuit_open=True, reason="circuit open"),
        InterfaceResult(nodeid="p/user/账户.yaml::未检查坏", service="user", module="账户", name="未检查坏",
                        outcome="skipped", unchecked=True, known_down=True, reason="worker crashed"),
        InterfaceResult(nodeid="p/user/账户.yaml::未检查好", service="user", module="账户", name="未检查好",
                        outcome="skipped", unchecked=True, reason="worker crashed"),
    ]
    stats = json.loads(render_json(run))["stats"]
    assert (stats["passed"], stats["failed"], stats["skipped"]) == (2, 4, 2)  # the scenario holds
    got = families(render_prometheus(run))
    runs = got["apimon_run_interfaces"]
    assert {r: value(runs, result=r) for r in ("passed", "failed", "skipped")} == {
        r: stats[r] for r in ("passed", "failed", "skipped")}
    assert value(got["apimon_run_success_ratio"]) == pytest.approx(stats["success_rate"])
    assert value(got["apimon_run_unchecked_interfaces"]) == stats["unchecked"] == 2
    failures = {s.labels["category"]: s.value for s in got["apimon_run_failures"]}
    assert {c: n for c, n in failures.items() if n} == stats["by_category"]
    assert sum(failures.values()) == stats["failed"]


def test_run_success_ratio_when_everything_known_down_was_skipped() -> None:
    """Nothing executed but one interface is down behind an open circuit: ratio 0 (the JSON's 0.0), not absent."""
    run = RunResult(T0, T0 + 1, "prod", [InterfaceResult(nodeid="p/a.yaml::x", service="a", module="a", name="x",
                                                         outcome="skipped", circuit_open=True)])
    got = families(render_prometheus(run))
    assert value(got["apimon_run_success_ratio"]) == 0
    assert value(got["apimon_run_interfaces"], result="failed") == 1
