"""Property-based test (hypothesis): whatever a WeCom robot answers — any HTTP status, a JSON object whose
errcode/errmsg/media_id are of any type or value, JSON that is not an object, any bytes, a body cut short —
the delivery never raises, and a report that was not delivered is kept in the outbox (never lost), with a
line saying why. The robot is a real server on 127.0.0.1 (tests/localserver.py) and the notifier's clock and
sleep are fake (no real wait). `APIMON_FUZZ_EXAMPLES=1000 pytest -p no:apimon tests/test_fuzz_robot_answers.py`
hunts longer.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fake_wecom import KEY, FakeClock
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from localserver import LocalServer, RawConn

from pytest_apimon.notify import Notification
from pytest_apimon.notify.outbox import Outbox
from pytest_apimon.notify.settings import SEND_PATH, UPLOAD_PATH, parse_notify
from pytest_apimon.notify.wecom import WeComNotifier

pytestmark = pytest.mark.integration

FUZZ = settings(max_examples=int(os.environ.get("APIMON_FUZZ_EXAMPLES", "50")), deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
RUN1 = time.mktime((2026, 11, 28, 4, 0, 0, 0, 0, -1))

values = st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats() | st.text(max_size=10) \
    | st.sampled_from([0, -1, 45009, 40058, 44004, 93000, 40007, "0", [], {}])
answers = st.one_of(
    st.sampled_from([b'{"errcode": 0, "errmsg": "ok", "media_id": "m1"}', b'{"errcode": 0, "errmsg": "ok"}',
                     b'{"errcode": 40058, "errmsg": "too long"}', b'{"errcode": 44004, "errmsg": "empty"}',
                     b'{"errcode": 93000, "errmsg": "invalid webhook url"}', b'{"errcode": 45009}']),
    st.fixed_dictionaries({}, optional={"errcode": values, "errmsg": values, "media_id": values}).map(
        lambda d: json.dumps(d, allow_nan=True).encode()),
    st.sampled_from([b"[]", b"null", b"1", b'"ok"', b"", b"{", b"<html>502</html>", b'{"errcode": 0'])
    | st.binary(max_size=60),
)


class Holder:
    status: int = 200
    body: bytes = b""
    cut: bool = False


def reply(holder: Holder) -> Any:
    def handler(conn: RawConn) -> None:
        length = len(holder.body) + (5 if holder.cut else 0)
        conn.send(f"HTTP/1.1 {holder.status} X\r\nContent-Type: application/json\r\nContent-Length: {length}\r\n"
                  f"Connection: close\r\n\r\n".encode() + holder.body)
    return handler


@pytest.fixture(scope="module")
def robot() -> Iterator[tuple[LocalServer, Holder]]:
    holder = Holder()
    with LocalServer() as srv:
        srv.raw("POST", SEND_PATH, reply(holder))
        srv.raw("POST", UPLOAD_PATH, reply(holder))
        yield srv, holder


@FUZZ
@given(status=st.sampled_from([200, 200, 200, 500, 502, 429, 404, 301]) | st.integers(100, 599), body=answers,
       cut=st.booleans(), long=st.booleans())
def test_any_robot_answer_keeps_an_undelivered_report(robot: tuple[LocalServer, Holder], status: int, body: bytes,
                                                      cut: bool, long: bool) -> None:
    srv, holder = robot
    holder.status, holder.body, holder.cut = status, body, cut
    clock = FakeClock()
    text = "# 订单服务失败\n" + ("数据库连接超时\n" * 800 if long else "")  # long: split, or sent as a file
    with tempfile.TemporaryDirectory() as folder:
        box = Path(folder)
        notify = parse_notify({"max_wait": "30s", "wecom": [{"webhook": KEY, "base_url": srv.url}]})
        notifier = WeComNotifier(notify, Outbox(box, 50), clock=clock.now, sleep=clock.sleep)
        result = notifier.send(Notification(title="【prod】接口监控", markdown=text, summary=text,
                                            run_started_at=RUN1, lang="zh", failed=1))
        event(f"delivered={result.delivered} pending={result.pending} rejected={result.rejected}")
        if not result.delivered:
            assert result.errors, result
            kept = list(box.glob("*.json")) + list((box / "rejected").glob("*.json"))
            assert kept, "an undelivered report was lost"
        result.describe("zh").encode("utf-8")
        result.describe("en").encode("utf-8")
        for line in result.errors:
            assert KEY not in line  # the robot's key never reaches a log line
