"""Property-based test (hypothesis): the alert state machine over any sequence of passes and failures, any
thresholds, flapping setting, circuit breaker and maintenance windows, never tells the on-call engineer
something false. Invariants:

- a NEW problem is never announced on a passing run, a RECOVERED only on a passing run;
- RECOVERED is only sent for a problem that was announced (NEW or a FLAPPING start);
- NEW is never announced twice without a RECOVERED (or a flapping episode) in between;
- nothing is announced inside a maintenance window;
- an interface that is down and failing (or skipped by its open circuit) outside a window has been announced;
- after enough passes in a row every announced problem is resolved.

The random-sequence hunt that wrote this test found: flapping ending on a pass while still down announced as
NEW; flapping ending on a failure below failure_threshold, or a failure after a recovery held by a maintenance
window, announced as RECOVERED; and an interface that went down inside a window while its circuit was open
never announced until the next half-open probe (tests/test_policy.py, tests/test_policy_maintenance.py).
"""

from __future__ import annotations

import os

from hypothesis import given, settings
from hypothesis import strategies as st
from test_policy import EVERY, Sim, result

from pytest_apimon.config import ConfigError
from pytest_apimon.policy import DOWN, UP, Kind, evaluate, skips

FUZZ = settings(max_examples=int(os.environ.get("APIMON_FUZZ_EXAMPLES", "300")), deadline=None)


@FUZZ
@given(ft=st.integers(1, 3), st_=st.integers(1, 3), changes=st.integers(0, 5), window=st.integers(2, 12),
       breaker=st.integers(0, 4), cooldown=st.sampled_from(["10m", "30m", "1h"]),
       seq=st.lists(st.tuples(st.booleans(), st.booleans()), min_size=1, max_size=25))
def test_alert_sequence_never_tells_something_false(ft: int, st_: int, changes: int, window: int, breaker: int,
                                                     cooldown: str, seq: list[tuple[bool, bool]]) -> None:
    flapping: dict | bool = {"changes": changes, "window": window} if changes else False
    circuit: dict | bool = {"failures": breaker, "cooldown": cooldown} if breaker else False
    try:
        sim = Sim({"failure_threshold": ft, "success_threshold": st_, "flapping": flapping}, breaker=circuit)
    except ConfigError:
        return  # e.g. more changes than the window can hold: rejected with a message, tested elsewhere
    told: str | None = None  # the announcement still open: "new" or "flapping"
    for passed, held in seq + [(True, False)] * (st_ + window + 8):
        sim.now += EVERY
        outcome = "passed" if passed else "failed"
        if "user/a" in skips(sim.states, sim.settings, sim.now):
            outcome = "skipped"
        v = evaluate(sim.states, [result("a", outcome)], sim.settings, sim.now, sim.memory,
                     maintenance={"user": "window"} if held else {})
        sim.states, sim.memory = v.states, v.memory
        d = v.decision("user/a")
        kind = d.kind if d is not None else None
        assert not (held and d is not None and d.notify)
        if kind == Kind.NEW:
            assert outcome != "passed" and d.notify and told != "new"
            told = "new"
        elif kind == Kind.RECOVERED:
            assert outcome == "passed" and told is not None
            told = None
        elif kind == Kind.FLAPPING and d.notify and not d.remind:
            told = "flapping"
        if sim.states["user/a"].status == DOWN and outcome != "passed" and not held:
            assert told is not None
    state = sim.states["user/a"]
    assert told is None and state.status == UP and not state.alerted
