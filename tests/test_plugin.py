"""Plugin behaviour end to end with pytester, against real local HTTP servers, with and without -n 2."""

from __future__ import annotations

import json
import sys
import textwrap
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from localserver import LocalServer, Response, closed_port, sleep_then

XDIST = [pytest.param([], id="inprocess"), pytest.param(["-n", "2"], id="xdist")]


def write(base: Path, rel: str, text: str) -> Path:
    path = base / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
    return path


def serve_shop(srv: LocalServer) -> None:
    tokens = {"tok-123"}

    def login(req):
        body = req.json()
        if body.get("password") == "pw-secret-1":
            return {"code": 0, "data": {"token": "tok-123", "expires_in": 3600}}
        return Response(401, {}, {"code": 401, "msg": "bad credentials"})

    def profile(req):
        auth = req.headers.get("authorization", "")
        if auth.removeprefix("Bearer ") not in tokens:
            return Response(401, {}, {"msg": "no token"})
        return {"code": 0, "data": {"id": 7, "name": "张三", "items": [{"id": 1}]}}

    srv.route("POST", "/user/auth/login", login)
    srv.route("GET", "/user/profile", profile)
    srv.route("GET", "/user/health", lambda r: {"status": "UP"})
    srv.route("GET", "/user/boom", lambda r: Response(500, {}, "Traceback: boom"))
    srv.route("GET", "/user/busy", lambda r: Response(503, {"Retry-After": "5"}, "busy"))
    srv.route("GET", "/user/wrong", lambda r: {"code": 1})
    srv.route("GET", "/user/forbidden", lambda r: Response(403, {}, "no"))
    srv.raw("GET", "/user/slow", sleep_then(3))


def make_workspace(pytester: pytest.Pytester, srv: LocalServer, password: str = "pw-secret-1") -> None:
    base = pytester.path
    write(base, "config.yaml", f"""
        defaults:
          retries: 0
        services:
          user:
            base_url: {srv.url}/user
            auth:
              type: login
              path: /auth/login
              json: {{username: demo, password: "{password}"}}
              token_path: data.token
        logging:
          file: logs/apimon.log
    """)
    write(base, "pool/user/账户.yaml", """
        interfaces:
          - name: 获取用户信息
            path: /profile
            tags: [smoke]
            expect:
              body:
                - {path: "data.items[0].id", equals: 1}
                - {path: data.name, type: string}
          - name: health
            path: /health
            auth: false
    """)
    write(base, "pool/user/broken.json", json.dumps({"interfaces": [
        {"name": "boom", "path": "/boom"},
        {"name": "busy", "path": "/busy"},
        {"name": "missing", "path": "/nope"},
        {"name": "wrong body", "path": "/wrong", "expect": {"body": [{"path": "code", "equals": 0}]}},
        {"name": "forbidden", "path": "/forbidden"},
        {"name": "slow", "path": "/slow", "timeout": 0.5},
        {"name": "refused", "url": f"http://127.0.0.1:{closed_port()}/x", "auth": False},
        {"name": "skipped one", "path": "/health", "skip": "维护中"},
    ]}, ensure_ascii=False))
    write(base, "pool/user/bad.yaml", """
        name: typo
        path: /health
        heders: {X: 1}
    """)


EXPECTED = {
    "获取用户信息": ("passed", None),
    "health": ("passed", None),
    "boom": ("failed", "server_error"),
    "busy": ("failed", "unavailable"),
    "missing": ("failed", "not_found"),
    "wrong body": ("failed", "unexpected"),
    "forbidden": ("failed", "forbidden"),  # 403 is 无权限, not 认证失败
    "slow": ("failed", "timeout"),
    "refused": ("failed", "network"),
    "skipped one": ("skipped", None),
    "typo": ("failed", "invalid_document"),
}


