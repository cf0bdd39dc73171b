"""In-process concurrency, background retries through pytest-rerunfailures, hang guard, JUnit per interface."""

from __future__ import annotations

import json
import threading
import xml.etree.ElementTree as ET

import pytest
from localserver import LocalServer, Response
from test_plugin import XDIST, write


def config(pytester: pytest.Pytester, srv: LocalServer, extra: str = "") -> None:
    write(pytester.path, "config.yaml", f"""
        defaults:
          retries: 3
          retry_delay: 0.3
          backoff_factor: 2
        {extra}
        services:
          svc:
            base_url: {srv.url}/svc
    """)


def flaky_routes(srv: LocalServer, n: int, failures: int) -> None:
    seen: dict[str, int] = {}
    lock = threading.Lock()

    def handler(req):
        with lock:
            seen[req.path] = seen.get(req.path, 0) + 1
            count = seen[req.path]
        return Response(503, {}, "busy") if count <= failures else {"ok": True}

    for i in range(n):
        srv.route("GET", f"/svc/f{i}", handler)


@pytest.mark.parametrize("extra", XDIST)
def test_transient_failures_retried_and_reported_flaky(pytester, local_server, extra) -> None:
    flaky_routes(local_server, 6, failures=2)
    local_server.route("GET", "/svc/missing", lambda r: Response(404, {}, "no"))
    config(pytester, local_server)
    docs = [{"name": f"f{i}", "path": f"/f{i}"} for i in range(6)] + [{"name": "missing", "path": "/missing"}]
    write(pytester.path, "pool/svc/api.json", json.dumps(docs))
    result = pytester.runpytest("--apimon", "pool", "--apimon-json", "r.json", "--junitxml", "j.xml", *extra)
    result.assert_outcomes(passed=6, failed=1)
    assert result.parseoutcomes()["rerun"] == 12  # 6 interfaces x 2 failed attempts; the 404 is not retried
    assert local_server.count("/svc/missing") == 1
    records = {r["name"]: r for r in json.loads((pytester.path / "r.json").read_text("utf-8"))["results"]}
    assert records["f0"]["attempts"] == 3 and records["f0"]["flaky"] is True
    assert records["missing"]["attempts"] == 1 and records["missing"]["category"] == "not_found"
    result.stdout.fnmatch_lines(["*重试后通过 (6)*"])
    cases = list(ET.parse(pytester.path / "j.xml").getroot().iter("testcase"))
    assert sorted(c.get("name") for c in cases) == sorted(records)  # one testcase per interface
    f0 = next(c for c in cases if c.get("name") == "f0")
    props = {p.get("name"): p.get("value") for p in f0.iter("property")}
    assert props["attempts"] == "3" and props["flaky"] == "true" and f0.find("failure") is None


class InFlight:
    """Counts requests in flight at the server; `gate(n)` holds each request until `n` are in flight at once
    (or `patience` seconds pass: only a hang guard — a run that never gets there fails the count, not the clock)."""

    def __init__(self, patience: float = 20.0) -> None:
        self.now = self.peak = 0
        self.patience = patience
        self._lock = threading.Lock()
        self._reached = threading.Event()

    def gate(self, n: int) -> None:
        with self._lock:
            self.now += 1
            self.peak = max(self.peak, self.now)
            if self.now >= n:
                self._reached.set()
        if not self._reached.wait(self.patience):
            self._reached.set()  # give up waiting once, for everyone: the assertion on `peak` reports it
        with self._lock:
            self.now -= 1


