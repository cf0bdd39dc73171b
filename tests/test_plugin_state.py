"""Runs that remember: alert sequence (new, ongoing suppressed, recovered), circuit breaker, storm guard,
and a second run waiting for the state lock — through the real plugin, a local service and a fake robot."""

from __future__ import annotations

import time

import pytest
from fake_wecom import KEY, FakeWeCom
from localserver import LocalServer, Response, closed_port
from test_plugin import write

from pytest_apimon.alerts import Memory
from pytest_apimon.runlock import RunLock


class Toggle:
    def __init__(self, srv: LocalServer, path: str) -> None:
        self.up = True
        srv.route("GET", path, lambda r: {"ok": True} if self.up else Response(500, {}, "down"))


def workspace(pytester, srv: LocalServer, wecom_url: str, extra: str = "") -> None:
    write(pytester.path, "config.yaml", f"""
        defaults:
          retries: 0
        services:
          svc:
            base_url: {srv.url}/svc
        notify:
          send_on: change
          wecom:
            - name: ops
              webhook: {KEY}
              base_url: {wecom_url}
        {extra}
    """)
    write(pytester.path, "pool/svc/api.yaml", """
        - {name: 订单查询, path: /orders}
        - {name: health, path: /health}
    """)


def messages(fake: FakeWeCom) -> list[str]:
    """One text per report: its first screen joined with the details messages that follow it."""
    out: list[str] = []
    for m in fake.messages:
        if m.msgtype != "markdown":
            continue
        if out and m.content.split("\n", 1)[0].endswith("· 详情**"):
            out[-1] += "\n" + m.content
        else:
            out.append(m.content)
    return out


def test_new_ongoing_recovered(pytester, local_server) -> None:
    orders = Toggle(local_server, "/svc/orders")
    Toggle(local_server, "/svc/health")
    with FakeWeCom() as fake:
        workspace(pytester, local_server, fake.base_url)
        pytester.runpytest("--apimon", "pool").assert_outcomes(passed=2)
        assert messages(fake) == []  # all healthy, nothing changed
        orders.up = False
        pytester.runpytest("--apimon", "pool").assert_outcomes(passed=1, failed=1)
        assert len(messages(fake)) == 1 and "新告警" in messages(fake)[0] and "订单查询" in messages(fake)[0]
        pytester.runpytest("--apimon", "pool").assert_outcomes(passed=1, failed=1)
        assert len(messages(fake)) == 1  # ongoing, inside its reminder window: no second alert
        orders.up = True
        pytester.runpytest("--apimon", "pool").assert_outcomes(passed=2)
        recovered = messages(fake)[1]
        assert len(messages(fake)) == 2 and "svc** · 订单查询：已恢复，故障持续 " in recovered


def test_circuit_breaker_open_probe_close(pytester, local_server, monkeypatch) -> None:
    orders = Toggle(local_server, "/svc/orders")
    Toggle(local_server, "/svc/health")
    orders.up = False
    with FakeWeCom() as fake:
        # A cooldown no run can outlast, however slow the machine; the test steps past it on the breaker's clock.
        workspace(pytester, local_server, fake.base_url, extra="breaker: {failures: 2, cooldown: 1h}")
        for _ in range(2):
            pytester.runpytest("--apimon", "pool").assert_outcomes(passed=1, failed=1)
        hits = local_server.count("/svc/orders")
        result = pytester.runpytest("--apimon", "pool", "-rs")
        result.assert_outcomes(passed=1, skipped=1)
        result.stdout.fnmatch_lines(["*熔断中（自 * 起），下次探测 *"])  # pytest's skip reason, in zh
        assert local_server.count("/svc/orders") == hits  # not hammered while open
        result.stdout.fnmatch_lines(["熔断中的接口", "  svc/订单查询 — 熔断自 * 起，下次探测 *"])  # never forgotten
        pytester.runpytest("--apimon", "pool", "--apimon-no-breaker").assert_outcomes(passed=1, failed=1)
        monkeypatch.setattr(Memory, "clock", staticmethod(lambda: time.time() + 3601))
        orders.up = True
        pytester.runpytest("--apimon", "pool").assert_outcomes(passed=2)  # half-open probe succeeds
        assert local_server.count("/svc/orders") == hits + 2  # the --apimon-no-breaker run, then the one probe
        pytester.runpytest("--apimon", "pool").assert_outcomes(passed=2)  # closed


