"""The run's memory through the real plugin (issue 14): partial runs forget nothing they did not check, every
interface has one identity, every item is stored, and what is known down is never reported green."""

from __future__ import annotations

import json

import pytest
from fake_wecom import KEY, FakeWeCom, reports
from localserver import LocalServer, Response
from test_plugin import XDIST, write

from pytest_apimon.state import StateStore


def config(pytester: pytest.Pytester, srv: LocalServer, wecom: str = "", extra: str = "") -> None:
    srv.route("GET", "/svc/ok", lambda r: {"ok": True})
    srv.route("GET", "/svc/boom", lambda r: Response(500, {}, "boom"))
    notify = (f"notify: {{send_on: change, wecom: [{{name: ops, webhook: {KEY}, base_url: '{wecom}'}}]}}"
              if wecom else "")
    write(pytester.path, "config.yaml", f"""
        defaults: {{retries: 0}}
        services:
          svc: {{base_url: "{srv.url}/svc"}}
          other: {{base_url: "{srv.url}/svc"}}
        {notify}
        {extra}
    """)


def states(pytester: pytest.Pytester) -> dict:
    with StateStore.in_dir(pytester.path / ".apimon") as store:
        return store.load_states("default")


def markdown(fake: FakeWeCom) -> list[str]:
    return reports(fake)  # one text per report: its first screen and details


@pytest.mark.parametrize("partial", [["-x"], ["--maxfail=1"], ["-k", "a1"]])
def test_partial_run_leaves_unchecked_interfaces_alone(pytester, local_server, partial) -> None:
    with FakeWeCom() as fake:
        config(pytester, local_server, fake.base_url)
        write(pytester.path, "pool/svc/api.yaml", """
            - {name: a1, path: /boom}
            - {name: a2, path: /boom}
        """)
        pytester.runpytest("--apimon", "pool", "-p", "no:randomly").assert_outcomes(failed=2)
        before = states(pytester)
        assert before["svc/a2"].alerted and len(markdown(fake)) == 1
        pytester.runpytest("--apimon", "pool", *partial).assert_outcomes(failed=1)
        after = states(pytester)
        assert after["svc/a2"] == before["svc/a2"]  # not checked: not touched, not forgotten
        pytester.runpytest("--apimon", "pool").assert_outcomes(failed=2)
        assert len(markdown(fake)) == 1, markdown(fake)[1:]  # still ONGOING, never a second NEW
        with StateStore.in_dir(pytester.path / ".apimon") as store:
            partial_run = store.runs("default")[1]
        assert not partial_run.selection_complete


def test_another_pool_on_the_same_state_folder_is_not_forgotten(pytester, local_server) -> None:
    config(pytester, local_server)
    write(pytester.path, "poolA/svc/api.yaml", "- {name: a, path: /boom}")
    write(pytester.path, "poolB/other/api.yaml", "- {name: b, path: /ok}")
    pytester.runpytest("--apimon", "poolA").assert_outcomes(failed=1)
    pytester.runpytest("--apimon", "poolB").assert_outcomes(passed=1)
    assert states(pytester)["svc/a"].status == "down"
    with StateStore.in_dir(pytester.path / ".apimon") as store:
        assert json.loads(store.conn.execute("SELECT pools FROM runs ORDER BY id DESC").fetchone()[0]) == ["poolB"]
    (pytester.path / "poolA" / "svc" / "api.yaml").unlink()
    write(pytester.path, "poolA/svc/other.yaml", "- {name: c, path: /ok}")
    pytester.runpytest("--apimon", "poolA").assert_outcomes(passed=1)
    assert "svc/a" not in states(pytester)  # really removed from its own pool: forgotten
    assert "other/b" in states(pytester)


@pytest.mark.parametrize("extra", XDIST)
def test_duplicate_name_in_another_file_has_its_own_identity(pytester, local_server, extra) -> None:
    with FakeWeCom() as fake:
        config(pytester, local_server, fake.base_url)
        write(pytester.path, "pool/svc/a.yaml", "- {name: 查询, path: /ok}")
        write(pytester.path, "pool/svc/b.yaml", "- {name: 查询, path: /ok}")
        pytester.runpytest("--apimon", "pool", *extra).assert_outcomes(passed=1, failed=1)
        pytester.runpytest("--apimon", "pool", *extra).assert_outcomes(passed=1, failed=1)
        remembered = states(pytester)
        assert remembered["svc/查询"].status == "up" and not remembered["svc/查询"].alerted
        assert remembered["svc/查询 (duplicate)"].status == "down"
        assert all("已恢复" not in m for m in markdown(fake))