def test_retries_of_different_interfaces_overlap(pytester, local_server) -> None:
    # 20 interfaces each failing twice. Retries scheduled in the background overlap: all 20 second attempts are in
    # flight at once. Retries queued behind each other (one item's backoff after another's) never get there.
    retries = InFlight()
    seen: dict[str, int] = {}
    lock = threading.Lock()

    def handler(req):
        with lock:
            seen[req.path] = seen.get(req.path, 0) + 1
            count = seen[req.path]
        if count == 2:
            retries.gate(20)
        return Response(503, {}, "busy") if count <= 2 else {"ok": True}

    for i in range(20):
        local_server.route("GET", f"/svc/f{i}", handler)
    config(pytester, local_server)
    write(pytester.path, "pool/svc/api.json", json.dumps([{"name": f"f{i}", "path": f"/f{i}"} for i in range(20)]))
    result = pytester.runpytest("--apimon", "pool")
    result.assert_outcomes(passed=20)
    assert retries.peak == 20
    assert seen == {f"/svc/f{i}": 3 for i in range(20)}


def test_requests_run_concurrently_and_report_in_order(pytester, local_server) -> None:
    flight = InFlight()

    def slow(req):
        flight.gate(10)
        return {"ok": True}

    for i in range(20):
        local_server.route("GET", f"/svc/s{i}", slow)
    config(pytester, local_server)
    write(pytester.path, "pool/svc/api.json", json.dumps([{"name": f"s{i:02d}", "path": f"/s{i}"} for i in range(20)]))
    result = pytester.runpytest("--apimon", "pool", "-v", "--apimon-concurrency", "10")
    result.assert_outcomes(passed=20)
    assert flight.peak == 10  # as many in flight as allowed, never more (sequential would be 1)
    lines = [ln for ln in result.stdout.lines if "::s" in ln and "PASSED" in ln]
    assert [ln.split("::")[1].split()[0] for ln in lines] == [f"s{i:02d}" for i in range(20)]


def test_per_host_cap(pytester, local_server) -> None:
    flight = InFlight()

    def slow(req):
        flight.gate(3)
        return {"ok": True}

    for i in range(12):
        local_server.route("GET", f"/svc/s{i}", slow)
    config(pytester, local_server, extra="")
    write(pytester.path, "config.yaml", (pytester.path / "config.yaml").read_text().replace(
        "backoff_factor: 2", "backoff_factor: 2\n  concurrency: 8\n  max_per_host: 3"))
    write(pytester.path, "pool/svc/api.json", json.dumps([{"name": f"s{i}", "path": f"/s{i}"} for i in range(12)]))
    pytester.runpytest("--apimon", "pool").assert_outcomes(passed=12)
    assert flight.peak == 3  # the host's cap, reached and never passed (the overall limit is 8)


class ReleaseAfterStop:
    """An in-process plugin for the inner run: holds the slow requests until the item that hit -x has finished
    its whole protocol (an outer wrapper: the plugin's own wrapper has told the runner to stop by then)."""

    def __init__(self) -> None:
        self.stopped = threading.Event()

    @pytest.hookimpl(wrapper=True, tryfirst=True)
    def pytest_runtest_protocol(self, item: pytest.Item, nextitem: pytest.Item | None) -> object:
        try:
            return (yield)
        finally:
            if item.session.shouldfail or item.session.shouldstop:
                self.stopped.set()


def test_exitfirst_stops_issuing_requests(pytester, local_server) -> None:
    release = ReleaseAfterStop()

    def slow(req):
        release.stopped.wait(20)  # hang guard only
        return {"ok": True}

    local_server.route("GET", "/svc/bad", lambda r: Response(404, {}, "no"))
    for i in range(40):
        local_server.route("GET", f"/svc/s{i}", slow)
    config(pytester, local_server)
    docs = [{"name": "bad", "path": "/bad"}] + [{"name": f"s{i}", "path": f"/s{i}"} for i in range(40)]
    write(pytester.path, "pool/svc/api.json", json.dumps(docs))
    result = pytester.runpytest("--apimon", "pool", "-x", "--apimon-concurrency", "4", plugins=[release])
    result.assert_outcomes(failed=1)
    sent = sum(local_server.count(f"/svc/s{i}") for i in range(40))
    # 4 in flight at most: `bad` and 3 more, and the slot `bad` frees may go to a 4th before pytest reports the
    # failure. Those finish; nothing is issued after the stop.
    assert sent in (3, 4), sent