def test_storm_guard_collapses_the_list(pytester, local_server) -> None:
    dead = closed_port()
    with FakeWeCom() as fake:
        write(pytester.path, "config.yaml", f"""
            defaults: {{retries: 0}}
            notify:
              wecom: [{{name: ops, webhook: {KEY}, base_url: "{fake.base_url}"}}]
        """)
        for svc in ("a", "b", "c"):
            docs = "\n".join(f"- {{name: i{i}, url: 'http://127.0.0.1:{dead}/{svc}/{i}'}}" for i in range(4))
            write(pytester.path, f"pool/{svc}/api.yaml", docs)
        pytester.runpytest("--apimon", "pool").assert_outcomes(failed=12)
        text = messages(fake)[0]
    assert "监控机自身的网络或 DNS" in text
    assert "(12 个接口)" in text and text.count("connection refused") <= 2


def test_second_run_waits_for_the_lock_then_exits(pytester, local_server) -> None:
    Toggle(local_server, "/svc/orders")
    Toggle(local_server, "/svc/health")
    with FakeWeCom() as fake:
        workspace(pytester, local_server, fake.base_url, extra="state: {lock_timeout: 1s}")
        with RunLock(pytester.path / ".apimon", timeout=1).acquire():
            result = pytester.runpytest("--apimon", "pool")
        assert result.ret == pytest.ExitCode.USAGE_ERROR
        result.stderr.fnmatch_lines(["*另一次 pytest-apimon 运行（pid *）持有状态锁*"])
        pytester.runpytest("--apimon", "pool").assert_outcomes(passed=2)  # lock released: runs normally


def test_unusable_state_folder_still_checks_everything(pytester, local_server) -> None:
    Toggle(local_server, "/svc/orders")
    Toggle(local_server, "/svc/health")
    with FakeWeCom() as fake:
        workspace(pytester, local_server, fake.base_url)
        (pytester.path / ".apimon").write_text("a file where the state folder should be", encoding="utf-8")
        result = pytester.runpytest("--apimon", "pool")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["*警告：状态目录*不可用*"])


def test_a_subset_run_never_says_all_passed_while_an_unchecked_interface_is_down(pytester, local_server) -> None:
    """Run 1 (the whole pool) announces svc/订单查询 down; run 2 is `-k health` under send_on: always. It used
    to send '【default】接口巡检：全部通过 / 共 1 个接口' while the incident was still open."""
    orders = Toggle(local_server, "/svc/orders")
    Toggle(local_server, "/svc/health")
    orders.up = False
    with FakeWeCom() as fake:
        workspace(pytester, local_server, fake.base_url)
        config = pytester.path / "config.yaml"
        config.write_text(config.read_text(encoding="utf-8").replace("send_on: change", "send_on: always"),
                          encoding="utf-8")
        pytester.runpytest("--apimon", "pool").assert_outcomes(passed=1, failed=1)
        assert "新告警" in messages(fake)[-1] and "订单查询" in messages(fake)[-1]
        pytester.runpytest("--apimon", "pool", "-k", "health").assert_outcomes(passed=1)  # orders not selected
        sent = messages(fake)
        assert len(sent) == 2
        assert "全部通过" not in sent[1] and "订单查询" in sent[1]
        first = sent[1].splitlines()
        assert first[0] == "**【default】接口巡检：所选 1 个接口通过，另有 1 个故障未恢复（本次未检查）**"
        assert "> 故障未恢复（本次未选中，未检查）：svc/订单查询" in first
        orders.up = True
        pytester.runpytest("--apimon", "pool").assert_outcomes(passed=2)  # the whole pool again: recovered
        assert "已恢复" in messages(fake)[-1] and "本次未检查" not in messages(fake)[-1]
