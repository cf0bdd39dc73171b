"""--apimon-shard K/N and `apimon merge`: three shards run locally, then one report, notification, state, JUnit."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from fake_wecom import KEY, FakeWeCom, reports
from localserver import LocalServer, Response
from test_plugin import XDIST, write

from pytest_apimon.__main__ import main
from pytest_apimon.state import DB_FILE

SERVICES = {"alpha": 6, "beta": 3, "gamma": 2, "delta": 1}


def serve_pool(srv: LocalServer, pool: Path, counts: dict[str, int]) -> str:
    """`counts` ({service: interfaces}) served by `srv` (beta-0 answers 500) and written as
    `pool/<service>/api.json`; returns the config's `services:` entries for them."""
    services = ""
    for service, n in counts.items():
        services += f"  {service}:\n    base_url: {srv.url}/{service}\n"
        docs = []
        for i in range(n):
            failing = service == "beta" and i == 0
            srv.route("GET", f"/{service}/i{i}",
                      (lambda r: Response(500, {}, "boom")) if failing else (lambda r: {"ok": True}))
            docs.append({"name": f"{service}-{i}", "path": f"/i{i}"})
        write(pool, f"{service}/api.json", json.dumps(docs))
    return services


def workspace(pytester: pytest.Pytester, srv: LocalServer, fake_url: str) -> None:
    services = serve_pool(srv, pytester.path / "pool", SERVICES)
    (pytester.path / "config.yaml").write_text(
        "defaults:\n  retries: 0\nservices:\n" + services
        + f"notify:\n  send_on: failure\n  wecom:\n    - name: ops\n      webhook: ${{TEST_WECOM_KEY}}\n"
          f"      base_url: {fake_url}\n", encoding="utf-8")


@pytest.mark.parametrize("extra", XDIST)
def test_three_shards_then_one_merge(pytester, local_server, monkeypatch, extra) -> None:
    monkeypatch.setenv("TEST_WECOM_KEY", KEY)
    with FakeWeCom() as fake:
        workspace(pytester, local_server, fake.base_url)
        seen: dict[str, int] = {}
        shards_of: dict[str, set[int]] = {}
        for k in (1, 2, 3):
            result = pytester.runpytest("--apimon", "pool", "--apimon-shard", f"{k}/3",
                                        "--apimon-json", f"results-{k}.json", *extra)
            assert result.ret in (0, 1)
            doc = json.loads((pytester.path / f"results-{k}.json").read_text("utf-8"))
            assert doc["shard"] == f"{k}/3" and len(doc["plan"]) == 12
            for record in doc["results"]:
                seen[record["name"]] = seen.get(record["name"], 0) + 1
                shards_of.setdefault(record["service"], set()).add(k)
        # A service within a fair share (12 / 3 = 4) stays on one shard (one login); alpha (6) is split in two.
        assert {s: len(v) for s, v in shards_of.items()} == {"alpha": 2, "beta": 1, "gamma": 1, "delta": 1}
        assert seen == {f"{s}-{i}": 1 for s, n in SERVICES.items() for i in range(n)}  # each exactly once
        assert all(local_server.count(f"/{s}/i{i}") == 1 for s, n in SERVICES.items() for i in range(n))
        assert fake.messages == []  # shards neither notify ...
        assert not (pytester.path / ".apimon" / DB_FILE).exists()  # ... nor record state

        monkeypatch.chdir(pytester.path)
        code = main(["merge", "--junitxml", "merged.xml", "--report", "merged.md", "--json", "merged.json",
                     *(f"results-{k}.json" for k in (1, 2, 3))])
        assert code == 1  # one interface failed
        sent = reports(fake)  # one report: its first screen and its details
        assert len(sent) == 1 and "beta-0" in sent[0]
        assert (pytester.path / ".apimon" / DB_FILE).exists()
        cases = list(ET.parse(pytester.path / "merged.xml").getroot().iter("testcase"))
        assert len(cases) == 12
        assert [c.get("name") for c in cases if c.find("failure") is not None] == ["beta-0"]
        assert all(c.get("classname") == f"pool.{c.get('name').split('-')[0]}.api.json" for c in cases)
        merged = json.loads((pytester.path / "merged.json").read_text("utf-8"))
        assert merged["stats"]["total"] == 12 and merged["stats"]["failed"] == 1
        assert "beta-0" in (pytester.path / "merged.md").read_text("utf-8")


