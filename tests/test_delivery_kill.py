"""Write-ahead delivery (issue 14, requirement 1): a run killed at any point of its delivery loses nothing and
the next run delivers exactly once. The fake WeCom holds a chosen request so the kill lands deterministically
at that point of the delivery (no sleeps)."""

from __future__ import annotations

import os
import signal
import sys

import pytest
from fake_wecom import KEY, FakeWeCom, reports
from localserver import LocalServer, Response
from test_plugin import write

from pytest_apimon.alerts import Memory, finish
from pytest_apimon.config import load_config
from pytest_apimon.notify.outbox import Outbox
from pytest_apimon.redact import Redactor
from pytest_apimon.results import InterfaceResult, RunResult
from pytest_apimon.state import StateStore


def workspace(pytester: pytest.Pytester, srv: LocalServer, fake: FakeWeCom, failing: int = 1,
              max_messages: int = 10) -> None:
    srv.route("GET", "/shop/ok", lambda r: {"ok": True})
    srv.route("GET", "/shop/boom", lambda r: Response(500, {}, "boom " * 40))
    write(pytester.path, "config.yaml", f"""
        defaults: {{retries: 0}}
        services:
          shop: {{base_url: "{srv.url}/shop"}}
        notify:
          send_on: change
          max_messages: {max_messages}
          max_wait: 1s
          wecom: [{{name: ops, webhook: {KEY}, base_url: "{fake.base_url}"}}]
    """)
    docs = ["- {name: 正常, path: /ok}"] + [f"- {{name: 坏了{i}, path: /boom}}" for i in range(failing)]
    write(pytester.path, "pool/shop/api.yaml", "\n".join(docs))


def markdown(fake: FakeWeCom) -> list[str]:
    return reports(fake)  # one text per report: its first screen and details


def raw(fake: FakeWeCom) -> list[str]:
    return [m.content for m in fake.messages if m.msgtype == "markdown"]


def run_killed(pytester: pytest.Pytester, fake: FakeWeCom, sig: int, skip: int = 0, extra: tuple = ()) -> None:
    """One run in a subprocess, killed with `sig` while WeCom holds its (skip+1)-th send unanswered."""
    fake.hold_next(skip=skip)
    # An xdist worker (execnet) ignores SIGINT and a child would inherit that: give it the default, as a
    # terminal's Ctrl-C would find it.
    # Its temp folders (an xdist run's worker folder) inside the test's own: a killed controller cannot remove
    # them (docs/scaling.md), and the suite must not leave them in the machine's temp folder.
    temp = pytester.path / "tmp"
    temp.mkdir(exist_ok=True)
    saved = os.environ.get("TMPDIR")
    os.environ["TMPDIR"] = str(temp)  # pytester.popen copies this process's environment (and sets its own env)
    try:
        proc = pytester.popen([sys.executable, "-m", "pytest", "--apimon", "pool", "-p", "no:cacheprovider", *extra],
                              stdout=sys.stdout, stderr=sys.stderr,
                              preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    finally:
        if saved is None:
            del os.environ["TMPDIR"]
        else:
            os.environ["TMPDIR"] = saved
    try:
        assert fake.held.wait(120), "the run never reached WeCom"
        proc.send_signal(sig)
        proc.wait(60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        fake.release(accept=False)  # the held request never reached WeCom's handler


@pytest.mark.parametrize(("sig", "extra"), [(signal.SIGKILL, ()), (signal.SIGTERM, ()), (signal.SIGINT, ()),
                                             (signal.SIGKILL, ("-n", "2"))])
def test_killed_during_the_send_next_run_delivers_exactly_once(pytester, local_server, sig, extra) -> None:
    with FakeWeCom() as fake:
        workspace(pytester, local_server, fake)
        run_killed(pytester, fake, sig, extra=extra)
        assert markdown(fake) == []
        assert len(Outbox(pytester.path / ".apimon" / "outbox")) == 1  # written before the first attempt
        pytester.runpytest_subprocess("--apimon", "pool")  # same failure: nothing new of its own
        pytester.runpytest_subprocess("--apimon", "pool")
        sent = markdown(fake)
        assert len(sent) == 1, sent
        assert "坏了0" in sent[0] and "补发" in sent[0]
        assert len(Outbox(pytester.path / ".apimon" / "outbox")) == 0


def test_killed_in_the_middle_of_a_long_report_resumes_after_the_last_accepted_part(pytester,
                                                                                   local_server) -> None:
    with FakeWeCom() as fake:
        workspace(pytester, local_server, fake, failing=30)
        run_killed(pytester, fake, signal.SIGKILL, skip=1)  # the first screen accepted, the details' part 1 held
        first = raw(fake)
        assert len(first) == 1 and "详情见下一条消息" in first[0]
        pytester.runpytest_subprocess("--apimon", "pool")
        parts = raw(fake)
        assert "(1/" in parts[1]
        total = int(parts[1].split("(1/")[1].split(")")[0])
        assert len(parts) == 1 + total, [p[:40] for p in parts]  # the first screen and every part exactly once
        for i, part in enumerate(parts[2:], 2):
            assert f"({i}/{total})" in part


def test_killed_while_resending_the_backlog_resends_it_once(pytester, local_server) -> None:
    with FakeWeCom() as fake:
        workspace(pytester, local_server, fake)
        fake.go_down("refuse")
        pytester.runpytest_subprocess("--apimon", "pool")  # the report stays in the outbox
        fake.come_back()
        run_killed(pytester, fake, signal.SIGKILL)  # killed while WeCom holds the resend
        assert markdown(fake) == []
        pytester.runpytest_subprocess("--apimon", "pool")
        sent = markdown(fake)
        assert len(sent) == 1 and sent[0].count("补发") == 1 and "坏了0" in sent[0]


def _memory(config):
    return Memory.open(config)


def test_killed_before_the_run_was_recorded_announces_once(tmp_path, monkeypatch) -> None:
    with FakeWeCom() as fake:
        (tmp_path / "config.yaml").write_text(
            f"notify: {{send_on: change, wecom: [{{name: ops, webhook: {KEY}, base_url: '{fake.base_url}'}}]}}\n",
            encoding="utf-8")
        config = load_config(tmp_path / "config.yaml")
        bad = InterfaceResult(nodeid="p/shop/a.yaml::x", service="shop", module="a", name="x", outcome="failed",
                              category="server_error", status=500)

        def one_run(t: float) -> None:
            memory = _memory(config)
            try:
                finish(RunResult(t, t + 1, config.env, [bad]), config, "zh", Redactor(), memory)
            finally:
                memory.close()

        def killed(*args, **kwargs):
            raise KeyboardInterrupt  # the process dies after the outbox write, before the state commit

        with monkeypatch.context() as m:
            m.setattr(StateStore, "record_run", killed)
            with pytest.raises(KeyboardInterrupt):
                one_run(1000.0)
        assert len(Outbox(config.state_path / "outbox")) == 1 and fake.messages == []
        one_run(2000.0)  # the stale entry is discarded; the still-new problem is announced by this run
        one_run(3000.0)
        sent = markdown(fake)
        assert len(sent) == 1 and "新告警" in sent[0]
        assert "补发" not in sent[0]
