"""Coexistence with other pytest plugins a team's test venv may hold (issue 19.4).

The retries must not depend on the `flaky` marker name, which the `flaky` package claims too; results and history
must be the same with pytest-randomly, pytest-html, pytest-cov, pytest-asyncio or `--reruns` on the command line.
The plugin-specific tests skip when the plugin is not installed; CI (.ci/run) installs them in a second venv and
runs this file there. They run pytest in a subprocess: the `flaky` package patches pytest's runner module while the
outer test runs, which an in-process inner run would see.
"""

from __future__ import annotations

import importlib.util
import json
import threading

import pytest
from localserver import LocalServer, Response
from test_plugin import write

EXPECTED = {
    "ok": ("passed", None, 1),
    "flip": ("passed", None, 2),  # 503, then 200: retried, passed, flaky
    "missing": ("failed", "not_found", 1),  # not transient: never retried
    "down": ("failed", "unavailable", 2),  # 503 every time: retried once, still failing
}


def serve(srv: LocalServer) -> None:
    lock = threading.Lock()
    seen = {"n": 0}

    def flip(req):
        with lock:
            seen["n"] += 1
            first = seen["n"] == 1
        return Response(503, {}, "busy") if first else {"ok": True}

    srv.route("GET", "/svc/ok", lambda r: {"ok": True})
    srv.route("GET", "/svc/flip", flip)
    srv.route("GET", "/svc/down", lambda r: Response(503, {}, "down"))


def workspace(pytester: pytest.Pytester, srv: LocalServer) -> None:
    serve(srv)
    write(pytester.path, "config.yaml", f"""
        defaults: {{retries: 1, retry_delay: 0}}
        services:
          svc: {{base_url: "{srv.url}/svc"}}
    """)
    write(pytester.path, "pool/svc/api.yaml", """
        - {name: ok, path: /ok}
        - {name: flip, path: /flip}
        - {name: missing, path: /missing}
        - {name: down, path: /down}
    """)


def outcome(pytester: pytest.Pytester, json_name: str = "out/r.json") -> dict[str, tuple]:
    records = json.loads((pytester.path / json_name).read_text(encoding="utf-8"))["results"]
    return {r["name"]: (r["outcome"], r["category"], r["attempts"]) for r in records}


def history(pytester: pytest.Pytester) -> list[tuple]:
    import sqlite3

    with sqlite3.connect(pytester.path / ".apimon" / "state.db") as conn:
        tables = [r[0] for r in conn.execute("select name from sqlite_master where type='table'")]
        rows = []
        for table in sorted(tables):
            cols = [r[1] for r in conn.execute(f"pragma table_info({table})")]
            keep = [c for c in cols if c in ("interface", "key", "nodeid", "outcome", "category", "sub", "status",
                                            "attempts", "state")]
            if keep:
                rows += [(table, *r) for r in conn.execute(f"select {', '.join(keep)} from {table}")]
    return sorted(rows, key=repr)


def test_interface_items_carry_no_flaky_marker(pytester: pytest.Pytester, local_server: LocalServer) -> None:
    workspace(pytester, local_server)
    write(pytester.path, "conftest.py", """
        def pytest_collection_finish(session):
            print("FLAKY-MARKERS", sum(1 for i in session.items if i.get_closest_marker("flaky")))
    """)
    result = pytester.runpytest_subprocess("--apimon", "pool", "--apimon-json", "out/r.json", "-s")
    result.stdout.fnmatch_lines(["*FLAKY-MARKERS 0*"])
    assert outcome(pytester) == EXPECTED
    assert result.parseoutcomes()["rerun"] == 2


PLUGINS = [
    # (id, modules that must be importable, extra pytest arguments)
    ("flaky", ["flaky"], []),
    ("randomly", ["pytest_randomly"], ["-p", "randomly", "-p", "no:cacheprovider"]),
    ("html", ["pytest_html"], ["--html", "out/report.html"]),
    ("cov", ["pytest_cov"], ["--cov", "--cov-report="]),
    ("asyncio-auto", ["pytest_asyncio"], ["-o", "asyncio_mode=auto"]),
    ("reruns-cli", ["pytest_rerunfailures"], ["--reruns", "1"]),
    ("all-at-once", ["flaky", "pytest_randomly", "pytest_html", "pytest_cov", "pytest_asyncio"],
     ["--html", "out/report.html", "--cov", "--cov-report=", "-o", "asyncio_mode=auto", "--reruns", "1"]),
]


@pytest.mark.parametrize(("modules", "extra"), [pytest.param(m, e, id=i) for i, m, e in PLUGINS])
def test_results_and_history_are_the_same_with_the_plugin(pytester: pytest.Pytester, local_server: LocalServer,
                                                         modules: list[str], extra: list[str]) -> None:
    missing = [m for m in modules if importlib.util.find_spec(m) is None]
    if missing:
        pytest.skip(f"not installed in this venv: {', '.join(missing)} (.ci/run installs them in a second venv)")
    workspace(pytester, local_server)
    result = pytester.runpytest_subprocess("--apimon", "pool", "--apimon-json", "out/r.json", *extra)
    assert "unexpected keyword" not in result.stdout.str() + result.stderr.str()
    assert outcome(pytester) == EXPECTED
    assert result.ret == 1
    with_plugin = history(pytester)
    assert len(with_plugin) >= 2 * len(EXPECTED)  # a result row and an alert state per interface
    # the same workspace afresh, without the plugin: the same results and the same history
    for name in ("out", ".apimon"):
        import shutil

        shutil.rmtree(pytester.path / name)
    serve(local_server)  # the flipping endpoint starts over
    # without: the plugins that act merely by being installed are blocked, the others' options are left out
    without = [arg for m in modules if m in ("flaky", "pytest_randomly")
               for arg in ("-p", "no:" + m.removeprefix("pytest_"))]
    pytester.runpytest_subprocess("--apimon", "pool", "--apimon-json", "out/r.json", *without)
    assert outcome(pytester) == EXPECTED
    assert history(pytester) == with_plugin


@pytest.mark.parametrize("extra", [[], ["-n", "2"]], ids=["inprocess", "xdist"])
def test_users_own_flaky_tests_keep_working_with_the_flaky_package(pytester: pytest.Pytester,
                                                                    local_server: LocalServer,
                                                                    extra: list[str]) -> None:
    if importlib.util.find_spec("flaky") is None:
        pytest.skip("flaky is not installed in this venv (.ci/run installs it in a second venv)")
    workspace(pytester, local_server)
    write(pytester.path, "pool/svc/test_own.py", """
        import pytest
        calls = []

        @pytest.mark.flaky(max_runs=3, min_passes=1)
        def test_sometimes():
            calls.append(1)
            assert len(calls) >= 2
    """)
    result = pytester.runpytest_subprocess("--apimon", "pool", "--apimon-json", "out/r.json", *extra)
    assert "unexpected keyword" not in result.stdout.str()
    assert outcome(pytester) == EXPECTED
    outcomes = result.parseoutcomes()
    assert outcomes["passed"] == 3 and outcomes["failed"] == 2