def test_merge_names_a_missing_shard_and_exits_2(pytester, local_server, monkeypatch, capsys) -> None:
    monkeypatch.setenv("TEST_WECOM_KEY", KEY)
    with FakeWeCom() as fake:
        workspace(pytester, local_server, fake.base_url)
        for k in (1, 2):
            pytester.runpytest("--apimon", "pool", "--apimon-shard", f"{k}/3", "--apimon-json", f"r{k}.json")
        missing = {row[0] for row in json.loads((pytester.path / "r1.json").read_text("utf-8"))["plan"]
                   if row[4] == 3}
        assert missing
        monkeypatch.chdir(pytester.path)
        capsys.readouterr()
        code = main(["merge", "--json", "merged.json", "--junitxml", "merged.xml", "--report", "merged.md",
                     "--dry-run", "r1.json", "r2.json"])
        assert code == 2
        out = capsys.readouterr().out
        # report.language zh (the default): the missing shard is named in Chinese, in the terminal, the report
        # and the JUnit skip messages (it was the one English line of a zh merge); the JSON keeps the canonical line.
        assert "缺少分片 3/3：其中的接口未检查（列为跳过）" in out and "missing shard" not in out
        assert "未检查：分片 3/3 没有报告结果" in (pytester.path / "merged.md").read_text("utf-8")
        messages = {c.find("skipped").get("message") for c in ET.parse(pytester.path / "merged.xml").getroot()
                    .iter("testcase") if c.find("skipped") is not None}
        assert messages == {"未检查：分片 3/3 没有报告结果"}
        records = json.loads((pytester.path / "merged.json").read_text("utf-8"))["results"]
        skipped = {r["nodeid"] for r in records if r["outcome"] == "skipped"}
        assert skipped == missing
        assert {r["reason"] for r in records if r["outcome"] == "skipped"} == {
            "not checked: shard 3/3 reported no results"}
        assert len(records) == 12
        assert fake.messages == []  # dry run


def test_merge_rejects_files_that_are_not_shard_results(tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.chdir(tmp_path)  # the merge now records the run: in a temp folder, never the repo's .apimon/
    bad = tmp_path / "x.json"
    bad.write_text(json.dumps({"results": []}), encoding="utf-8")
    assert main(["merge", "--config", str(tmp_path / "none.yaml"), str(bad)]) == 4
    assert main(["merge", str(bad)]) == 4
    assert "不是分片结果文件" in capsys.readouterr().err  # report.language zh, the default
    assert main(["merge", "--lang", "en", str(bad)]) == 4
    assert "not a shard results file" in capsys.readouterr().err


def test_bad_shard_option_is_a_usage_error(pytester) -> None:
    write(pytester.path, "pool/svc/api.json", "[]")
    result = pytester.runpytest("--apimon", "pool", "--apimon-shard", "4/3")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--apimon-shard*K/N*"])


def test_result_to_dict_matches_asdict_and_copies_containers() -> None:
    from dataclasses import asdict

    from pytest_apimon.results import InterfaceResult

    r = InterfaceResult("n", "s", "m", "i", tags=["t"], request_headers={"a": "b"}, response_headers={"c": "d"},
                        status=500, elapsed_ms=1.5, outcome="failed", category="server_error")
    data = r.to_dict()
    assert data == asdict(r)
    data["tags"].append("x")
    data["request_headers"]["z"] = "1"
    assert r.tags == ["t"] and r.request_headers == {"a": "b"}


def test_merge_shows_times_in_report_timezone_and_leaves_the_zone_as_it_was(pytester, local_server,
                                                                           monkeypatch) -> None:
    """`apimon merge` formats times in `report.timezone`, as a run does; like a run (plugin.pytest_configure's
    cleanup) it puts the process's previous zone back when it returns."""
    from pytest_apimon import times

    monkeypatch.setenv("TEST_WECOM_KEY", KEY)
    with FakeWeCom() as fake:
        workspace(pytester, local_server, fake.base_url)
        config = pytester.path / "config.yaml"
        config.write_text(config.read_text("utf-8") + "report:\n  timezone: '+05:45'\n", "utf-8")
        before = times.local(0).utcoffset()
        for k in (1, 2):
            pytester.runpytest("--apimon", "pool", "--apimon-shard", f"{k}/2", "--apimon-json", f"r{k}.json")
        assert times.local(0).utcoffset() == before  # the shard runs left the zone as it was
        monkeypatch.chdir(pytester.path)
        assert main(["merge", "--report", "merged.md", "--dry-run", "r1.json", "r2.json"]) == 1
        assert "+05:45" in (pytester.path / "merged.md").read_text("utf-8")
        assert times.local(0).utcoffset() == before
