"""Interfaces an xdist run did not check (its worker died and was not replaced: `unchecked`) are neither up nor
down this run, but what was down before is still down as far as anyone knows. Every output that lists what is
down right now keeps it there (JSON `down_now`, Markdown report, status page, WeCom, Prometheus textfile), the
textfile counts the run's unchecked interfaces and never reports one as up, and "monitoring incomplete" is told
to the group as a lost shard is: announced, reminded every `remind_every`, its end announced — not every run.
docs/scaling.md "When a worker dies", docs/state-and-alerts.md."""

from __future__ import annotations

import json
import re
import sqlite3

import crashkit
import pytest
from fake_wecom import KEY, FakeWeCom, reports
from localserver import LocalServer, Response
from test_plugin import write

from pytest_apimon.state import StateStore

N = 12


def workspace(pytester: pytest.Pytester, srv: LocalServer, wecom: str, *, down: set[int],
              send_on: str = "change") -> None:
    for i in range(N):
        srv.route("GET", f"/svc/i{i}", lambda r, i=i: Response(500, {}, "boom") if i in down else {"ok": True})
    write(pytester.path, "config.yaml", f"""
        defaults:
          retries: 0
        services:
          svc:
            base_url: {srv.url}/svc
        alerts:
          remind_every: 1h
        report:
          language: zh
          json: results.json
          markdown: report.md
          html: status.html
          prometheus: apimon.prom
        notify:
          send_on: {send_on}
          wecom:
            - name: ops
              webhook: {KEY}
              base_url: {wecom}
    """)
    write(pytester.path, "pool/svc/api.json", json.dumps([{"name": f"i{i:02d}", "path": f"/i{i}"} for i in range(N)]))


KILL_GW0 = """
    from killworker import die_alone
    def pytest_runtest_call(item):
        if getattr(item.config, "workerinput", {}).get("workerid") == "gw0":
            die_alone(item)
"""


def run(pytester: pytest.Pytester, *, crash: bool) -> pytest.RunResult:
    """One run; with `crash`, worker gw0 dies on its first item and is not replaced (-n 2)."""
    crashkit.install(pytester)
    pytester.makeconftest(KILL_GW0 if crash else "")
    if not crash:
        return pytester.runpytest_subprocess("--apimon", "pool", "-p", "no:cacheprovider")
    return pytester.runpytest_subprocess("--apimon", "pool", "-p", "no:cacheprovider", "-n", "2",
                                         "--max-worker-restart", "0")


def doc(pytester: pytest.Pytester) -> dict:
    return json.loads((pytester.path / "results.json").read_text(encoding="utf-8"))


def samples(text: str, name: str) -> dict[str, float]:
    """{label text: value} of one family in a Prometheus textfile."""
    return {m.group(1): float(m.group(2)) for m in re.finditer(rf"^{name}\{{(.*)\}} (\S+)$", text, re.M)}


def crashed_after_outage(pytester: pytest.Pytester, srv: LocalServer, fake: FakeWeCom) -> tuple[dict, dict]:
    """Even-numbered interfaces are down and announced; then everything answers 200 but gw0 dies and is not
    replaced. Returns (the stored states before the crash run, the crash run's JSON)."""
    workspace(pytester, srv, fake.base_url, down={i for i in range(N) if i % 2 == 0})
    assert run(pytester, crash=False).ret == 1
    with StateStore.in_dir(pytester.path / ".apimon") as store:
        before = store.load_states("default")
    workspace(pytester, srv, fake.base_url, down=set())
    assert run(pytester, crash=True).ret == 2
    results = doc(pytester)
    unchecked = [r for r in results["results"] if r["unchecked"]]
    was_down = [r for r in unchecked if before[r["key"]].status == "down"]
    was_up = [r for r in unchecked if before[r["key"]].status == "up"]
    assert was_down and was_up, [(r["key"], before[r["key"]].status) for r in unchecked]  # the scenario holds
    return before, results