@pytest.mark.parametrize("extra", XDIST)
def test_full_run_classifies_every_interface(pytester: pytest.Pytester, local_server: LocalServer, extra) -> None:
    serve_shop(local_server)
    make_workspace(pytester, local_server)
    result = pytester.runpytest("--apimon", "pool", "--apimon-json", "out/r.json", "--apimon-report", "out/r.md",
                                "--junitxml", "out/junit.xml", *extra)
    result.assert_outcomes(passed=2, failed=8, skipped=1)
    records = json.loads((pytester.path / "out/r.json").read_text(encoding="utf-8"))["results"]
    got = {r["name"]: (r["outcome"], r["category"]) for r in records}
    assert got == EXPECTED
    by_name = {r["name"]: r for r in records}
    assert by_name["slow"]["sub"] in ("read", "total")
    assert by_name["refused"]["sub"] == "refused"
    assert by_name["boom"]["status"] == 500
    assert by_name["获取用户信息"]["elapsed_ms"] is not None
    # one login for the whole in-process run (and at most one per worker under xdist)
    logins = local_server.count("/user/auth/login")
    assert 1 <= logins <= (2 if extra else 1)
    md = (pytester.path / "out/r.md").read_text(encoding="utf-8")
    assert "busy" in md and "pw-secret-1" not in md and "tok-123" not in md
    result.stdout.fnmatch_lines(["*pytest-apimon*"])
    # pytest's failure text in the report language (zh by default); the exception text stays `[unavailable] …`
    result.stdout.fnmatch_lines(
        ["*[[]服务不可用[]] user/broken · busy · GET http://127.0.0.1:*/user/busy → 503 耗时 *"])
    # JUnit: properties per interface and the classified first line as the failure message
    root = ET.parse(pytester.path / "out/junit.xml").getroot()
    cases = {c.get("name"): c for c in root.iter("testcase")}
    assert set(cases) == set(EXPECTED)
    busy = cases["busy"]
    props = {p.get("name"): p.get("value") for p in busy.iter("property")}
    assert props["service"] == "user" and props["category"] == "unavailable" and props["status"] == "503"
    assert props["method"] == "GET" and props["url"].endswith("/user/busy") and props["attempts"] == "1"
    message = busy.find("failure").get("message")
    # the human message in the report language (zh by default); the category property stays the machine name
    assert message.startswith("[服务不可用] user/broken · busy · GET ") and "\n" not in message
    log_text = (pytester.path / "logs/apimon.log").read_text(encoding="utf-8")
    assert "run finished" in log_text and "pw-secret-1" not in log_text


def test_inert_without_apimon(pytester: pytest.Pytester, local_server: LocalServer) -> None:
    make_workspace(pytester, local_server)
    pytester.makepyfile(test_plain="def test_ok():\n    assert True\n")
    result = pytester.runpytest()
    result.assert_outcomes(passed=1)
    assert "pytest-apimon" not in result.stdout.str()


def test_other_items_keep_their_result(pytester: pytest.Pytester, local_server: LocalServer) -> None:
    """plugin.pytest_runtest_protocol drops the result of an interface item once it is reported, and only that:
    another plugin's item with a `result` attribute keeps it, with and without --apimon (inert unless --apimon)."""
    serve_shop(local_server)
    make_workspace(pytester, local_server)
    pytester.makeconftest("""
        import pytest

        class CheckItem(pytest.Item):
            def runtest(self):
                self.result = "kept"

        class CheckFile(pytest.File):
            def collect(self):
                yield CheckItem.from_parent(self, name="one")

        def pytest_collect_file(file_path, parent):
            if file_path.suffix == ".chk":
                return CheckFile.from_parent(parent, path=file_path)

        SEEN = []

        def pytest_collection_finish(session):
            SEEN.extend(i for i in session.items if isinstance(i, CheckItem))

        def pytest_terminal_summary(terminalreporter):
            terminalreporter.write_line("RESULT " + repr([getattr(i, "result", None) for i in SEEN]))
    """)
    write(pytester.path, "pool/user/own.chk", "x\n")
    for args in (["pool/user/own.chk"], ["--apimon", "pool", "-k", "health or own"]):
        result = pytester.runpytest(*args)
        assert result.ret == 0
        result.stdout.fnmatch_lines(["RESULT ['kept']"])


