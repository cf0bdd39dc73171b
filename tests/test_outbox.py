from __future__ import annotations

import json
import os
import stat
import time
from pathlib import Path

import pytest
from fake_wecom import KEY, FakeClock, FakeWeCom, robot_config

from pytest_apimon import times
from pytest_apimon.notify import Notification, build_notifiers, default_outbox_dir
from pytest_apimon.notify.outbox import Outbox, OutboxEntry
from pytest_apimon.notify.settings import NotifySettings, parse_notify
from pytest_apimon.notify.wecom import WeComNotifier

RUN1 = time.mktime((2026, 11, 28, 4, 0, 0, 0, 0, -1))
RUN2 = RUN1 + 900
OFF = times.offset(RUN1)  # times in messages carry the zone's offset (report.timezone; here the machine's)




def run(fake: FakeWeCom, clock: FakeClock, box: Path, n: Notification | None, **notify: object):
    """One monitoring run's delivery, with a fresh notifier as a new pytest process would have."""
    settings = parse_notify({"outbox_max": 50, **notify, "wecom": [robot_config(fake)]})
    notifier = WeComNotifier(settings, Outbox(box, settings.outbox_max), clock=clock.now, sleep=clock.sleep)
    return notifier.send(n) if n is not None else notifier.flush()


def report(text: str, started: float = RUN1, lang: str = "zh") -> Notification:
    return Notification(title="【prod】接口监控", markdown=text, summary=text, run_started_at=started, lang=lang,
                        failed=1)


def test_down_for_a_run_then_delivered_first_with_original_time(fake: FakeWeCom, clock: FakeClock,
                                                                 tmp_path: Path) -> None:
    box = tmp_path / ".apimon" / "outbox"
    fake.go_down("refuse")
    first = run(fake, clock, box, report("# 第一次运行：订单服务失败"))
    assert not first.delivered and first.stored_in_outbox
    files = list(box.glob("*.json"))
    assert len(files) == 1 and stat.S_IMODE(files[0].stat().st_mode) == 0o600
    assert KEY not in files[0].read_text(encoding="utf-8")  # the key is never written to disk

    fake.come_back()
    second = run(fake, clock, box, report("# 第二次运行：全部恢复", started=RUN2))
    assert second.delivered and second.redelivered == 1 and second.messages_sent == 2
    old, new = fake.messages
    assert old.content == f"（补发：原始运行时间 2026-11-28 04:00:00 {OFF}）\n# 第一次运行：订单服务失败"
    assert new.content == "# 第二次运行：全部恢复"
    assert list(box.glob("*.json")) == []


def test_english_marker_and_flush_without_own_report(fake: FakeWeCom, clock: FakeClock, tmp_path: Path) -> None:
    fake.go_down("busy")
    assert run(fake, clock, tmp_path, report("# Run 1: orders failing", lang="en")).stored_in_outbox
    fake.come_back()
    flushed = run(fake, clock, tmp_path, None)
    assert flushed.redelivered == 1
    assert fake.messages[0].content.startswith(f"(delayed: originally from 2026-11-28 04:00:00 {OFF})\n# Run 1")


def test_partial_delivery_keeps_only_the_rest(fake: FakeWeCom, clock: FakeClock, tmp_path: Path) -> None:
    text = "\n\n".join(f"## 问题 {i}\n" + "数据库连接超时" * 60 for i in range(12))
    fake.fail_next(0)  # the first part goes through
    fake.fail_next(-1, 4)  # then WeCom is busy for longer than the retries
    result = run(fake, clock, tmp_path, report(text), max_messages=10)
    assert not result.delivered and result.messages_sent == 1
    total = int(fake.messages[0].content.split("/", 1)[1].split(")", 1)[0])
    entry, = Outbox(tmp_path).pending()
    assert len(entry.steps) == total - 1
    again = run(fake, clock, tmp_path, None)
    assert again.redelivered == 1 and len(fake.messages) == total
    note = f"（补发：原始运行时间 2026-11-28 04:00:00 {OFF}）"
    assert fake.messages[1].content.startswith(note + "\n**【prod】接口监控 (2/")