def test_whole_file_errors_are_keyed_per_file_and_every_item_is_stored(pytester, local_server) -> None:
    with FakeWeCom() as fake:
        config(pytester, local_server, fake.base_url)
        write(pytester.path, "pool/svc/broken1.yaml", "- [not: a mapping")
        docs = "\n".join(f"- {{name: i{i}, path: /ok}}" for i in range(60))
        write(pytester.path, "pool/svc/api.yaml", docs + "\n- {name: i0, path: /ok}")  # a same-file duplicate
        pytester.runpytest("--apimon", "pool").assert_outcomes(passed=60, failed=2)
        write(pytester.path, "pool/svc/broken2.yaml", "- [not: a mapping")
        pytester.runpytest("--apimon", "pool").assert_outcomes(passed=60, failed=3)
        last = markdown(fake)[-1]
        assert "broken2.yaml" in last and "接口文档错误" in last and "新告警" in last
        with StateStore.in_dir(pytester.path / ".apimon") as store:
            rows = store.conn.execute("SELECT COUNT(*) FROM results GROUP BY run_id ORDER BY run_id").fetchall()
        assert [r[0] for r in rows] == [62, 63]  # every item of every run


@pytest.mark.parametrize("extra", XDIST)
def test_down_behind_an_open_circuit_is_never_green(pytester, local_server, extra) -> None:
    import xml.etree.ElementTree as ET

    with FakeWeCom() as fake:
        config(pytester, local_server, fake.base_url, extra="breaker: {failures: 2, cooldown: 1h}")
        write(pytester.path, "pool/svc/api.yaml", """
            - {name: ok, path: /ok}
            - {name: 坏了, path: /boom}
        """)
        for _ in range(2):
            pytester.runpytest("--apimon", "pool", *extra).assert_outcomes(passed=1, failed=1)
        result = pytester.runpytest("--apimon", "pool", *extra, "--junitxml=j.xml", "--apimon-json=r.json",
                                    "--apimon-html=s.html")
        result.assert_outcomes(passed=1, skipped=1)
        assert result.ret == 1  # known down: not a green run
        out = result.stdout.str()
        assert "全部通过" not in out and "成功率 50.0%" in out and "其中 1 个熔断中" in out
        doc = json.loads((pytester.path / "r.json").read_text(encoding="utf-8"))
        assert doc["down_now"] == ["svc/坏了"] and doc["stats"]["success_rate"] == 0.5
        skipped = next(r for r in doc["results"] if r["name"] == "坏了")
        assert skipped["url"] == f"{local_server.url}/svc/boom" and skipped["down"] is True
        case = next(c for c in ET.parse(pytester.path / "j.xml").iter("testcase") if "坏了" in c.get("name"))
        props = {p.get("name"): p.get("value") for p in case.iter("property")}
        assert props["state"] == "down" and props["url"] == f"{local_server.url}/svc/boom"
        page = (pytester.path / "s.html").read_text(encoding="utf-8")
        assert "50.0%" in page and "服务器错误" in page.split('id="incidents"')[1].split("</section>")[0]


def test_config_errors_never_open_a_circuit(pytester, local_server) -> None:
    config(pytester, local_server, extra="breaker: {failures: 2, cooldown: 1h}")
    write(pytester.path, "pool/nobase/api.yaml", "- {name: x, path: /ok}")  # service without a base_url
    write(pytester.path, "pool/svc/bad.yaml", "- [broken")
    for _ in range(4):
        result = pytester.runpytest("--apimon", "pool")
        result.assert_outcomes(failed=2)
        assert "熔断" not in result.stdout.str()
    assert all(s.breaker == "closed" for s in states(pytester).values())


def test_waiting_for_another_runs_lock_is_said(pytester, local_server) -> None:
    from pytest_apimon.runlock import RunLock

    config(pytester, local_server, extra="state: {lock_timeout: 0.2s}")
    write(pytester.path, "pool/svc/api.yaml", "- {name: a, path: /ok}")
    with RunLock(pytester.path / ".apimon", timeout=1).acquire():
        result = pytester.runpytest("--apimon", "pool")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["[[]apimon-wait[]] waiting up to 0.2s*another run's lock (pid *"])
