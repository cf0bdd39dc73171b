"""What the on-call group reads over a scripted day: first screens, mentions by severity, routing, the
number of messages. Drives alerts.finish (the controller's end of run) with a real state folder and the
WeCom fake; runs are simulated every 15 minutes by their timestamps, nothing sleeps."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest
from fake_wecom import KEY, FakeWeCom

from pytest_apimon import alerts
from pytest_apimon.config import Config, load_config
from pytest_apimon.redact import Redactor
from pytest_apimon.report import Extras
from pytest_apimon.results import InterfaceResult, RunResult

KEY2 = "11111111-2222-3333-4444-555555555555"
START = 1_790_000_000.0  # a run every 15 minutes from here
STEP = 900.0


def config(tmp_path: Path, fake: FakeWeCom, extra: str = "") -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(textwrap.dedent(f"""
        env: prod
        services:
          order: {{owner: [zhangsan, "13800001111"], severity: P0}}
          member: {{owner: lisi}}
        notify:
          wecom:
            - {{name: all, webhook: {KEY}, base_url: "{fake.base_url}"}}
            - {{name: member-group, webhook: {KEY2}, base_url: "{fake.base_url}", services: [member]}}
        {extra}
    """), encoding="utf-8")
    return path


def run_at(i: int, down: set[str], names: tuple[str, ...] = ("order/下单", "order/支付", "member/登录")) -> RunResult:
    t = START + i * STEP
    results = []
    for key in names:
        svc, name = key.split("/")
        bad = key in down
        results.append(InterfaceResult(
            nodeid=f"pool/{svc}/api.yaml::{name}", service=svc, module="api", name=name, method="GET",
            url=f"https://{svc}.example.com/{name}", outcome="failed" if bad else "passed",
            category="server_error" if bad else None, reason="HTTP 500 Internal Server Error" if bad else "",
            status=500 if bad else 200, elapsed_ms=12.0, started_at=t))
    return RunResult(t, t + 5, "prod", results)


def record(cfg: Config, run: RunResult, lang: str = "zh") -> tuple[alerts.AlertOutcome, Extras]:
    """The end of one run as a fresh process does it: open the memory at the run's start, finish, close."""
    memory = alerts.Memory.open(cfg, now=run.started_at)
    try:
        return alerts.finish(run, cfg, lang, Redactor(), memory)
    finally:
        memory.close()


def day(cfg_path: Path, script: dict[int, set[str]], runs: int = 96, lang: str = "zh",
        names: tuple[str, ...] = ("order/下单", "order/支付", "member/登录")) -> None:
    """runs every 15 min; script: run index -> the set of failing keys from then on."""
    cfg = load_config(cfg_path)
    down: set[str] = set()
    for i in range(runs):
        down = script.get(i, down)
        record(cfg, run_at(i, down, names), lang)


def reports(fake: FakeWeCom, key: str = KEY) -> list[list[str]]:
    """Per report (first screen + its details messages) the contents, for one robot."""
    out: list[list[str]] = []
    for m in fake.for_key(key):
        if m.msgtype != "markdown":
            continue
        if out and m.content.split("\n", 1)[0].endswith("· 详情**"):
            out[-1].append(m.content)
        else:
            out.append([m.content])
    return out


ENGLISH = re.compile(r"[A-Za-z]{3,}")
ALLOWED = {"HTTP", "DNS", "curl", "GET", "POST", "https", "example", "com", "order", "member", "prod", "zhangsan",
           "lisi"}


def english_words(text: str) -> set[str]:
    text = re.sub(r"`[^`]*`|\(https?://[^)]*\)|<@[^>]*>", "", text)  # code spans, links and mentions are values
    return {w for w in ENGLISH.findall(text) if w not in ALLOWED}


def test_a_typical_outage_day(tmp_path: Path) -> None:
    """order/下单 down 10:00-13:00 (run 40 to 52), member/登录 down 14:00-14:30: per group NEW, one reminder
    an hour, RECOVERED with its duration; routed groups hear only their own services (docs/wecom.md)."""
    with FakeWeCom(keys=[KEY, KEY2]) as fake:
        day(config(tmp_path, fake), {40: {"order/下单"}, 52: set(), 56: {"member/登录"}, 58: set()})
        main, member = reports(fake, KEY), reports(fake, KEY2)
        firsts = [r[0] for r in main]
        # order: NEW, reminders at +1 h and +2 h, RECOVERED at +3 h; member: NEW, RECOVERED (inside 1 h)
        assert len(main) == 6, firsts
        assert "新告警" in firsts[0] and "下单" in firsts[0]
        assert sum(("起，持续" in f or "起，熔断" in f) for f in firsts) == 2  # the two reminders
        assert "下单：已恢复，故障持续 3 小时" in firsts[3]
        assert "登录：已恢复，故障持续 30 分钟" in firsts[5]
        # every first screen fits a phone: <= 8 lines; details only with a NEW, never repeated
        assert all(len(f.splitlines()) <= 8 for f in firsts)
        assert [len(r) for r in main] == [2, 1, 1, 1, 2, 1]
        # the routed group: only member, NEW and its RECOVERED in the same group
        assert len(member) == 2 and all("order" not in m for r in member for m in r)
        assert "新告警" in member[0][0] and "已恢复" in member[1][0]
        # 0 English words in zh mode
        for report in main + member:
            for message in report:
                assert not english_words(message), (english_words(message), message)
        # mentions: the P0 owners on NEW and each reminder, P1 (member, default) owners on NEW only
        texts = [m for m in fake.for_key(KEY) if m.msgtype == "text"]
        assert [sorted(t.payload["text"].get("mentioned_mobile_list", [])) for t in texts] == [["13800001111"]] * 3
        inline = [f for f in firsts if "<@" in f]
        assert [("<@zhangsan>" in f, "<@lisi>" in f) for f in inline] == [(True, False)] * 3 + [(False, True)]


