"""Every WeCom message is within its byte limit by construction (issue 14, requirement 2): reports, summaries,
digests, notes and stored backlogs, whatever their content."""

from __future__ import annotations

from fake_wecom import KEY
from hypothesis import given, settings
from hypothesis import strategies as st

from pytest_apimon.notify import Notification
from pytest_apimon.notify.settings import parse_notify
from pytest_apimon.notify.wecom_messages import LIMITS, build_steps, fit, repair_step, with_note

_TOKENS = st.sampled_from([*"ab 中文接口😀\n#`*<>[]()", '<font color="warning">', "</font>", "**", "\n\n## ", "- ",
                           "x" * 300, "很长的一行" * 200])
_DOC = st.lists(_TOKENS, min_size=0, max_size=300).map("".join)


def _sizes(steps: list[dict]) -> list[tuple[str, int]]:
    out = []
    for step in steps:
        payload = step.get("payload")
        if payload:
            kind = payload["msgtype"]
            out.append((kind, len(payload[kind].get("content", "").encode("utf-8"))))
    return out


@settings(max_examples=60, deadline=None)
@given(markdown=_DOC, summary=_DOC, msgtype=st.sampled_from(["markdown", "markdown_v2"]),
       max_messages=st.integers(1, 6), failed=st.integers(0, 3))
def test_every_built_message_fits(markdown: str, summary: str, msgtype: str, max_messages: int,
                                  failed: int) -> None:
    cfg = parse_notify({"max_messages": max_messages, "wecom": [
        {"webhook": KEY, "message_type": msgtype, "mention": {"userids": ["zhangsan", "@all"],
                                                              "mobiles": ["13800001111"]}}]})
    n = Notification(title="【prod】接口巡检：" + "很长的标题" * 40, markdown=markdown, summary=summary,
                     run_started_at=1_700_000_000.0, failed=failed)
    steps = build_steps(cfg.wecom[0], n, cfg.max_messages)
    for kind, size in _sizes(steps):
        assert 0 < size <= LIMITS[kind]
    noted, _ = with_note(steps, "（补发：原始运行时间 2026-11-28 04:00:00）", msgtype)
    for kind, size in _sizes(noted):
        assert size <= LIMITS[kind]


@settings(max_examples=40, deadline=None)
@given(content=st.text(min_size=1, max_size=3000).map(lambda s: s * 3))
def test_fit_and_repair_never_exceed_and_never_lose_the_text(content: str) -> None:
    step = {"kind": "message", "payload": {"msgtype": "markdown", "markdown": {"content": content}}}
    for pieces in (fit(step), repair_step(step, 40058) or [step]):
        for kind, size in _sizes(pieces):
            assert size <= LIMITS[kind]