def test_collection_leaves_the_garbage_collector_as_it_found_it(pytester: pytest.Pytester,
                                                                 local_server: LocalServer) -> None:
    """plugin.pytest_collection pauses the collector and freezes what collection built; after the run (also an
    inline one, as here) nothing stays frozen and the collector runs again."""
    import gc

    serve_shop(local_server)
    make_workspace(pytester, local_server)
    seen: list[tuple[int, bool]] = []

    class Probe:
        def pytest_configure(self) -> None:
            seen.append((gc.get_freeze_count(), gc.isenabled()))

        def pytest_collection_finish(self) -> None:
            seen.append((gc.get_freeze_count(), gc.isenabled()))

        def pytest_runtest_logstart(self) -> None:
            seen.append((gc.get_freeze_count(), gc.isenabled()))

    result = pytester.runpytest("--apimon", "pool", "-k", "health", plugins=[Probe()])
    result.assert_outcomes(passed=1, deselected=result.parseoutcomes()["deselected"])
    assert seen[:2] == [(0, False), (0, False)]  # configured and collected with the collector paused...
    assert seen[-1][0] > 0 and seen[-1][1]  # ...then frozen, with the collector back on for the run
    assert gc.get_freeze_count() == 0 and gc.isenabled()
    # A run that ends before collecting (an unusable config) turns the collector back on too.
    (pytester.path / "config.yaml").write_text("services: [", encoding="utf-8")
    assert pytester.runpytest("--apimon", "pool").ret != 0
    assert gc.get_freeze_count() == 0 and gc.isenabled()


def test_the_process_exits_with_the_run_frozen(pytester: pytest.Pytester, local_server: LocalServer) -> None:
    """At interpreter exit everything still alive is frozen (plugin.pytest_cmdline_main's atexit gc.freeze), so
    the interpreter's last full collection does not walk the run's object graph again."""
    serve_shop(local_server)
    make_workspace(pytester, local_server)
    script = (  # registered before pytest's: runs after the plugin's handler (atexit is last in, first out)
        "import atexit, gc, sys, pytest\n"
        "atexit.register(lambda: print('frozen at exit:', gc.get_freeze_count() > 0))\n"
        "sys.exit(pytest.main(['--apimon', 'pool', '-k', 'health', '-q', '-p', 'no:cacheprovider']))\n"
    )
    result = pytester.run(sys.executable, "-c", script)
    assert result.ret == 0
    result.stdout.fnmatch_lines(["frozen at exit: True"])


def test_only_pool_is_collected(pytester: pytest.Pytester, local_server: LocalServer) -> None:
    serve_shop(local_server)
    make_workspace(pytester, local_server)
    pytester.makepyfile(test_unrelated="def test_unrelated():\n    assert False\n")
    write(pytester.path, "pool/user/test_own_check.py", "def test_own():\n    assert True\n")
    result = pytester.runpytest("--apimon", "pool", "--co", "-q")
    out = result.stdout.str()
    assert "test_unrelated" not in out
    assert "pool/user/test_own_check.py::test_own" in out
    assert "pool/user/账户.yaml::获取用户信息" in out
    # With testpaths in the ini file, the header of a monitoring run names no testpaths: it runs only the pool.
    pytester.makeini("[pytest]\ntestpaths = tests\n")
    (pytester.path / "tests").mkdir()
    header = pytester.runpytest("--apimon", "pool", "--co").stdout.str()
    assert "rootdir: " in header and "testpaths" not in header
    assert "testpaths: tests" in pytester.runpytest("--co").stdout.str()  # a plain run still says so


def test_selection_k_m_strict_markers(pytester: pytest.Pytester, local_server: LocalServer) -> None:
    serve_shop(local_server)
    make_workspace(pytester, local_server)
    result = pytester.runpytest("--apimon", "pool", "-m", "smoke", "--strict-markers")
    result.assert_outcomes(passed=1)
    result = pytester.runpytest("--apimon", "pool", "-k", "user and not broken and not bad", "--strict-markers")
    result.assert_outcomes(passed=2)