@pytest.mark.parametrize("extra", [[], ["-n", "2", "--dist", "loadscope"]], ids=["prefetched", "checks-itself"])
def test_hang_guard_marker_only_where_the_item_checks_itself(pytester, local_server, extra) -> None:
    """A prefetched interface waits on the Runner, whose own deadline is its hang guard: no pytest-timeout marker
    (it cost ~0.1 ms per item). Where the item checks itself (--dist loadscope: no prefetch) it gets one."""
    local_server.route("GET", "/svc/ok", lambda r: {"ok": True})
    config(pytester, local_server)
    write(pytester.path, "pool/svc/api.yaml", "- {name: ok, path: /ok, timeout: 2}\n")
    pytester.makeconftest("""
        def pytest_runtest_setup(item):  # on an xdist worker too (its output is not shown: a file)
            m = item.get_closest_marker("timeout")
            (item.config.rootpath / "marker.txt").write_text(repr(None if m is None else m.kwargs))
    """)
    result = pytester.runpytest("--apimon", "pool", *extra)
    result.assert_outcomes(passed=1)
    seen = (pytester.path / "marker.txt").read_text()
    assert seen == ("{'method': 'signal', 'func_only': True}" if extra else "None")


def test_reruns_selected_by_exception_type(pytester, local_server) -> None:
    local_server.route("GET", "/svc/ok", lambda r: {"ok": True})
    config(pytester, local_server)
    write(pytester.path, "pool/svc/api.yaml", "- {name: ok, path: /ok}\n")
    pytester.makeconftest("""
        def pytest_collection_finish(session):
            settings = session.config.pluginmanager.get_plugin("apimon-reruns").settings
            print("RERUN", [c.__name__ for c in settings["only_rerun"]], settings["reruns"])
    """)
    result = pytester.runpytest("--apimon", "pool", "-s")
    result.stdout.fnmatch_lines(["RERUN ['TransientFailure'] 3"])


@pytest.mark.parametrize("extra", XDIST)
def test_user_only_rerun_replaces_the_transient_filter(pytester, local_server, extra) -> None:
    # --only-rerun from the CLI is the user's choice: a 404 (not transient) is rerun when the user asks for it.
    local_server.route("GET", "/svc/missing", lambda r: Response(404, {}, "no"))
    local_server.route("GET", "/svc/busy", lambda r: Response(503, {}, "busy"))
    config(pytester, local_server)
    write(pytester.path, "pool/svc/api.json", json.dumps([{"name": "missing", "path": "/missing"},
                                                         {"name": "busy", "path": "/busy"}]))
    result = pytester.runpytest("--apimon", "pool", "--only-rerun", r"\[not_found\]", "--reruns-delay", "0", *extra)
    result.assert_outcomes(failed=2)
    assert local_server.count("/svc/missing") == 4
    assert local_server.count("/svc/busy") == 1


def test_user_rerun_except_applies_on_top(pytester, local_server) -> None:
    local_server.route("GET", "/svc/missing", lambda r: Response(404, {}, "no"))
    local_server.route("GET", "/svc/busy", lambda r: Response(503, {}, "busy"))
    local_server.route("GET", "/svc/broken", lambda r: Response(500, {}, "oops"))
    config(pytester, local_server)
    write(pytester.path, "pool/svc/api.json", json.dumps([{"name": n, "path": f"/{n}"}
                                                         for n in ("missing", "busy", "broken")]))
    result = pytester.runpytest("--apimon", "pool", "--rerun-except", r"\[unavailable\]", "--reruns-delay", "0")
    result.assert_outcomes(failed=3)
    assert local_server.count("/svc/missing") == 1  # not transient: never rerun
    assert local_server.count("/svc/busy") == 1  # transient, but excluded by the user
    assert local_server.count("/svc/broken") == 4
