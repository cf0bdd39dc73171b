"""Every message says why it was sent (issue 14, requirement 6): triggers named with their label, one FLAPPING
notice with send_on: failure, digests bounded by the storm collapse and one message, summaries by service."""

from __future__ import annotations

import re

from fake_wecom import KEY
from test_policy import EVERY, Sim, result

from pytest_apimon.alerts import render_digest, title, trigger_line
from pytest_apimon.notify import Notification
from pytest_apimon.notify.settings import parse_notify
from pytest_apimon.notify.wecom_messages import build_steps
from pytest_apimon.policy import message_mode, triggers
from pytest_apimon.redact import Redactor
from pytest_apimon.report import render_markdown
from pytest_apimon.results import RunResult


def run_of(*results, t: float = 1_700_000_000.0) -> RunResult:
    return RunResult(t, t + 1, "prod", list(results))


def test_flapping_start_on_a_passing_run_is_named_in_title_and_trigger() -> None:
    sim = Sim({"flapping": {"changes": 3, "window": 6}, "remind_every": "24h"})
    for o in ["failed", "passed", "failed"]:
        sim.run(result("a", o), result("b"))
    v = sim.run(result("a", "passed"), result("b"))
    mode = message_mode("failure", v)
    found = triggers(v, mode, "failure")
    assert mode == "full" and [t.what for t in found] == ["flapping"]
    run = run_of(result("a", "passed"), result("b"))
    assert title(run, "zh", None, found) == "【prod】接口巡检：1 个接口抖动"
    assert trigger_line(found, "zh") == "**触发原因**：开始抖动 user/a"
    assert "started flapping: user/a" in trigger_line(found, "en")


def test_send_on_failure_flapping_sends_one_notice_then_stays_quiet() -> None:
    sim = Sim({"flapping": {"changes": 3, "window": 10}, "remind_every": "24h"})
    modes = []
    for i in range(12):
        v = sim.run(result("a", "failed" if i % 2 == 0 else "passed"))
        modes.append((message_mode("failure", v), [t.what for t in triggers(v, "full", "failure")]))
    sent = [m for m in modes if m[0] != "none"]
    # NEW, RECOVERED, NEW as the first changes happen, then one FLAPPING notice and silence.
    assert [m[1] for m in sent] == [["new"], ["recovered"], ["new"], ["flapping"]]


def test_reminder_behind_an_open_circuit_is_named() -> None:
    sim = Sim({"remind_every": "30m"}, {"failures": 1, "cooldown": "24h"})
    sim.run(result("a", "failed"))
    skipped = result("a", "skipped")
    skipped.circuit_open = True
    sim.run(skipped)
    v = sim.run(skipped, advance=2 * EVERY)
    found = triggers(v, message_mode("failure", v), "failure")
    assert trigger_line(found, "zh") == "**触发原因**：提醒：熔断中，仍按故障计 user/a"


def test_storm_digest_is_collapsed_and_one_message() -> None:
    sim = Sim()
    failures = [result(f"i{i}", "failed", "network", service=f"s{i % 3}") for i in range(300)]
    sim.run(*failures)
    v = sim.run(*failures)
    assert message_mode("failure", v) == "digest"
    run = run_of(*failures)
    text = render_digest(run, v, "zh", "【prod】接口巡检：300 个失败", Redactor(),
                         trigger="**触发原因**：仍未恢复的问题摘要")
    assert "网络风暴：300 个接口 (s0 100, s1 100, s2 100)" in text
    assert len(text.encode("utf-8")) <= 3800 and "完整报告" not in text
    settings = parse_notify({"max_messages": 3, "wecom": [{"webhook": KEY}]})
    n = Notification(title="t", markdown=text, summary=text, run_started_at=run.started_at, failed=300)
    assert len(build_steps(settings.wecom[0], n, settings.max_messages)) == 1


def test_long_digest_counts_the_rest_per_service() -> None:
    sim = Sim()
    failures = [result(f"interface-with-a-long-name-{i}", "failed", service=f"s{i % 2}") for i in range(200)]
    sim.run(*failures)
    v = sim.run(*failures)
    text = render_digest(run_of(*failures), v, "en", "t", Redactor())
    # how many single lines fit depends on the line length (times carry their zone offset): count the rest
    m = re.search(r"…and (\d+) more \(s1 100, s0 (\d+)\)", text)
    assert len(text.encode("utf-8")) <= 3800 and m is not None and int(m.group(1)) == 100 + int(m.group(2))


def test_summary_gives_per_service_counts_before_the_first_problems() -> None:
    failures = [result(f"i{i}", "failed", service="big" if i < 40 else "small") for i in range(45)]
    text = render_markdown(run_of(*failures), "zh", "t", max_problems=15)
    assert text.index("**按服务**：big 40; small 5") < text.index("big/m · i0**")
    assert "…以及另外 30 个，详见完整报告" in text  # a summary is only ever sent with the full report as a file


def test_a_digest_of_a_recovering_interface_is_not_titled_all_passed() -> None:
    sim = Sim({"success_threshold": 3})
    sim.run(result("a", "failed"))
    sim.run(result("a", "failed"))
    v = sim.run(result("a", "passed"))  # passing, but not yet up again: RECOVERING
    mode = message_mode("failure", v)
    found = triggers(v, mode, "failure")
    assert mode == "digest"
    assert title(run_of(result("a", "passed")), "zh", None, found) == "【prod】接口巡检：1 个未恢复"
    assert trigger_line(found, "zh") == "**触发原因**：仍未恢复的问题摘要 user/a"


def test_digest_of_a_routed_view_lists_and_counts_only_its_services() -> None:
    """Issue 20: every count in a routed robot's message is of its view: the digest of s0's view names no s1."""
    sim = Sim()
    failures = [result(f"i{i}", "failed", service=f"s{i % 2}") for i in range(6)]
    sim.run(*failures)
    v = sim.run(*failures)
    view = run_of(*[r for r in failures if r.service == "s0"])
    text = render_digest(view, v, "en", "t", Redactor())
    assert "s0/" in text and "s1" not in text and "failed 3" in text
