"""The WeCom delivery wired into a run: once per run from the controller, dry-run, outbox across runs."""

from __future__ import annotations

import pytest
from fake_wecom import KEY, FakeWeCom
from localserver import LocalServer, Response
from test_plugin import XDIST, write


def workspace(pytester: pytest.Pytester, srv: LocalServer, fake_url: str, send_on: str = "failure") -> None:
    srv.route("GET", "/shop/ok", lambda r: {"ok": True})
    srv.route("GET", "/shop/boom", lambda r: Response(500, {}, "boom"))
    write(pytester.path, "config.yaml", f"""
        defaults:
          retries: 0
        services:
          shop:
            base_url: {srv.url}/shop
        notify:
          send_on: {send_on}
          wecom:
            - name: ops
              webhook: ${{TEST_WECOM_KEY}}
              base_url: {fake_url}
              mention: {{userids: [zhangsan]}}
    """)
    write(pytester.path, "pool/shop/api.yaml", """
        - {name: 正常, path: /ok}
        - {name: 坏了, path: /boom}
    """)


@pytest.mark.parametrize("extra", XDIST)
def test_report_posted_once_per_run(pytester, local_server, monkeypatch, extra) -> None:
    monkeypatch.setenv("TEST_WECOM_KEY", KEY)
    with FakeWeCom() as fake:
        workspace(pytester, local_server, fake.base_url)
        result = pytester.runpytest("--apimon", "pool", *extra)
        result.assert_outcomes(passed=1, failed=1)
        markdown = [m for m in fake.messages if m.msgtype == "markdown"]
        assert len(markdown) == 2, [m.msgtype for m in fake.messages]  # the first screen, then the details
        first, details = markdown[0].content, markdown[1].content
        assert "坏了" in first and "服务器错误" in first and "<@zhangsan>" in first
        assert len(first.splitlines()) <= 8 and "详情见下一条消息" in first
        assert "复现" in details and "curl" in details and "<@" not in details
        assert KEY not in result.stdout.str()
        result.stdout.fnmatch_lines(["*企业微信：已送达*"])


def test_dry_run_prints_and_sends_nothing(pytester, local_server, monkeypatch) -> None:
    monkeypatch.setenv("TEST_WECOM_KEY", KEY)
    with FakeWeCom() as fake:
        workspace(pytester, local_server, fake.base_url)
        result = pytester.runpytest("--apimon", "pool", "--apimon-dry-run")
        assert fake.messages == []
        result.stdout.fnmatch_lines(["*通知预览（试运行，未发送）*", "*机器人「ops」：Markdown 消息，* 字节*"])
        english = pytester.runpytest("--apimon", "pool", "--apimon-dry-run", "--apimon-lang", "en")
        english.stdout.fnmatch_lines(["*notification (dry run)*", "*robot 'ops'*markdown*bytes*"])


def test_undelivered_report_kept_and_sent_next_run(pytester, local_server, monkeypatch) -> None:
    monkeypatch.setenv("TEST_WECOM_KEY", KEY)
    with FakeWeCom() as fake:
        workspace(pytester, local_server, fake.base_url, send_on="always")
        fake.go_down("refuse")
        result = pytester.runpytest("--apimon", "pool")
        result.stdout.fnmatch_lines(["*企业微信：未送达*"])
        assert list((pytester.path / ".apimon" / "outbox").glob("*.json"))
        fake.come_back()
        pytester.runpytest("--apimon", "pool")
        contents = [m.content for m in fake.messages if m.msgtype == "markdown"]
        # the stored NEW (first screen + details), then this run's reminder-free ONGOING: its first screen only
        assert len(contents) == 3
        # the stored report goes first, marked with its original time
        assert "补发" in contents[0] and len(contents[0].splitlines()) <= 8
        assert not list((pytester.path / ".apimon" / "outbox").glob("*.json"))


def test_send_on_change(pytester, local_server, monkeypatch) -> None:
    monkeypatch.setenv("TEST_WECOM_KEY", KEY)
    with FakeWeCom() as fake:
        workspace(pytester, local_server, fake.base_url, send_on="change")
        pytester.runpytest("--apimon", "pool")
        pytester.runpytest("--apimon", "pool")  # same failure again: no new message
        first_screens = [m for m in fake.messages if m.msgtype == "markdown" and "详情见下一条消息" in m.content]
        assert len(first_screens) == 1


def test_test_webhook_option(pytester, local_server, monkeypatch) -> None:
    monkeypatch.setenv("TEST_WECOM_KEY", KEY)
    with FakeWeCom() as fake:
        workspace(pytester, local_server, fake.base_url)
        result = pytester.runpytest("--apimon-test-webhook")
        assert result.ret == 0
        result.stdout.fnmatch_lines(["*企业微信机器人「ops」：正常*"])
        assert len(fake.messages) == 1


@pytest.mark.parametrize("lang, ok", [("en", "*WeCom robot 'ops': OK*"), ("zh", "*企业微信机器人「ops」：正常*")])
def test_test_webhook_needs_only_the_robot_settings(pytester, monkeypatch, lang, ok) -> None:
    """Issue 20: an unset ${VAR} in a service (set only where the monitor runs) or a mistake in another section
    does not stop --apimon-test-webhook; the report language still applies, and a bad robot is still an error."""
    monkeypatch.delenv("USER_URL", raising=False)
    with FakeWeCom() as fake:
        write(pytester.path, "config.yaml", f"""
            report: {{language: {lang}}}
            services:
              user: {{base_url: "${{USER_URL}}"}}
            breaker: {{failures: 0}}
            notify:
              wecom: [{{name: ops, webhook: {KEY}, base_url: "{fake.base_url}"}}]
        """)
        result = pytester.runpytest("--apimon-test-webhook")
        assert result.ret == 0, result.stderr.str()
        result.stdout.fnmatch_lines([ok])
        assert len(fake.messages) == 1
        # the full run still reports the unset variable
        full = pytester.runpytest("--apimon", ".")
        assert full.ret == pytest.ExitCode.USAGE_ERROR and "USER_URL" in full.stderr.str()
    write(pytester.path, "config.yaml", """
        services:
          user: {base_url: "${USER_URL}"}
        notify:
          wecom: [{name: ops, webhook: "${NO_SUCH_KEY}"}]
    """)
    result = pytester.runpytest("--apimon-test-webhook", f"--apimon-lang={lang}")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*notify.wecom*webhook*NO_SUCH_KEY*"])


def test_bad_webhook_key_is_a_usage_error(pytester, local_server, monkeypatch) -> None:
    monkeypatch.setenv("TEST_WECOM_KEY", "not-a-key")
    workspace(pytester, local_server, "http://127.0.0.1:1")
    result = pytester.runpytest("--apimon", "pool")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*notify.wecom*webhook*"])