def test_wrong_key_stored_and_delivered_once_fixed(fake: FakeWeCom, clock: FakeClock, tmp_path: Path) -> None:
    fake.keys = set()
    result = run(fake, clock, tmp_path, report("# 报告"))
    assert result.stored_in_outbox and "93000" in result.errors[0] and len(fake.attempts) == 1
    fake.keys = {KEY}
    assert run(fake, clock, tmp_path, None).redelivered == 1 and len(fake.messages) == 1


def test_backlog_failure_keeps_order(fake: FakeWeCom, clock: FakeClock, tmp_path: Path) -> None:
    fake.go_down("refuse")
    run(fake, clock, tmp_path, report("# 一"))
    second = run(fake, clock, tmp_path, report("# 二", started=RUN2))
    assert second.stored_in_outbox and len(Outbox(tmp_path)) == 2
    fake.come_back()
    third = run(fake, clock, tmp_path, report("# 三", started=RUN2 + 900))
    assert third.delivered and third.redelivered == 2
    assert [m.content.split("\n")[-1] for m in fake.messages] == ["# 一", "# 二", "# 三"]


def test_outbox_is_bounded_and_the_next_report_says_so(fake: FakeWeCom, clock: FakeClock, tmp_path: Path) -> None:
    fake.go_down("refuse")
    for i in range(5):
        run(fake, clock, tmp_path, report(f"# 运行 {i}", started=RUN1 + 60 * i), outbox_max=3)
    assert [e.run_started_at for e in Outbox(tmp_path).pending()] == [RUN1 + 120, RUN1 + 180, RUN1 + 240]
    assert Outbox(tmp_path).dropped("wecom", "default") == 2
    fake.come_back()
    result = run(fake, clock, tmp_path, report("# 现在"), outbox_max=3)
    assert result.redelivered == 3 and result.delivered
    assert "丢弃了 2 份更早的未送达报告" in fake.messages[0].content
    assert "# 运行 2" in fake.messages[0].content
    assert sum("丢弃" in m.content for m in fake.messages) == 1
    assert Outbox(tmp_path).dropped("wecom", "default") == 0


def test_stored_report_too_long_is_re_split_and_delivered(fake: FakeWeCom, clock: FakeClock,
                                                          tmp_path: Path) -> None:
    box = Outbox(tmp_path)
    box.put(OutboxEntry("wecom", "default", RUN1, "t", "zh", [{"kind": "message", "payload": {
        "msgtype": "markdown", "markdown": {"content": "x" * 5000}}}]))
    result = run(fake, clock, tmp_path, report("# 新报告"))
    assert result.delivered and result.redelivered == 1 and result.errors == []
    assert fake.messages[-1].content == "# 新报告" and len(box) == 0
    assert sum(m.content.count("x") for m in fake.messages[:-1]) >= 5000  # nothing of it lost
    assert all(len(m.content.encode()) <= 4096 for m in fake.messages)


@pytest.mark.parametrize("code", [40058, 44004])
def test_refused_even_after_repair_is_kept_said_and_not_blocking(code: int, fake: FakeWeCom, clock: FakeClock,
                                                                  tmp_path: Path) -> None:
    box = Outbox(tmp_path)
    box.put(OutboxEntry("wecom", "default", RUN1, "t", "zh", [{"kind": "message", "payload": {
        "msgtype": "markdown", "markdown": {"content": "旧报告\x01" + "x" * 3000}}}]))
    fake.fail_next(code, 2)  # the original and its repaired form are both refused
    result = run(fake, clock, tmp_path, report("# 新报告"))
    assert result.rejected == 1 and result.delivered  # this run's own report still goes out
    assert str(code) in result.errors[0] and "rejected" in result.errors[0] and "not resent" in result.errors[0]
    assert "refused by WeCom" in result.describe()
    assert fake.messages[-1].content == "# 新报告" and len(box) == 0 and box.rejected() == 1


def test_backlog_only_run_that_fails_says_so(fake: FakeWeCom, clock: FakeClock, tmp_path: Path) -> None:
    fake.go_down("busy")
    run(fake, clock, tmp_path, report("# 运行 1"))
    flushed = run(fake, clock, tmp_path, None)
    assert flushed.pending == 1 and flushed.messages_sent == 0
    assert "backlog NOT delivered" in flushed.describe() and "kept in the outbox" in flushed.describe()