def test_a_not_checked_interface_last_known_down_is_still_listed_as_down(pytester: pytest.Pytester,
                                                                          local_server: LocalServer) -> None:
    with FakeWeCom() as fake:
        before, results = crashed_after_outage(pytester, local_server, fake)
        sent = reports(fake)
    unchecked = [r for r in results["results"] if r["unchecked"]]
    down = {r["key"] for r in unchecked if before[r["key"]].status == "down"}
    up = {r["key"] for r in unchecked} - down
    # JSON: down_now keeps what was down; the record says so; the counts still add up.
    assert down <= set(results["down_now"]) and not up & set(results["down_now"]), results["down_now"]
    for r in unchecked:
        assert r["down"] == (r["key"] in down) == r["known_down"], r
        assert r["outcome"] == "skipped"
    stats = results["stats"]
    assert stats["passed"] + stats["failed"] + stats["skipped"] == N
    assert stats["unchecked"] == len(unchecked) and stats["unchecked_down"] == len(down)
    assert stats["failed"] >= len(down)
    # Markdown report and the WeCom message list each of them among the problems, with "last known down".
    markdown = (pytester.path / "report.md").read_text(encoding="utf-8")
    message = sent[-1]
    # Every first screen says why it came: the outage (NEW, counted: the lines under it name them), then the
    # incomplete run.
    assert sent[0].splitlines()[2] == f"**触发原因**：新问题（{N // 2}）", sent[0]
    assert message.splitlines()[2].startswith("**触发原因**：监控不完整"), message
    assert "全部通过" not in markdown and "全部通过" not in message
    for key in down:
        name = key.split("/", 1)[1]
        assert re.search(rf"{name}\*\* · <font[^>]*>未检查，最后已知为故障<", markdown), (name, markdown)
        assert f"**svc** · {name}：" in message, (name, message)
    for key in up:  # last known up: not checked, not listed as a problem
        assert f"**svc** · {key.split('/', 1)[1]}：" not in message
    # Status page: the last run's "failed" counts them; the page never says all is well.
    page = (pytester.path / "status.html").read_text(encoding="utf-8")
    assert "全部正常" not in page and f"监控不完整：{len(unchecked)} 个接口未检查" in page
    # Their alert state is untouched.
    with StateStore.in_dir(pytester.path / ".apimon") as store:
        after = store.load_states("default")
    for r in unchecked:
        assert after[r["key"]] == before[r["key"]]


def test_textfile_counts_unchecked_interfaces_and_never_says_up(pytester: pytest.Pytester,
                                                                local_server: LocalServer) -> None:
    with FakeWeCom() as fake:
        before, results = crashed_after_outage(pytester, local_server, fake)
    text = (pytester.path / "apimon.prom").read_text(encoding="utf-8")
    unchecked = {r["name"]: r for r in results["results"] if r["unchecked"]}
    assert samples(text, "apimon_run_unchecked_interfaces") == {'env="default"': len(unchecked)}
    # The run's totals are the JSON's: a not-checked interface last known down is failed (down) in both.
    stats = results["stats"]
    assert samples(text, "apimon_run_interfaces") == {f'env="default",result="{r}"': stats[r]
                                                      for r in ("failed", "passed", "skipped")}
    assert samples(text, "apimon_run_success_ratio") == {'env="default"': pytest.approx(stats["success_rate"])}
    up = samples(text, "apimon_interface_up")
    flags = samples(text, "apimon_interface_unchecked")
    for r in results["results"]:
        labels = f'env="default",interface="{r["name"]}",module="api",service="svc"'
        assert flags[labels] == (1 if r["unchecked"] else 0)
        if not r["unchecked"]:
            assert up[labels] == (1 if r["outcome"] == "passed" else 0)
        elif before[r["key"]].status == "down":
            assert up[labels] == 0  # still down as far as we know, never a false 1
        else:
            assert labels not in up  # unknown: no sample (the series goes stale), never a 1 nobody verified
    # A complete run: 0 unchecked.
    with FakeWeCom() as fake:
        workspace(pytester, local_server, fake.base_url, down=set())
        assert run(pytester, crash=False).ret == 0
    text = (pytester.path / "apimon.prom").read_text(encoding="utf-8")
    assert samples(text, "apimon_run_unchecked_interfaces") == {'env="default"': 0}


