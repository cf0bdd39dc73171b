"""When xdist may not replace a crashed worker (--max-worker-restart reached; 0 disables replacement), the items
that worker still held are never run. The run must not then report fewer interfaces as if nothing were missing:
every collected interface appears in every output, the ones never checked as "not checked" (skipped,
`unchecked`, with the reason), the report and the WeCom message say the monitoring is incomplete, the exit code
is 2, and the alert memory neither alerts nor resolves what was not checked. Found by the red team; not a
regression of the 2026-11-29 changes (30690f5 does the same). docs/scaling.md "When a worker dies"."""

from __future__ import annotations

import json

import crashkit
import pytest
from fake_wecom import KEY, FakeWeCom, reports
from localserver import LocalServer, Response
from test_plugin import write

from pytest_apimon.alerts import title
from pytest_apimon.categories import Outcome
from pytest_apimon.report import compute_stats, render_markdown, render_terminal
from pytest_apimon.results import InterfaceResult, RunResult
from pytest_apimon.state import StateStore

N = 12


def workspace(pytester: pytest.Pytester, srv: LocalServer, wecom: str, *, retries: int, down: set[int],
              lang: str = "zh") -> None:
    for i in range(N):
        srv.route("GET", f"/svc/i{i}", lambda r, i=i: Response(500, {}, "boom") if i in down else {"ok": True})
    write(pytester.path, "config.yaml", f"""
        defaults:
          retries: {retries}
          retry_delay: 0.01
        services:
          svc:
            base_url: {srv.url}/svc
        report:
          language: {lang}
        notify:
          send_on: change
          wecom:
            - name: ops
              webhook: {KEY}
              base_url: {wecom}
    """)
    write(pytester.path, "pool/svc/api.json", json.dumps([{"name": f"i{i:02d}", "path": f"/i{i}"} for i in range(N)]))


def kill(pytester: pytest.Pytester, condition: str) -> None:
    """A conftest that kills the xdist worker (os._exit) whenever `condition` (on `item`, `worker`) holds, from
    the item's own thread once the worker's Runner is idle (crashkit: the death is that item's)."""
    crashkit.install(pytester)
    pytester.makeconftest(f"""
        import os
        from killworker import die_alone

        def pytest_runtest_call(item):
            worker = getattr(item.config, "workerinput", {{}}).get("workerid")
            if worker is not None and ({condition}):
                die_alone(item)
    """)


def results(pytester: pytest.Pytester, name: str = "results.json") -> dict:
    return json.loads((pytester.path / name).read_text(encoding="utf-8"))


def check_incomplete(doc: dict) -> list[dict]:
    """Every collected interface is in the JSON, the never-checked ones as `unchecked` skips with the reason."""
    stats = doc["stats"]
    assert stats["total"] == N == len(doc["results"]), (stats, sorted(r["name"] for r in doc["results"]))
    assert stats["passed"] + stats["failed"] + stats["skipped"] == N
    unchecked = [r for r in doc["results"] if r["unchecked"]]
    assert unchecked and stats["unchecked"] == len(unchecked)
    for r in unchecked:
        # Not checked is neither up nor down; one whose stored state is down stays down (known_down, is_down)
        assert r["outcome"] == "skipped" and r["down"] == r["known_down"], r
        # the dead worker's own items; or the item xdist blamed while other checks of that worker were in flight
        # (retries.CrashRerun: not blamed on it)
        assert r["reason"].startswith("not checked: ") and ("was not replaced (--max-worker-restart)" in r["reason"]
                                                            or "which check killed it is not known" in r["reason"])
    assert not any(r["name"].startswith("test_") for r in doc["results"])  # a user's own test is not an interface
    return unchecked


@pytest.mark.parametrize("restart", ["0", "1"])
def test_interfaces_of_a_worker_that_is_not_replaced_are_not_lost(pytester: pytest.Pytester,
                                                                   local_server: LocalServer, restart: str) -> None:
    """The red team's example: `i03` kills its worker on every attempt, `i07` answers 500, `retries: 2`."""
    with FakeWeCom() as fake:
        workspace(pytester, local_server, fake.base_url, retries=2, down={7})
        write(pytester.path, "pool/svc/test_own.py", "def test_own():\n    assert True\n")  # the user's own test
        kill(pytester, 'item.name == "i03"')
        result = pytester.runpytest_subprocess("--apimon", "pool", "-p", "no:cacheprovider", "-n", "2",
                                               "--max-worker-restart", restart, "--apimon-json", "results.json",
                                               "--apimon-report", "report.md")
        sent = reports(fake)
    assert result.ret == 2  # incomplete (as `apimon merge` with a missing shard), not 0 "all healthy"
    doc = results(pytester)
    unchecked = check_incomplete(doc)
    outcomes = {r["name"]: r for r in doc["results"]}
    assert {"i03", "i07"} <= set(outcomes)
    assert outcomes["i03"]["outcome"] != "passed"
    # i07 is either checked (500: server_error) or not checked: never passed, never dropped
    assert outcomes["i07"]["category"] == "server_error" or outcomes["i07"]["unchecked"]
    markdown = (pytester.path / "report.md").read_text(encoding="utf-8")
    assert f"监控不完整：{len(unchecked)} 个接口未检查" in markdown and "全部通过" not in markdown
    assert "未检查：" in markdown  # each one listed with its reason
    assert len(sent) == 1, sent  # send_on: change — a run with blind spots is news
    assert "监控不完整" in sent[0] and f"共 {N} 个接口" in sent[0] and "全部通过" not in sent[0], sent[0]
    result.stdout.fnmatch_lines(["*个接口未检查：xdist 工作进程 gw* 崩溃且未被替换*"])


