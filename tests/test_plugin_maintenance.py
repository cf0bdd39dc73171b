"""Maintenance windows and the SLOW alert through the real plugin (with and without xdist), a local service and
the fake WeCom robot. Time is moved on the alert memory's clock (alerts.Memory.clock), never slept through."""

from __future__ import annotations

import json
import time
from datetime import datetime, timezone

import pytest
from fake_wecom import KEY, FakeWeCom
from localserver import LocalServer
from test_plugin import XDIST, write
from test_plugin_state import Toggle, messages, workspace

from pytest_apimon.alerts import Memory


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, timezone.utc).isoformat(timespec="seconds")


def _window(now: float) -> str:
    """A one-off window from an hour ago to an hour from now: it spans any run of this test."""
    return f"""
        report:
          markdown: report.md
          json: report.json
          html: status.html
        maintenance:
          - name: 机房割接
            start: "{_iso(now - 3600)}"
            end: "{_iso(now + 3600)}"
    """


@pytest.mark.parametrize("extra", XDIST)
def test_window_spanning_the_run_holds_alerts_and_the_outage_is_new_after_it(
        pytester, local_server: LocalServer, monkeypatch, extra: list[str]) -> None:
    orders = Toggle(local_server, "/svc/orders")
    Toggle(local_server, "/svc/health")
    orders.up = False
    with FakeWeCom() as fake:
        workspace(pytester, local_server, fake.base_url, extra=_window(time.time()))
        for run in range(2):
            result = pytester.runpytest("--apimon", "pool", *extra)
            result.assert_outcomes(passed=1, failed=1)  # still checked and recorded
            assert local_server.count("/svc/orders") == run + 1
            result.stdout.fnmatch_lines(["*维护中：svc（机房割接（* – *））— 照常检查和记录，不告警*"])
            assert messages(fake) == []  # no NEW, no mention, nothing
            # held, not "nothing new": the reason says the window holds the alerts (issue 20)
            result.stdout.fnmatch_lines(["*未发送（维护中，告警暂停：svc）*"])
            assert "没有变化" not in result.stdout.str()
        report = (pytester.path / "report.md").read_text(encoding="utf-8")
        assert "维护中：svc（机房割接" in report and "其中 1 个维护中（不告警）" in report
        doc = json.loads((pytester.path / "report.json").read_text(encoding="utf-8"))
        assert list(doc["maintenance"]) == ["svc"]
        assert {r["name"]: bool(r["maintenance"]) for r in doc["results"]} == {"订单查询": True, "health": True}
        page = (pytester.path / "status.html").read_text(encoding="utf-8")
        assert 'class="banner b-maint"' in page and 'class="pill maint"' in page and "维护中" in page

        # Two hours later on the memory's clock: the window is over and the interface is still down.
        monkeypatch.setattr(Memory, "clock", staticmethod(lambda: time.time() + 7200))
        pytester.runpytest("--apimon", "pool", *extra).assert_outcomes(passed=1, failed=1)
        sent = messages(fake)
        assert len(sent) == 1 and "新告警" in sent[0] and "订单查询" in sent[0] and "维护中" not in sent[0]
        pytester.runpytest("--apimon", "pool", *extra).assert_outcomes(passed=1, failed=1)
        assert len(messages(fake)) == 1  # ongoing, inside its reminder window


def test_failed_and_recovered_inside_the_window_is_never_announced(pytester, local_server, monkeypatch) -> None:
    orders = Toggle(local_server, "/svc/orders")
    Toggle(local_server, "/svc/health")
    with FakeWeCom() as fake:
        workspace(pytester, local_server, fake.base_url, extra=_window(time.time()))
        orders.up = False
        pytester.runpytest("--apimon", "pool").assert_outcomes(passed=1, failed=1)
        orders.up = True
        pytester.runpytest("--apimon", "pool").assert_outcomes(passed=2)
        monkeypatch.setattr(Memory, "clock", staticmethod(lambda: time.time() + 7200))
        pytester.runpytest("--apimon", "pool").assert_outcomes(passed=2)
        assert messages(fake) == []  # no RECOVERED for something never announced