def _step_past_reminder(pytester: pytest.Pytester) -> None:
    """Move the remembered last announcement of the incomplete runs back 2 h (remind_every is 1 h): the
    reminder interval is stepped over without a clock or a sleep."""
    db = sqlite3.connect(pytester.path / ".apimon" / "state.db")
    try:
        (value,) = db.execute("SELECT value FROM meta WHERE name = 'run_memory'").fetchone()
        memory = json.loads(value)
        assert memory["unchecked_last_alert_at"] is not None
        memory["unchecked_last_alert_at"] -= 7200
        db.execute("UPDATE meta SET value = ? WHERE name = 'run_memory'", (json.dumps(memory),))
        db.commit()
    finally:
        db.close()


def test_incomplete_monitoring_is_announced_reminded_and_its_end_told(pytester: pytest.Pytester,
                                                                      local_server: LocalServer) -> None:
    """send_on: change. The lost worker is announced once, not on every run; reminded after remind_every; the
    run that checks everything again says so once; then silence."""
    with FakeWeCom() as fake:
        workspace(pytester, local_server, fake.base_url, down=set())
        assert run(pytester, crash=False).ret == 0
        assert reports(fake) == []  # healthy: nothing to say
        assert run(pytester, crash=True).ret == 2
        sent = reports(fake)
        assert len(sent) == 1 and "监控不完整" in sent[0].splitlines()[0], sent
        # Why, on the first screen (the item gw0 died on is a failure of its own, retries: 0).
        assert sent[0].splitlines()[2].startswith("**触发原因**：监控不完整"), sent[0]
        result = run(pytester, crash=True)  # the same blind spot again, inside remind_every: quiet
        assert result.ret == 2
        assert len(reports(fake)) == 1, reports(fake)[1:]
        result.stdout.fnmatch_lines(["*个接口仍未检查（已通知过）*"])
        _step_past_reminder(pytester)
        assert run(pytester, crash=True).ret == 2
        sent = reports(fake)
        assert len(sent) == 2 and "监控不完整" in sent[1].splitlines()[0]
        assert "（提醒）" in sent[1], sent[1]
        assert sent[1].splitlines()[2].startswith("**触发原因**：提醒：监控仍不完整"), sent[1]
        assert run(pytester, crash=False).ret == 0  # every interface checked again: told once
        sent = reports(fake)
        assert len(sent) == 3 and sent[2].splitlines()[0] == "**【default】接口巡检：监控已恢复完整**", sent[2]
        assert "所有接口都已重新检查" in sent[2]
        assert sent[2].splitlines()[2].startswith("**触发原因**：监控已恢复完整"), sent[2]
        assert run(pytester, crash=False).ret == 0
        assert len(reports(fake)) == 3


def test_incomplete_monitoring_is_a_digest_with_send_on_failure(pytester: pytest.Pytester,
                                                                 local_server: LocalServer) -> None:
    """send_on: failure sends every run while something is wrong: the still-incomplete run is at least the
    short digest, as a still-missing shard is (docs/scaling.md)."""
    with FakeWeCom() as fake:
        workspace(pytester, local_server, fake.base_url, down=set(), send_on="failure")
        assert run(pytester, crash=True).ret == 2
        assert run(pytester, crash=True).ret == 2
        sent = reports(fake)
    assert len(sent) == 2 and all("监控不完整" in s.splitlines()[0] for s in sent), sent
    assert "起监控不完整）" in sent[1]  # since when: the second incomplete run in a row
