"""`apimon merge` with missing shards tells the group (docs/scaling.md "A missing shard is never all passed").

Under the default `send_on: change`, a lost shard is news when the set of missing shards changes (first line:
"【prod】接口巡检：监控不完整：分片 2/3 未上报结果，2 个接口未检查"), a reminder every `remind_every` while it
stays the same, and "分片已恢复" when every shard reports again; a merge that received no shard file at all says
"监控失效：3 个分片都没有上报结果" and exits 2; a file that cannot be used exits 4 and still notifies. The shard
files are written with merge.shard_document (what a `--apimon-shard K/N` run writes), with fixed run times, so
the reminder interval is stepped over without a clock; the robot is tests/fake_wecom.py's FakeWeCom.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fake_wecom import KEY, FakeWeCom, reports

from pytest_apimon import alerts
from pytest_apimon.__main__ import main
from pytest_apimon.merge import shard_document
from pytest_apimon.policy import RunMemory, ShardReport, shard_step
from pytest_apimon.redact import Redactor
from pytest_apimon.results import InterfaceResult, RunResult
from pytest_apimon.sharding import Shard

pytestmark = pytest.mark.integration

T0 = 1_790_000_000.0  # the first merge's run; later ones are 15 minutes apart
PLAN = [  # nodeid, service, module, name, shard: alpha on 1, beta on 2, gamma on 3
    ("pool/alpha/api.json::a-0", "alpha", "api", "a-0", 1), ("pool/alpha/api.json::a-1", "alpha", "api", "a-1", 1),
    ("pool/beta/api.json::b-0", "beta", "api", "b-0", 2), ("pool/beta/api.json::b-1", "beta", "api", "b-1", 2),
    ("pool/gamma/api.json::g-0", "gamma", "api", "g-0", 3),
]


def write_shards(folder: Path, at: float, shards: tuple[int, ...] = (1, 2, 3), failing: str = "") -> None:
    """The results files of shards `shards` of a 3-way split checked at `at` (other shards' files removed)."""
    for k in (1, 2, 3):
        (folder / f"results-{k}.json").unlink(missing_ok=True)
    for k in shards:
        results = [InterfaceResult(nodeid, svc, module, name, method="GET", url=f"http://127.0.0.1:9/{name}",
                                   outcome="failed" if name == failing else "passed",
                                   category="server_error" if name == failing else None,
                                   reason="HTTP 500" if name == failing else "", status=500 if name == failing
                                   else 200, elapsed_ms=5.0)
                   for nodeid, svc, module, name, index in PLAN if index == k]
        run = RunResult(at, at + 1, "prod", results)
        (folder / f"results-{k}.json").write_text(
            shard_document(run, Shard(k, 3), selection_complete=True, redactor=Redactor(), plan=PLAN), "utf-8")


def workspace(folder: Path, fake: FakeWeCom, *, lang: str = "zh", send_on: str = "change",
              robots: str = "") -> None:
    robots = robots or f"    - {{name: ops, webhook: {KEY}, base_url: '{fake.base_url}'}}\n"
    (folder / "config.yaml").write_text(
        f"env: prod\nreport:\n  language: {lang}\n"
        f"notify:\n  send_on: {send_on}\n  wecom:\n{robots}", "utf-8")


def merge(folder: Path, *extra: str) -> int:
    """`apimon merge results-*.json` as a shell passes it: the files that exist, else the pattern unexpanded."""
    files = sorted(str(p.name) for p in folder.glob("results-*.json")) or ["results-*.json"]
    return main(["merge", "--junitxml", "junit.xml", "--report", "report.md", *extra, *files])


@pytest.fixture
def here(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_a_lost_shard_is_announced_then_reminded_then_its_return(here: Path, capsys) -> None:
    with FakeWeCom() as fake:
        workspace(here, fake)
        write_shards(here, T0)
        assert merge(here) == 0 and fake.messages == []  # complete and healthy: nothing to say

        # (a) shard 2/3 lost: one message, its first line names the shard and the unchecked interfaces.
        write_shards(here, T0 + 900, (1, 3))
        assert merge(here) == 2
        sent = reports(fake)
        assert len(sent) == 1
        first = sent[0].splitlines()
        assert first[0] == "**【prod】接口巡检：监控不完整：分片 2/3 未上报结果，2 个接口未检查**"
        assert "分片 2/3 自" in sent[0] and "（beta 2）" in sent[0]
        assert len(fake.messages[0].content.splitlines()) <= 8  # the first screen

        # (b) the same shard lost again 15 min later: nothing new (send_on: change), the terminal says why …
        capsys.readouterr()
        write_shards(here, T0 + 1800, (1, 3))
        assert merge(here) == 2
        assert len(reports(fake)) == 1
        assert "分片 2/3 仍未上报（已通知过）" in capsys.readouterr().out
        # … and a reminder once remind_every (1 h) has passed since the announcement.
        write_shards(here, T0 + 900 + 3600, (1, 3))
        assert merge(here) == 2
        sent = reports(fake)
        assert len(sent) == 2
        assert sent[1].splitlines()[0] == "**【prod】接口巡检：监控不完整：分片 2/3 未上报结果，2 个接口未检查**"
        assert "未检查的接口保持原有告警状态（beta 2）（提醒）" in sent[1]

        # Another shard lost as well: the set changed, announced at once.
        write_shards(here, T0 + 900 + 4500, (1,))
        assert merge(here) == 2
        sent = reports(fake)
        assert len(sent) == 3 and "监控不完整：分片 2/3、3/3 未上报结果，3 个接口未检查" in sent[2].splitlines()[0]

        # (c) every shard back: the return is announced once, then silence.
        write_shards(here, T0 + 900 + 5400)
        assert merge(here) == 0
        sent = reports(fake)
        assert len(sent) == 4
        assert sent[3].splitlines()[0] == "**【prod】接口巡检：分片已恢复**"
        assert "每个分片都已上报结果（缺失自" in sent[3]
        write_shards(here, T0 + 900 + 6300)
        assert merge(here) == 0 and len(reports(fake)) == 4


def test_every_shard_lost_is_announced_and_exits_2(here: Path) -> None:
    with FakeWeCom() as fake:
        workspace(here, fake)
        write_shards(here, T0)
        assert merge(here) == 0
        # (d) no shard file at all: the shell passes results-*.json on unexpanded. N and the pool's size come
        # from the last merge.
        write_shards(here, T0, ())
        assert merge(here) == 2
        sent = reports(fake)
        assert len(sent) == 1
        assert sent[0].splitlines()[0] == "**【prod】接口巡检：监控失效：3 个分片都没有上报结果，5 个接口未检查**"
        assert "分片 1/3、2/3、3/3 自" in sent[0]
        assert "> 分片 1/3、2/3、3/3 自" in (here / "report.md").read_text("utf-8")  # the report is written
        assert merge(here) == 2 and len(reports(fake)) == 1  # the same again: nothing new


def test_every_shard_lost_on_the_first_merge(here: Path) -> None:
    with FakeWeCom() as fake:
        workspace(here, fake)
        assert merge(here) == 2  # no memory of a split: the number of shards is unknown, and said so
        sent = reports(fake)
        assert len(sent) == 1 and sent[0].splitlines()[0] == "**【prod】接口巡检：监控失效：没有任何分片上报结果**"


def test_english(here: Path) -> None:
    with FakeWeCom() as fake:
        workspace(here, fake, lang="en")
        write_shards(here, T0)
        merge(here)
        write_shards(here, T0 + 900, (1, 3), failing="a-0")
        assert merge(here) == 2
        sent = reports(fake)
        assert len(sent) == 1
        assert sent[0].splitlines()[0] == ("**[prod] API monitor: monitoring incomplete: shard 2/3 reported no "
                                           "results, 2 interface(s) not checked; 1 failed**")
        assert "> shard 2/3 reported no results since" in sent[0] and "alpha · a-0" in sent[0]
        write_shards(here, T0 + 1800, failing="a-0")
        assert merge(here) == 1
        assert reports(fake)[1].splitlines()[0] == "**[prod] API monitor: all shards report again; 1 failed**"
        write_shards(here, T0 + 2700, ())
        assert merge(here) == 2
        assert reports(fake)[2].splitlines()[0] == ("**[prod] API monitor: monitoring failed: none of the 3 shards "
                                                    "reported results, 5 interface(s) not checked**")


def test_dry_run_shows_the_message_and_sends_nothing(here: Path, capsys) -> None:
    with FakeWeCom() as fake:
        workspace(here, fake)
        write_shards(here, T0, (1, 3))
        capsys.readouterr()
        assert merge(here, "--dry-run") == 2
        out = capsys.readouterr().out
        assert "【prod】接口巡检：监控不完整：分片 2/3 未上报结果，2 个接口未检查" in out
        assert fake.messages == []


def test_an_unusable_file_exits_4_and_still_notifies(here: Path, capsys) -> None:
    with FakeWeCom() as fake:
        workspace(here, fake)
        write_shards(here, T0, (1, 3), failing="a-0")
        (here / "results-2.json").write_text('{"shard": "2/3", "results": [', "utf-8")  # cut short
        capsys.readouterr()
        assert merge(here) == 4
        assert "results-2.json：无法读取分片结果：JSON 格式错误" in capsys.readouterr().err
        sent = reports(fake)
        assert len(sent) == 1  # the other shards' findings are merged and sent, with the unusable file named
        assert sent[0].splitlines()[0] == ("**【prod】接口巡检：监控不完整：分片 2/3 未上报结果，2 个接口未检查；"
                                           "1 个失败**")
        assert "results-2.json：无法读取分片结果" in sent[0] and "a-0" in sent[0]


def test_a_routed_robot_hears_of_its_own_services_only(here: Path) -> None:
    with FakeWeCom(keys=(KEY, KEY[:-1] + "b")) as fake:
        other = KEY[:-1] + "b"
        workspace(here, fake, robots=f"    - {{name: beta-team, webhook: {KEY}, base_url: '{fake.base_url}', "
                                     f"services: [beta]}}\n"
                                     f"    - {{name: gamma-team, webhook: {other}, base_url: '{fake.base_url}', "
                                     f"services: [gamma]}}\n")
        write_shards(here, T0)
        merge(here)
        write_shards(here, T0 + 900, (1, 3))
        assert merge(here) == 2
        assert len(reports(fake, KEY)) == 1 and reports(fake, other) == []  # beta was not checked, gamma was
        write_shards(here, T0 + 1800)
        merge(here)
        assert len(reports(fake, KEY)) == 2 and reports(fake, other) == []  # the return: to whom heard of it


def test_send_on_failure_digests_a_shard_still_missing(here: Path) -> None:
    with FakeWeCom() as fake:
        workspace(here, fake, send_on="failure")
        write_shards(here, T0, (1, 3))
        merge(here)
        write_shards(here, T0 + 900, (1, 3))
        merge(here)
        sent = reports(fake)
        assert len(sent) == 2  # every run with a blind spot, as a failure would be; the second one a digest
        assert sent[1].splitlines()[0] == "**【prod】接口巡检：监控不完整：分片 2/3 未上报结果，2 个接口未检查**"


def test_shard_step_is_the_policy() -> None:
    memory = RunMemory()
    two = ShardReport(3, (2,), 2, 2, {"beta": 2}, 5)
    assert shard_step(memory, two, T0, 3600).what == "shards"
    assert shard_step(memory, two, T0 + 900, 3600).what == "shards_ongoing"
    assert shard_step(memory, two, T0 + 3600, 3600).what == "shards_reminder"
    nothing = shard_step(memory, ShardReport(0), T0 + 4500, 3600)  # nothing arrived: N from memory
    assert nothing.what == "shards" and nothing.names == ("1/3", "2/3", "3/3") and nothing.report.unchecked == 5
    back = shard_step(memory, ShardReport(3, (), 3, 0, {}, 5), T0 + 5400, 3600)
    assert back.what == "shards_recovered" and back.since == T0 and back.notify
    assert shard_step(memory, ShardReport(3, (), 3, 0, {}, 5), T0 + 6300, 3600) is None
    assert shard_step(memory, None, T0, 3600) is None  # a plain run knows nothing of shards


def test_a_storm_ending_keeps_the_shard_memory() -> None:
    from pytest_apimon.policy import evaluate
    from pytest_apimon.policy_settings import PolicySettings

    memory = RunMemory(storm_since=T0, storm_last_alert_at=T0, shards_missing=["2/3"], shards_since=T0,
                       shards_last_alert_at=T0, shards_total=3)
    ok = InterfaceResult("n", "alpha", "api", "a-0")
    verdict = evaluate({}, [ok], PolicySettings(), T0 + 900, memory, shards=ShardReport(3, (2,), 2, 2, {"beta": 2}, 5))
    assert verdict.storm_ended == T0
    assert verdict.shards is not None and verdict.shards.what == "shards_ongoing"  # not announced again
    assert verdict.memory.shards_missing == ["2/3"] and verdict.memory.storm_since is None


def test_memory_round_trips_through_json() -> None:
    memory = RunMemory(shards_missing=["2/3"], shards_services=["beta"], shards_total=3, shards_planned=5)
    assert RunMemory(**json.loads(json.dumps(vars(memory)))) == memory
    assert alerts.TRIGGER_WORDS["shards"] == ("分片未上报", "shard missing")


def test_a_missing_shards_interface_last_known_down_stays_in_down_now(here: Path) -> None:
    """b-0 fails and is announced; then shard 2/3 (beta) is missing: b-0 was not checked, and it is still down as
    far as anyone knows — in `down_now`, its record, the counts and the message; b-1 (last known up) is not."""
    with FakeWeCom() as fake:
        workspace(here, fake)
        write_shards(here, T0, failing="b-0")
        assert merge(here, "--json", "merged.json") == 1
        write_shards(here, T0 + 900, (1, 3))
        assert merge(here, "--json", "merged.json") == 2
        sent = reports(fake)
    doc = json.loads((here / "merged.json").read_text("utf-8"))
    assert doc["down_now"] == ["beta/b-0"]
    records = {r["name"]: r for r in doc["results"]}
    assert records["b-0"]["down"] and records["b-0"]["known_down"] and records["b-0"]["outcome"] == "skipped"
    assert not records["b-1"]["down"] and records["b-1"]["outcome"] == "skipped"
    assert doc["stats"]["failed"] == 1 and doc["stats"]["passed"] == 3 and doc["stats"]["skipped"] == 1
    assert sent[-1].splitlines()[0] == "**【prod】接口巡检：监控不完整：分片 2/3 未上报结果，2 个接口未检查；1 个失败**"
    assert "**beta** · b-0：" in sent[-1]