def test_reports_for_removed_robots_are_kept_and_mentioned(fake: FakeWeCom, clock: FakeClock, tmp_path: Path) -> None:
    Outbox(tmp_path).put(OutboxEntry("wecom", "old-robot", RUN1, "t", "zh", [{"kind": "message", "payload": {
        "msgtype": "markdown", "markdown": {"content": "旧"}}}]))
    result = run(fake, clock, tmp_path, report("# 新"))
    assert "old-robot" in result.errors[0] and len(Outbox(tmp_path)) == 1


def test_atomic_write_leaves_no_partial_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    box = Outbox(tmp_path)
    box.put(OutboxEntry("wecom", "default", RUN1, "t", "zh", [{"kind": "message", "payload": {}}]))
    before = sorted(p.name for p in tmp_path.iterdir())

    def crash(*_a: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError, match="disk full"):
        box.put(OutboxEntry("wecom", "default", RUN2, "t", "zh", [{"kind": "message", "payload": {}}]))
    monkeypatch.undo()
    assert sorted(p.name for p in tmp_path.iterdir()) == before
    assert [e.run_started_at for e in box.pending()] == [RUN1]


def test_crash_leftovers_and_corrupt_files_are_handled(tmp_path: Path) -> None:
    box = Outbox(tmp_path)
    box.put(OutboxEntry("wecom", "default", RUN1, "t", "zh", []))
    stale = tmp_path / ".0001-x.json.tmp-1-abcd"
    stale.write_text("{\"format\": ")
    os.utime(stale, (time.time() - 7200, time.time() - 7200))
    fresh = tmp_path / ".0002-x.json.tmp-2-abcd"
    fresh.write_text("{")
    (tmp_path / "0000-bad.json").write_text("{not json")
    assert [e.run_started_at for e in box.pending()] == [RUN1]
    assert not stale.exists() and fresh.exists()  # a fresh temp file may belong to a concurrent writer
    assert (tmp_path / "0000-bad.bad").exists()


def test_entry_round_trip_and_file_format(tmp_path: Path) -> None:
    box = Outbox(tmp_path)
    entry = OutboxEntry("wecom", "护士站/nurse", RUN1, "标题", "zh", [{"kind": "file", "filename": "r.md",
                                                                      "content": "报告"}], reason="down")
    path = box.put(entry)
    data = json.loads(path.read_text(encoding="utf-8"))
    assert data["format"] == "apimon-outbox/1" and data["steps"][0]["content"] == "报告"
    loaded, = box.pending("wecom", "护士站/nurse")
    assert loaded == entry and "/" not in path.name[20:]


def test_build_notifiers_wires_the_outbox(tmp_path: Path) -> None:
    settings = parse_notify({"outbox_max": 7, "wecom": [{"webhook": KEY, "base_url": "http://127.0.0.1:9"}]})
    notifier, = build_notifiers(settings, default_outbox_dir(tmp_path))
    assert notifier.name == "wecom" and isinstance(notifier, WeComNotifier)
    assert notifier.outbox is not None and notifier.outbox.max_entries == 7
    assert notifier.outbox.directory == tmp_path / ".apimon" / "outbox"
    assert build_notifiers(NotifySettings(), tmp_path) == []


@pytest.mark.parametrize("code", [-1, 93000, 40008, 44004, 40058, 45009, 40007, 40035, 45033])
def test_no_errcode_ever_loses_a_report(code: int, fake: FakeWeCom, clock: FakeClock, tmp_path: Path) -> None:
    if code == 45009:
        fake.rate_limit_next(1000)
    else:
        fake.fail_next(code, 1000)
    result = run(fake, clock, tmp_path, report("# 订单服务失败"))
    box = Outbox(tmp_path)
    assert not result.delivered and len(box) + box.rejected() == 1  # kept somewhere, never dropped
    assert result.errors and str(code) in result.errors[-1]
    said = result.describe()
    assert ("kept in the outbox for the next run" in said) if len(box) else ("rejected/" in said)
    fake._forced.clear()
    fake._rate_burst = 0
    again = run(fake, clock, tmp_path, None)
    if len(box) == 0 and box.rejected() == 1:
        assert again.messages_sent == 0  # refused for its content: kept for a person, not resent
    else:
        assert again.redelivered == 1 and len(fake.messages) == 1