def test_p2_is_never_mentioned_and_flapping_does_not_ping_every_run(tmp_path: Path) -> None:
    with FakeWeCom(keys=[KEY, KEY2]) as fake:
        path = config(tmp_path, fake, "alerts: {flapping: {changes: 3, window: 8}}")
        path.write_text(path.read_text().replace("severity: P0", "severity: P2"), encoding="utf-8")
        flaps = {i: ({"order/下单"} if i % 2 else set()) for i in range(0, 24)}
        day(path, flaps, runs=24)
        firsts = [r[0] for r in reports(fake, KEY)]
        assert not any("<@" in f for f in firsts)
        assert not [m for m in fake.for_key(KEY) if m.msgtype == "text"]
        assert len(firsts) <= 24 * STEP / 3600 + 2  # about one message per reminder interval, not one per run


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_first_screen_stays_short_with_many_problems(lang: str) -> None:
    from pytest_apimon.report import render_first_screen

    names = tuple(f"svc{i % 3}/接口{i}" for i in range(40))
    run = run_at(0, set(names), names)
    text = render_first_screen(run, lang, "【prod】接口巡检：40 个失败")
    lines = text.splitlines()
    assert len(lines) <= 7  # the notifier adds the pointer line
    assert ("另有" if lang == "zh" else "more") in lines[-1]
    assert "svc0 14" in lines[1] or "svc0 14" in lines[1].replace("，", ", ")


KEY3 = "99999999-8888-7777-6666-555555555555"


def test_one_incident_one_thread_and_a_late_group_starts_with_new(tmp_path: Path) -> None:
    """member/登录 down from run 4 to run 12; a catch-all robot 'late' is added at run 6."""
    with FakeWeCom(keys=[KEY, KEY2, KEY3]) as fake:
        path = config(tmp_path, fake)
        late = f'    - {{name: late, webhook: {KEY3}, base_url: "{fake.base_url}"}}\n'
        down: set[str] = set()
        for i in range(16):
            down = {4: {"member/登录"}, 12: set()}.get(i, down)
            if i == 6:
                path.write_text(path.read_text() + late, encoding="utf-8")
            record(load_config(path), run_at(i, down))
        main, member, added = (([r[0] for r in reports(fake, k)]) for k in (KEY, KEY2, KEY3))
        # main and member: NEW (run 4), reminder (run 8, +1 h), RECOVERED (run 12): one thread, one id
        for firsts in (main, member):
            assert len(firsts) == 3, firsts
            ids = {re.search(r"#([0-9a-f]{6})", f).group(1) for f in firsts}  # type: ignore[union-attr]
            assert len(ids) == 1
            # the reminder: ongoing, here behind an open circuit (5 failing runs): 熔断
            assert "新告警" in firsts[0] and "熔断" in firsts[1] and "已恢复，故障持续 2 小时" in firsts[2]
        # the late robot never got the NEW: it gets one at its first run (run 6), then the same thread
        assert len(added) == 3 and "新告警" in added[0] and "已恢复" in added[2]
        assert {re.search(r"#([0-9a-f]{6})", f).group(1) for f in added} == ids  # type: ignore[union-attr]


def test_a_routed_group_never_hears_other_services(tmp_path: Path) -> None:
    with FakeWeCom(keys=[KEY, KEY2]) as fake:
        day(config(tmp_path, fake), {2: {"order/下单", "member/登录"}, 4: {"order/下单"}, 8: set()}, runs=12)
        member = [m for r in reports(fake, KEY2) for m in r]
        assert member and all("order" not in m and "下单" not in m for m in member)
        firsts = [r[0] for r in reports(fake, KEY2)]
        assert "失败：member 1" in firsts[0] and "已恢复" in firsts[-1]
        assert all("<@zhangsan>" not in m for m in member)  # order's owner is not paged in member's group


def test_p0_reminds_at_its_own_interval(tmp_path: Path) -> None:
    with FakeWeCom(keys=[KEY, KEY2]) as fake:
        path = config(tmp_path, fake, "  severity: {P0: {remind_every: 30m}}")  # notify.severity
        assert load_config(path).notify.remind_every == {"P0": 1800.0}
        day(path, {0: {"order/下单"}, 8: set()}, runs=10)  # 2 h down: NEW + 3 reminders at 30 min + RECOVERED
        assert len(reports(fake, KEY)) == 5