def _slow_pool(pytester, warn_ms: float) -> None:
    write(pytester.path, "pool/svc/api.yaml", f"""
        - {{name: 订单查询, path: /orders, expect: {{warn_ms: {warn_ms}}}}}
        - {{name: health, path: /health}}
    """)


def test_slow_alert_after_threshold_once_never_mentions(pytester, local_server) -> None:
    extra: list[str] = []  # the policy runs on the controller; the xdist path is covered by the test above
    Toggle(local_server, "/svc/orders")
    Toggle(local_server, "/svc/health")
    with FakeWeCom() as fake:
        write(pytester.path, "config.yaml", f"""
            defaults: {{retries: 0}}
            alerts: {{slow_threshold: 2, normal_threshold: 1}}
            services:
              svc: {{base_url: "{local_server.url}/svc", owner: [zhangsan]}}
            notify:
              wecom: [{{name: ops, webhook: {KEY}, base_url: "{fake.base_url}"}}]
        """)
        _slow_pool(pytester, 0.001)  # every answer is slower than a microsecond: slow without a sleep
        pytester.runpytest("--apimon", "pool", *extra).assert_outcomes(passed=2)
        assert messages(fake) == []  # one slow run is not a trend
        pytester.runpytest("--apimon", "pool", *extra).assert_outcomes(passed=2)
        sent = messages(fake)
        assert len(sent) == 1 and "响应慢" in sent[0] and "svc/订单查询" in sent[0]
        assert all("<@" not in m.content and not m.payload.get("text", {}).get("mentioned_list")
                   for m in fake.messages)  # a warning pages nobody
        pytester.runpytest("--apimon", "pool", *extra).assert_outcomes(passed=2)
        assert len(messages(fake)) == 1  # sent once
        _slow_pool(pytester, 60_000)
        pytester.runpytest("--apimon", "pool", *extra).assert_outcomes(passed=2)
        assert len(messages(fake)) == 2 and "响应恢复正常" in messages(fake)[1]


def test_down_inside_the_window_behind_an_open_circuit_is_announced_after_it(
        pytester, local_server: LocalServer, monkeypatch) -> None:
    """The circuit opens on the first failure (breaker.failures 1), the interface counts as down only at the
    second (failure_threshold 2), checked inside the window. The first run after the window skips it (its
    circuit still cooling down): the alert policy said nothing until the next half-open probe, and only the
    robot's safety net (alerts._untold) sent it, headed as a digest of problems still open that no one had
    heard of."""
    orders = Toggle(local_server, "/svc/orders")
    Toggle(local_server, "/svc/health")
    orders.up = False
    t = time.time()
    with FakeWeCom() as fake:
        workspace(pytester, local_server, fake.base_url, extra=f"""
        alerts: {{failure_threshold: 2}}
        breaker: {{failures: 1, cooldown: 10h}}
        maintenance:
          - name: 机房割接
            start: "{_iso(t + 3600)}"
            end: "{_iso(t + 7200)}"
        """)
        pytester.runpytest("--apimon", "pool").assert_outcomes(passed=1, failed=1)  # pending, circuit opens
        monkeypatch.setattr(Memory, "clock", staticmethod(lambda: time.time() + 5400))  # inside the window
        pytester.runpytest("--apimon", "pool", "--apimon-no-breaker").assert_outcomes(passed=1, failed=1)
        assert messages(fake) == []  # down now, held by the window
        monkeypatch.setattr(Memory, "clock", staticmethod(lambda: time.time() + 9000))  # over, still cooling
        result = pytester.runpytest("--apimon", "pool")
        result.assert_outcomes(passed=1, skipped=1)
        assert local_server.count("/svc/orders") == 2
        sent = messages(fake)
        assert len(sent) == 1 and "新告警" in sent[0] and "订单查询" in sent[0], sent
        assert "全部通过" not in sent[0] and "维护中" not in sent[0]
        # Told as the new problem it is, not as a summary of problems still open (which no one had heard of).
        assert "**触发原因**：新问题（1）" in sent[0] and "仍未恢复" not in sent[0]
