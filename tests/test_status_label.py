"""The status label in front of a problem line ('[持续，自 04:00 起；24h 可用率 50.0%]', alerts.build_extras) is
well formed for every combination: not checked (no alert decision) / known down / circuit open / new / ongoing /
flapping, with and without 24 h history and a P95 trend, zh and en — never an empty part before or after a
separator, never '[]'. The terminal and the Markdown report show it as built."""

from __future__ import annotations

import re

from hypothesis import given
from hypothesis import strategies as st

from pytest_apimon.alerts import build_extras
from pytest_apimon.categories import Category, Outcome
from pytest_apimon.policy import OPEN, Decision, Kind, RunMemory, Verdict
from pytest_apimon.report import render_markdown, render_terminal, status_label
from pytest_apimon.results import InterfaceResult, RunResult
from pytest_apimon.state import Availability, LatencyTrend

NOW = 1_780_000_000.0
KEY = "svc/orders"


class History:
    """The two StateStore reads build_extras makes, with fixed answers."""

    def __init__(self, avail: Availability | None, trend: LatencyTrend | None) -> None:
        self.avail, self.trend = avail, trend

    def availability(self, env: str, *, since: float, until: float | None = None, keys=None) -> dict:
        return {KEY: self.avail} if self.avail is not None else {}

    def latency_trend(self, env: str, *, now: float, window: float = 0, keys=None) -> dict:
        return {KEY: self.trend} if self.trend is not None else {}


def result(kind: str) -> InterfaceResult:
    base = {"nodeid": "pool/svc/api.json::orders", "service": "svc", "module": "api", "name": "orders",
            "method": "GET", "url": "http://127.0.0.1:1/orders", "key": KEY}
    if kind == "unchecked":  # the run ended without it (a lost worker); its stored state says down
        return InterfaceResult(**base, outcome=Outcome.SKIPPED, unchecked=True, known_down=True,
                               reason="worker 'gw0' crashed; not checked")
    if kind == "circuit":
        return InterfaceResult(**base, outcome=Outcome.SKIPPED, circuit_open=True, reason="circuit open")
    return InterfaceResult(**base, outcome=Outcome.FAILED, category=Category.SERVER_ERROR, status=503,
                           reason="HTTP 503", elapsed_ms=12.0)


def decision(kind: str) -> Decision | None:
    if kind == "unchecked":
        return None  # policy.evaluate is not given unchecked results: no decision
    if kind == "circuit":
        return Decision(KEY, "svc", Kind.ONGOING, since=NOW - 3600, runs=5, breaker=OPEN, next_probe_at=NOW + 600,
                        circuit_skipped=True)
    return Decision(KEY, "svc", Kind(kind), notify=kind != "ongoing", since=NOW - 600, runs=3, changes=4)


def label_for(kind: str, avail: Availability | None, trend: LatencyTrend | None, lang: str) -> tuple[RunResult, str]:
    run = RunResult(env="default", started_at=NOW - 5, finished_at=NOW, results=[result(kind)])
    d = decision(kind)
    verdict = Verdict({}, [d] if d else [], RunMemory())
    extras = build_extras(run, verdict, History(avail, trend), lang)  # type: ignore[arg-type]
    return run, extras.notes.get(run.results[0].nodeid, "")


def well_formed(label: str, lang: str) -> None:
    sep = "；" if lang == "zh" else "; "
    assert label != "[]"
    if not label:
        return
    assert label.startswith("[") and label.endswith("]"), label
    parts = label[1:-1].split(sep)
    assert all(p.strip() and p == p.strip() for p in parts), label
    assert not re.search(r"^\[[；;]|[；;]\s*\]$|[；;]\s*[；;]", label), label


availability = st.one_of(st.none(), st.builds(Availability, st.integers(0, 40), st.integers(0, 40))
                         .filter(lambda a: a.passed <= a.checks))
trend = st.one_of(st.none(), st.builds(LatencyTrend, st.one_of(st.none(), st.floats(1, 5000)),
                                       st.one_of(st.none(), st.floats(1, 5000))))


@given(kind=st.sampled_from(["unchecked", "circuit", "new", "ongoing", "flapping"]), avail=availability,
       trend=trend, lang=st.sampled_from(["zh", "en"]))
def test_label_is_well_formed_for_every_combination(kind: str, avail: Availability | None,
                                                    trend: LatencyTrend | None, lang: str) -> None:
    run, label = label_for(kind, avail, trend, lang)
    well_formed(label, lang)
    history = avail is not None and avail.checks >= 2
    if kind != "unchecked":
        assert label, "an alert decision always has a label"
    else:
        assert bool(label) == (history or (trend is not None and trend.change is not None
                                           and trend.current_p95 is not None))
    if label:  # the reports show it as built, in front of the problem
        assert label in render_terminal(run, lang, extras=build_extras(
            run, Verdict({}, [d for d in [decision(kind)] if d], RunMemory()), History(avail, trend), lang))


def test_unchecked_known_down_with_history_example() -> None:
    """The red team's example: not checked, last known down, 24 h history 50 %."""
    for lang, want in (("zh", "[24h 可用率 50.0%]"), ("en", "[24h availability 50.0%]")):
        run, label = label_for("unchecked", Availability(4, 2), None, lang)
        assert label == want
        extras = build_extras(run, Verdict({}, [], RunMemory()), History(Availability(4, 2), None), lang)
        terminal = render_terminal(run, lang, extras=extras)
        markdown = render_markdown(run, lang, extras=extras)
        for text in (terminal, markdown):
            assert "[；" not in text and "[; " not in text
            assert want in text
        # The problem line still says why it is listed.
        assert ("未检查，最后已知为故障" if lang == "zh" else "not checked, last known down") in markdown


def test_unchecked_without_history_has_no_label() -> None:
    for lang in ("zh", "en"):
        run, label = label_for("unchecked", None, None, lang)
        assert label == ""
        extras = build_extras(run, Verdict({}, [], RunMemory()), History(None, None), lang)
        assert "[]" not in render_terminal(run, lang, extras=extras)


def test_status_label_joins_only_non_empty_parts() -> None:
    assert status_label(["", "24h 可用率 50.0%"], "zh") == "[24h 可用率 50.0%]"
    assert status_label(["新告警", "", "P95 80 ms (+20%)"], "zh") == "[新告警；P95 80 ms (+20%)]"
    assert status_label(["NEW", " ", "24h availability 50.0%"], "en") == "[NEW; 24h availability 50.0%]"
    assert status_label(["", " "], "en") == ""
    assert status_label([], "zh") == ""