def test_three_workers_one_dies_and_is_not_replaced(pytester: pytest.Pytester, local_server: LocalServer) -> None:
    """-n 3: gw1 dies on its first item, the two others finish; English outputs."""
    with FakeWeCom() as fake:
        workspace(pytester, local_server, fake.base_url, retries=0, down=set(), lang="en")
        kill(pytester, 'worker == "gw1"')
        result = pytester.runpytest_subprocess("--apimon", "pool", "-p", "no:cacheprovider", "-n", "3",
                                               "--max-worker-restart", "0", "--apimon-json", "results.json")
        sent = reports(fake)
    assert result.ret == 2
    doc = results(pytester)
    unchecked = check_incomplete(doc)
    crashed = [r for r in doc["results"] if r["sub"] == "crash"]
    assert len(crashed) == 1 and crashed[0]["outcome"] == "failed"  # the item gw1 died in (retries: 0)
    assert doc["stats"]["passed"] == N - 1 - len(unchecked)
    assert len(sent) == 1
    assert f"monitoring incomplete: {len(unchecked)} interface(s) not checked; 1 failed" in sent[0], sent[0]
    assert "all passed" not in sent[0].lower()


def test_not_checked_interfaces_keep_their_alert_state(pytester: pytest.Pytester,
                                                       local_server: LocalServer) -> None:
    """Everything is down and announced; then everything answers 200 but gw0 dies on its first item and is not
    replaced. What gw1 checked recovers; what was never checked stays down and announced, and no message says
    it recovered (nor raises anything new about it)."""
    with FakeWeCom() as fake:
        workspace(pytester, local_server, fake.base_url, retries=0, down=set(range(N)))
        assert pytester.runpytest_subprocess("--apimon", "pool", "-p", "no:cacheprovider").ret == 1
        with StateStore.in_dir(pytester.path / ".apimon") as store:
            before = store.load_states("default")
        assert len(before) == N and all(s.alerted and s.status == "down" for s in before.values())
        workspace(pytester, local_server, fake.base_url, retries=0, down=set())
        kill(pytester, 'worker == "gw0"')
        result = pytester.runpytest_subprocess("--apimon", "pool", "-p", "no:cacheprovider", "-n", "2",
                                               "--max-worker-restart", "0", "--apimon-json", "results.json")
        sent = reports(fake)
    assert result.ret == 2
    unchecked = {r["name"] for r in check_incomplete(results(pytester))}
    with StateStore.in_dir(pytester.path / ".apimon") as store:
        after = store.load_states("default")
        last = store.runs("default")[0]
    assert not last.selection_complete
    for name in unchecked:
        assert after[f"svc/{name}"] == before[f"svc/{name}"], name  # not checked: untouched, not forgotten
    passed = {r["name"] for r in results(pytester)["results"] if r["outcome"] == "passed"}
    assert passed and all(not after[f"svc/{name}"].alerted for name in passed)
    assert len(sent) == 2, sent
    for name in unchecked:
        assert f"{name}：已恢复" not in sent[1], (name, sent[1])
    assert "监控不完整" in sent[1]


def test_restarts_allowed_nothing_is_unchecked(pytester: pytest.Pytester, local_server: LocalServer) -> None:
    """The default restart limit: the crash is retried on a replacement worker, every interface is checked and
    the run's outputs are today's (no `unchecked`, exit 0)."""
    with FakeWeCom() as fake:
        workspace(pytester, local_server, fake.base_url, retries=1, down=set())
        budget = pytester.path / "crashed"
        kill(pytester, f'item.name == "i03" and not os.path.exists({str(budget)!r})'
                       f' and open({str(budget)!r}, "w").close() is None')  # once
        result = pytester.runpytest_subprocess("--apimon", "pool", "-p", "no:cacheprovider", "-n", "2",
                                               "--apimon-json", "results.json")
    assert result.ret == 0
    doc = results(pytester)
    assert doc["stats"]["total"] == N and doc["stats"]["passed"] == N and doc["stats"]["unchecked"] == 0
    assert not any(r["unchecked"] for r in doc["results"])


def _run(*results: InterfaceResult) -> RunResult:
    return RunResult(started_at=0.0, finished_at=1.0, env="prod", results=list(results))


def test_renderings_never_say_all_passed_with_unchecked_interfaces() -> None:
    ok = InterfaceResult(nodeid="p/svc/a.json::a", service="svc", module="a", name="a")
    lost = InterfaceResult(nodeid="p/svc/a.json::b", service="svc", module="a", name="b", outcome=Outcome.SKIPPED,
                           unchecked=True, reason="not checked: xdist worker gw0 died and was not replaced "
                                                  "(--max-worker-restart)")
    run = _run(ok, lost)
    stats = compute_stats(run)
    assert (stats.total, stats.passed, stats.skipped, stats.unchecked) == (2, 1, 1, 1)
    for lang, verdict, everything in (("zh", "监控不完整：1 个接口未检查", "全部通过"),
                                      ("en", "monitoring incomplete: 1 interface(s) not checked", "all passed")):
        assert title(run, lang).endswith(verdict)
        markdown = render_markdown(run, lang)
        assert verdict.lower() in markdown.lower() and everything not in markdown.lower()
        terminal = render_terminal(run, lang)
        assert ("其中 1 个未检查" if lang == "zh" else "1 of them not checked") in terminal
    assert "未检查：xdist 工作进程 gw0 崩溃且未被替换（--max-worker-restart）" in render_markdown(run, "zh")
