"""The first screen (the one message an on-call engineer reads on a phone) says why it came, on one short line
under the verdict: docs/state-and-alerts.md "Every message says why it was sent". A count per kind, not the
names (the problem lines under it name them), so it stays one line whatever the number of interfaces, and the
screen stays within its line budget (report.FIRST_SCREEN_LINES) and the WeCom byte limit (4096 bytes)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pytest_apimon.alerts import TRIGGER_WORDS, trigger_line
from pytest_apimon.notify.base import Notification
from pytest_apimon.notify.layout import plan
from pytest_apimon.policy import Trigger
from pytest_apimon.report import FIRST_SCREEN_LINES, Extras, render_first_screen
from pytest_apimon.results import InterfaceResult, RunResult

T0 = 1_780_000_000.0
WECOM_MARKDOWN_BYTES = 4096  # the robot API rejects markdown.content above 4096 UTF-8 bytes (errcode 40058)


def failing_run(n: int) -> RunResult:
    results = [InterfaceResult(nodeid=f"p/svc{i % 3}/api.yaml::接口{i}", service=f"svc{i % 3}", module="api",
                               name=f"接口{i}", method="GET", url=f"https://svc{i % 3}.example.com/{i}",
                               outcome="failed", category="server_error", status=500, elapsed_ms=9.0)
               for i in range(n)]
    return RunResult(T0, T0 + 5, "prod", results)


@pytest.mark.parametrize(("found", "zh", "en"), [
    ([Trigger("new", ("svc/a", "svc/b"))], "**触发原因**：新问题（2）", "**Why this message**: new problem (2)"),
    ([Trigger("reminder", ("svc/a",))], "**触发原因**：提醒：仍未恢复（1）",
     "**Why this message**: reminder: still down (1)"),
    ([Trigger("recovered", ("svc/a",))], "**触发原因**：已恢复（1）", "**Why this message**: recovered (1)"),
    ([Trigger("incomplete")], "**触发原因**：监控不完整", "**Why this message**: monitoring incomplete"),
    ([Trigger("incomplete_recovered"), Trigger("recovered", ("svc/a",))], "**触发原因**：监控已恢复完整；已恢复（1）",
     "**Why this message**: monitoring complete again; recovered (1)"),
])
def test_short_trigger_line_counts_per_kind(found: list[Trigger], zh: str, en: str) -> None:
    assert trigger_line(found, "zh", short=True) == zh
    assert trigger_line(found, "en", short=True) == en


@given(kinds=st.lists(st.sampled_from(sorted(TRIGGER_WORDS)), unique=True, max_size=4),
       n=st.integers(0, 400), lang=st.sampled_from(["zh", "en"]))
def test_short_trigger_line_is_one_line_whatever_the_number_of_interfaces(kinds: list[str], n: int,
                                                                          lang: str) -> None:
    found = [Trigger(k, tuple(f"svc/itf-{i}" for i in range(n))) for k in kinds]
    line = trigger_line(found, lang, short=True)
    assert "\n" not in line and (line == "") == (not kinds)
    assert "itf-" not in line  # counted, never listed
    assert len(line.encode("utf-8")) < 300


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_first_screen_carries_the_trigger_within_its_budget(lang: str) -> None:
    run = failing_run(40)
    found = [Trigger("new", tuple(f"svc0/接口{i}" for i in range(30))), Trigger("reminder", ("svc1/接口1",)),
             Trigger("incomplete")]
    heading = "【prod】接口巡检：40 个失败"
    trigger = trigger_line(found, lang, short=True)
    text = render_first_screen(run, lang, heading, extras=Extras(), trigger=trigger)
    lines = text.splitlines()
    assert lines[2] == trigger  # right under the verdict and the counts
    assert len(lines) <= FIRST_SCREEN_LINES - 1  # the notifier adds the pointer line
    assert ("另有" if lang == "zh" else "more") in lines[-1]
    # One WeCom message, under the byte limit, the trigger line included.
    n = Notification(title=heading, markdown="", summary="", run_started_at=T0, lang=lang, first_screen=text,
                     details="**x · 详情**\n\n- y")
    layout = plan(n, WECOM_MARKDOWN_BYTES, 5, can_attach=True, filename="r.md")
    assert trigger in layout.first
    assert len(layout.first.encode("utf-8")) <= WECOM_MARKDOWN_BYTES
    assert len(layout.first.splitlines()) <= FIRST_SCREEN_LINES


def test_first_screen_without_a_trigger_is_unchanged() -> None:
    run = failing_run(2)
    with_none = render_first_screen(run, "zh", "t", extras=Extras())
    assert "触发原因" not in with_none
    assert with_none == render_first_screen(run, "zh", "t")