def test_english_mode_is_fully_english(tmp_path: Path) -> None:
    with FakeWeCom(keys=[KEY, KEY2]) as fake:
        names = ("order/place", "order/pay", "member/login")
        day(config(tmp_path, fake), {2: {"order/place", "member/login"}, 7: set()}, runs=10, lang="en",
            names=names)
        texts = [m.payload[m.msgtype]["content"] for m in fake.messages]
        assert texts and all(not re.search(r"[\u3000-\u9fff\uff00-\uffef]", t) for t in texts), texts
        assert any("recovered, the outage lasted" in t for t in texts)


def test_unreachable_services_count_in_the_storm_guard(tmp_path: Path) -> None:
    """Both services' processes are down: their logins are refused. That is a storm (network), one line each,
    not a list of 认证失败."""
    with FakeWeCom(keys=[KEY, KEY2]) as fake:
        cfg = load_config(config(tmp_path, fake))
        t = START
        reason = ("service unreachable: the login endpoint refused the connection (POST http://10.0.0.{n}:80/login "
                  "→ connection refused by 10.0.0.{n}:80)")
        results = [InterfaceResult(nodeid=f"pool/{svc}/api.yaml::i{i}", service=svc, module="api", name=f"i{i}",
                                   outcome="failed", category="network", sub="login", reason=reason.format(n=n),
                                   started_at=t)
                   for n, svc in enumerate(("order", "member")) for i in range(3)]
        memory = alerts.Memory.open(cfg, now=t)
        try:
            alerts.finish(RunResult(t, t + 5, "prod", results), cfg, "zh", Redactor(), memory)
            assert memory.verdict is not None and memory.verdict.storm is not None
        finally:
            memory.close()
        first = reports(fake, KEY)[0][0]
        assert "监控机自身的网络或 DNS" in first and "认证失败" not in first
        assert len(first.splitlines()) <= 8 and not english_words(first)


def test_routed_recovery_headline_counts_only_the_groups_services(tmp_path: Path) -> None:
    """Issue 20: everything down, then everything recovered: the member group's headline counts its own
    recovery (1), not the run's (3); the catch-all counts all 3."""
    with FakeWeCom(keys=[KEY, KEY2]) as fake:
        day(config(tmp_path, fake), {0: {"order/下单", "order/支付", "member/登录"}, 3: set()}, runs=4)
        main, member = reports(fake, KEY), reports(fake, KEY2)
        assert main[-1][0].startswith("**【prod】接口巡检：3 个已恢复**"), main[-1][0]
        assert member[-1][0].startswith("**【prod】接口巡检：1 个已恢复**"), member[-1][0]
        assert all("order" not in m for r in member for m in r)


def test_unreachable_service_line_carries_the_incident_ids_its_recovery_names(tmp_path: Path) -> None:
    """Issue 20: when the service's cause line replaces its interface lines on NEW, it names their incident
    ids, so the routed group's later RECOVERED '#id' refers to something it was told."""
    def run(i: int, down: bool) -> RunResult:
        t = START + i * STEP
        results = [InterfaceResult(
            nodeid=f"pool/member/api.yaml::{name}", service="member", module="api", name=name, method="GET",
            url=f"https://member.example.com/{name}", outcome="failed" if down else "passed",
            category="network" if down else None, sub="login" if down else "",
            reason="服务不可达：登录接口连接被拒绝" if down else "", status=None if down else 200,
            elapsed_ms=3.0, started_at=t) for name in ("列表", "详情")]
        return RunResult(t, t + 5, "prod", results)

    with FakeWeCom(keys=[KEY, KEY2]) as fake:
        cfg = load_config(config(tmp_path, fake))
        for i, down in enumerate([True, True, False]):
            memory = alerts.Memory.open(cfg, now=START + i * STEP)
            try:
                alerts.finish(run(i, down), cfg, "zh", Redactor(), memory)
            finally:
                memory.close()
        member = reports(fake, KEY2)
        new, recovered = member[0][0], member[-1][0]
        cause = [ln for ln in new.splitlines() if "member：服务不可达" in ln]
        assert len(cause) == 1 and "(2 个接口)" in cause[0], new
        told = set(re.findall(r"#([0-9a-f]{6})", cause[0]))
        assert len(told) == 2, cause
        assert set(re.findall(r"#([0-9a-f]{6})", recovered)) == told, (new, recovered)


def test_counted_cause_line_is_marked_in_maintenance() -> None:
    """Issue 20: a service's cause line carries the maintenance mark its interface lines carry."""
    from pytest_apimon.report import Extras, render_first_screen, render_terminal

    run = run_at(0, {"member/登录"})
    for r in run.results:
        r.maintenance = "机房割接" if r.service == "member" else ""
    ex = Extras(collapsed={r.nodeid: "member：服务不可达：登录接口连接被拒绝" for r in run.results
                           if r.service == "member"})
    for text in (render_first_screen(run, "zh", "t", extras=ex), render_terminal(run, "zh", extras=ex)):
        assert "[维护中，不告警] member：服务不可达：登录接口连接被拒绝 (1 个接口)" in text, text
