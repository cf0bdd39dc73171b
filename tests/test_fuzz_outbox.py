"""Property-based test (hypothesis): a damaged robot outbox (a stored report's file with a field of another
type, a field removed, cut short, any bytes; the dropped-reports counter file likewise) never crashes the next
delivery and never holds back the next run's report: it is delivered, and the damaged file is delivered or set
aside (`*.bad`), never left to block every later run.

Delivery goes to the local fake robot (tests/fake_wecom.py) with a fake clock (no real sleep). The CI default
is a modest number of examples; `APIMON_FUZZ_EXAMPLES=1000 pytest -p no:apimon tests/test_fuzz_outbox.py`
hunts longer.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import pytest
from fake_wecom import FakeClock, FakeWeCom, robot_config
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from pytest_apimon.notify import Notification
from pytest_apimon.notify.outbox import Outbox, OutboxEntry
from pytest_apimon.notify.settings import parse_notify
from pytest_apimon.notify.wecom import WeComNotifier

pytestmark = pytest.mark.integration

FUZZ = settings(max_examples=int(os.environ.get("APIMON_FUZZ_EXAMPLES", "40")), deadline=None,
                suppress_health_check=[HealthCheck.too_slow])
RUN1 = time.mktime((2026, 11, 28, 4, 0, 0, 0, 0, -1))

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**64), 2**64) | st.floats(allow_nan=True)
    | st.sampled_from(["", "wecom", "default", "zh", "en", "markdown", "file", "text", "\ud800", "x" * 300])
    | st.text(max_size=8),
    lambda kids: st.lists(kids, max_size=3) | st.dictionaries(
        st.sampled_from(["kind", "msgtype", "content", "filename", "markdown", "text", "mentions"])
        | st.text(max_size=5), kids, max_size=3),
    max_leaves=10)
FIELDS = ["format", "notifier", "target", "run_started_at", "title", "lang", "steps", "reason", "stored_at",
          "attempts", "awaiting_run", "noted"]


def notifier(fake: FakeWeCom, clock: FakeClock, box: Path) -> WeComNotifier:
    settings = parse_notify({"outbox_max": 50, "wecom": [robot_config(fake)]})
    return WeComNotifier(settings, Outbox(box, settings.outbox_max), clock=clock.now, sleep=clock.sleep)


def report(text: str, started: float = RUN1) -> Notification:
    return Notification(title="【prod】接口监控", markdown=text, summary=text, run_started_at=started, lang="zh",
                        failed=1)


@st.composite
def damage(draw: st.DrawFn) -> tuple[str, Any]:
    how = draw(st.sampled_from(["field", "field", "drop", "cut", "bytes", "steps"]))
    if how in ("field", "drop"):
        return how, (draw(st.sampled_from(FIELDS)), draw(json_values))
    if how == "cut":
        return how, draw(st.floats(0, 1))
    if how == "steps":
        return how, draw(st.lists(json_values, max_size=3))
    return how, draw(st.binary(max_size=100))


@FUZZ
@given(hurt=damage(), dropped=st.none() | json_values)
# What the first hunts found (300 and 1000 examples): each made every later send() raise, so no report of
# any later run reached the group until someone deleted the file.
@example(hurt=("cut", 0.0), dropped={"kind": None})  # the dropped-reports counter: int(None)
@example(hurt=("field", ("lang", [])), dropped=None)  # unhashable language in the delayed note
@example(hurt=("field", ("run_started_at", None)), dropped=None)  # time of the delayed note
@example(hurt=("field", ("target", [])), dropped=None)  # the robot lookup
@example(hurt=("steps", [{}]), dropped=None)  # a message without its kind
@example(hurt=("steps", [{"kind": "\ud800"}]), dropped=None)  # a lone surrogate: cannot be written back
# Found by the red team: a time past what datetime renders (valid JSON) made the delayed note raise
# OverflowError, so this run's own report stayed in the outbox too and the terminal said nothing of WeCom.
@example(hurt=("field", ("run_started_at", 1e308)), dropped=None)
@example(hurt=("field", ("run_started_at", 10**20)), dropped=None)
@example(hurt=("field", ("run_started_at", -(2**40))), dropped=None)
def test_a_damaged_outbox_never_holds_back_the_next_report(hurt: tuple[str, Any], dropped: Any) -> None:
    clock = FakeClock()
    with FakeWeCom(clock=clock.now) as fake, _tmp() as box:
        fake.go_down("busy")
        assert notifier(fake, clock, box).send(report("# 第一次运行：订单服务失败")).stored_in_outbox
        stored, = box.glob("*.json")
        how, what = hurt
        text = stored.read_text("utf-8")
        if how in ("field", "drop", "steps"):
            data = json.loads(text)
            if how == "field":
                data[what[0]] = what[1]
            elif how == "drop":
                data.pop(what[0], None)
            else:
                data["steps"] = what
            stored.write_bytes(json.dumps(data, allow_nan=True).encode("utf-8", "surrogatepass"))
        elif how == "cut":
            stored.write_text(text[:int(what * len(text))], "utf-8")
        else:
            stored.write_bytes(what)
        if dropped is not None:
            (box / "_dropped.json").write_bytes(json.dumps(dropped, allow_nan=True).encode("utf-8", "surrogatepass"))
        fake.come_back()
        result = notifier(fake, clock, box).send(report("# 第二次运行：全部恢复", started=RUN1 + 900))
        assert result.delivered
        assert any("第二次运行" in m.content for m in fake.messages)
        # Nothing is left in the outbox that the next run would choke on: delivered, set aside, or loadable.
        for entry in Outbox(box).pending():
            assert isinstance(entry, OutboxEntry)
        again = notifier(fake, clock, box).send(report("# 第三次运行", started=RUN1 + 1800))
        assert again.delivered


class _tmp:
    """A fresh temp folder per example (hypothesis runs many examples inside one test function)."""

    def __enter__(self) -> Path:
        import tempfile
        self._dir = tempfile.TemporaryDirectory()
        return Path(self._dir.name)

    def __exit__(self, *exc: object) -> None:
        self._dir.cleanup()