def test_k_matches_substrings_a_service_folder_selects_exactly(pytester: pytest.Pytester) -> None:
    # README, "Everyday use": -k matches any part of the node id's names (folder, file, interface), as substrings.
    write(pytester.path, "config.yaml", """
        services:
          user: {base_url: "http://127.0.0.1:9/user"}
          admin: {base_url: "http://127.0.0.1:9/admin"}
          superuser: {base_url: "http://127.0.0.1:9/superuser"}
    """)
    write(pytester.path, "pool/user/api.yaml", "- {name: profile, path: /p}\n")
    write(pytester.path, "pool/admin/api.yaml", "- {name: delete user, path: /d}\n- {name: stats, path: /s}\n")
    write(pytester.path, "pool/admin/user_audit.yaml", "- {name: audit, path: /a}\n")
    write(pytester.path, "pool/superuser/api.yaml", "- {name: grant, path: /g}\n")

    def selected(*args: str) -> list[str]:
        lines = pytester.runpytest("--apimon", *args, "--co", "-q").stdout.lines
        return sorted(line for line in lines if "::" in line)

    assert selected("pool", "-k", "user") == [
        "pool/admin/api.yaml::delete user", "pool/admin/user_audit.yaml::audit",
        "pool/superuser/api.yaml::grant", "pool/user/api.yaml::profile"]
    assert selected("pool/user") == ["pool/user/api.yaml::profile"]  # exactly one service


def test_last_failed(pytester: pytest.Pytester, local_server: LocalServer) -> None:
    serve_shop(local_server)
    make_workspace(pytester, local_server)
    pytester.runpytest("--apimon", "pool")
    result = pytester.runpytest("--apimon", "pool", "--lf")
    result.assert_outcomes(failed=8)


def test_bad_config_is_a_usage_error(pytester: pytest.Pytester, local_server: LocalServer) -> None:
    make_workspace(pytester, local_server)
    write(pytester.path, "config.yaml", """
        services:
          user:
            base_url: http://127.0.0.1:1/user
            timout: 3
    """)
    result = pytester.runpytest("--apimon", "pool")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*services.user.timout*timeout*"])


def test_unset_env_variable_in_config(pytester: pytest.Pytester, local_server: LocalServer) -> None:
    make_workspace(pytester, local_server)
    write(pytester.path, "config.yaml", """
        services:
          user:
            base_url: ${APIMON_TEST_NOT_SET_URL}/user
    """)
    result = pytester.runpytest("--apimon", "pool")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*APIMON_TEST_NOT_SET_URL*"])


@pytest.mark.parametrize("extra", XDIST)
def test_login_failure_is_one_root_cause(pytester: pytest.Pytester, local_server: LocalServer, extra) -> None:
    serve_shop(local_server)
    make_workspace(pytester, local_server, password="wrong")
    result = pytester.runpytest("--apimon", "pool", "-k", "账户 or boom", "--apimon-json", "r.json", *extra)
    records = json.loads((pytester.path / "r.json").read_text(encoding="utf-8"))["results"]
    by_name = {r["name"]: r for r in records}
    assert by_name["获取用户信息"]["category"] == "auth"
    assert "login to user failed: POST" in by_name["获取用户信息"]["reason"]
    assert by_name["health"]["outcome"] == "passed"  # auth: false
    # the failed login is not repeated for every interface of the service
    assert local_server.count("/user/auth/login") <= (2 if extra else 1)
    assert "wrong" not in result.stdout.str().replace("wrong body", "")


@pytest.mark.parametrize("extra", XDIST)
def test_repeated_names_get_unique_node_ids(pytester: pytest.Pytester, local_server: LocalServer, extra) -> None:
    local_server.route("GET", "/svc/a", lambda r: {"ok": True})
    write(pytester.path, "config.yaml", f"""
        defaults: {{retries: 0}}
        services:
          svc: {{base_url: "{local_server.url}/svc"}}
    """)
    write(pytester.path, "pool/svc/api.yaml", "- {name: dup, path: /a}\n- {name: dup, path: /b}\n- 42\n")
    result = pytester.runpytest("--apimon", "pool", "-v", *extra)
    result.assert_outcomes(passed=1, failed=2)
    assert "pool/svc/api.yaml::dup (#2)" in result.stdout.str()


def test_symlink_loop_in_the_pool_is_skipped(pytester: pytest.Pytester, local_server: LocalServer) -> None:
    local_server.route("GET", "/svc/a", lambda r: {"ok": True})
    write(pytester.path, "config.yaml", f"""
        services:
          svc: {{base_url: "{local_server.url}/svc"}}
    """)
    write(pytester.path, "pool/svc/api.yaml", "- {name: a, path: /a}\n")
    (pytester.path / "pool/svc/loop").symlink_to(pytester.path / "pool/svc", target_is_directory=True)
    pytester.runpytest("--apimon", "pool").assert_outcomes(passed=1)
