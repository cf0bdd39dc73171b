"""Issue 15 (start-up CPU): a run imports only what its config and its pool need.

Every module imported is work at start-up (and, where bytecode is not cached, compiled from source on every
run), so the optional parts are imported where they are used: the status page (Jinja2), the Prometheus
textfile (prometheus_client), the robots (each platform), the spec importers (OpenAPI, Postman, and the
JSON Schema helpers they use), `regex` (documents' patterns), the coverage report, the watcher. Each run below
is a fresh process (pytester's subprocess) that writes `sorted(sys.modules)` at its very end; the second run
turns every optional part on, so each module asserted absent from the plain run is shown to be imported when
it is needed (the test fails if a name is misspelt or a part is imported eagerly again).
"""

from __future__ import annotations

import json

import pytest
from fake_chatbots import DINGTALK_TOKEN, FEISHU_TOKEN
from fake_wecom import KEY
from localserver import LocalServer

# What a plain run (native YAML documents, no robot, no status page, no textfile, no patterns) must not import,
# and which of them the run with everything turned on must import.
OPTIONAL = (
    "jinja2", "markupsafe", "prometheus_client", "regex",
    "pytest_apimon.statuspage", "pytest_apimon.metrics", "pytest_apimon.coverage",
    "pytest_apimon.importers.model", "pytest_apimon.importers.openapi", "pytest_apimon.importers.postman",
    "pytest_apimon.response_schema",
    "pytest_apimon.notify.wecom", "pytest_apimon.notify.dingtalk", "pytest_apimon.notify.feishu",
    "pytest_apimon.notify.outbox", "pytest_apimon.notify.layout",
)
# Not imported by a plain run either; the enabled run below has no occasion to need it (a wait on another
# run's lock or a robot's rate limit, echoed with watch.WAIT_TAG).
NEVER_PLAIN = (*OPTIONAL, "pytest_apimon.watch")
# Reading a native document (a parse cache miss) sets response_schema's `place` for its schema files, so the
# first run imports it; a run with a warm parse cache, the usual case, does not.
COLD_ONLY = ("pytest_apimon.response_schema",)

RECORDER = """
import json
import sys


def pytest_unconfigure(config):
    (config.rootpath / "modules.json").write_text(json.dumps(sorted(sys.modules)), encoding="utf-8")
"""

PLAIN_DOC = """
interfaces:
  - name: ok
    path: /ok
    expect:
      status: 200
      body:
        - {path: ok, equals: true}
"""

PATTERN_DOC = """
interfaces:
  - name: matched
    path: /ok
    expect:
      body:
        - {path: name, regex: "^sh"}
      schema:
        type: object
        required: [ok]
"""

OPENAPI = """
openapi: 3.0.3
info: {title: shop, version: "1"}
paths:
  /ok:
    get:
      operationId: ok
      responses:
        "200": {description: ok}
"""


def _postman(url: str) -> str:
    return json.dumps({
        "info": {"name": "shop", "schema": "https://schema.getpostman.com/json/collection/v2.1.0/collection.json"},
        "item": [{"name": "postman ok", "request": {"method": "GET", "url": f"{url}/ok"}}],
    })


def _modules(pytester: pytest.Pytester, *args: str) -> set[str]:
    pytester.makeconftest(RECORDER)
    result = pytester.runpytest_subprocess("--apimon", "pool", "-p", "no:cacheprovider", *args)
    assert result.ret == 0, result.stdout.str()
    return set(json.loads((pytester.path / "modules.json").read_text(encoding="utf-8")))


@pytest.fixture
def ok_server(local_server: LocalServer) -> LocalServer:
    local_server.route("GET", "/ok", lambda r: {"ok": True, "name": "shop"})
    return local_server


def test_a_plain_run_imports_no_optional_part(pytester: pytest.Pytester, ok_server: LocalServer) -> None:
    (pytester.path / "config.yaml").write_text(f"services:\n  shop:\n    base_url: {ok_server.url}\n",
                                              encoding="utf-8")
    (pytester.path / "pool" / "shop").mkdir(parents=True)
    (pytester.path / "pool" / "shop" / "api.yaml").write_text(PLAIN_DOC, encoding="utf-8")
    cold = _modules(pytester)
    assert "pytest_apimon.collector" in cold and "pytest_apimon.items" in cold  # it did run the plugin
    assert sorted(m for m in NEVER_PLAIN if m in cold and m not in COLD_ONLY) == []
    warm = _modules(pytester)  # the documents come from the parse cache now
    assert sorted(m for m in NEVER_PLAIN if m in warm) == []
    assert ok_server.count("/ok") == 2


def test_each_optional_part_is_imported_when_turned_on(pytester: pytest.Pytester, ok_server: LocalServer) -> None:
    robot = ok_server.url + "/robot"  # nothing is sent (a healthy first run), but every platform is configured
    (pytester.path / "config.yaml").write_text(f"""
services:
  shop:
    base_url: {ok_server.url}
report:
  html: out/status.html
  prometheus: out/apimon.prom
notify:
  wecom: [{{name: ops, webhook: {KEY}, base_url: "{robot}"}}]
  dingtalk: [{{name: dt, webhook: "{robot}/robot/send?access_token={DINGTALK_TOKEN}"}}]
  feishu: [{{name: fs, webhook: "{robot}/open-apis/bot/v2/hook/{FEISHU_TOKEN}"}}]
""", encoding="utf-8")
    pool = pytester.path / "pool" / "shop"
    pool.mkdir(parents=True)
    (pool / "api.yaml").write_text(PATTERN_DOC, encoding="utf-8")
    (pool / "spec.yaml").write_text(OPENAPI, encoding="utf-8")
    (pool / "todo.postman_collection.json").write_text(_postman(ok_server.url), encoding="utf-8")
    modules = _modules(pytester, "--apimon-coverage", "-v")
    assert (pytester.path / "out" / "status.html").is_file() and (pytester.path / "out" / "apimon.prom").is_file()
    assert ok_server.count("/ok") == 3  # the native document, the OpenAPI operation, the Postman request
    assert sorted(m for m in OPTIONAL if m not in modules) == []
    assert not [req.path for req in ok_server.requests if req.path.startswith("/robot")]  # no robot was called


def test_every_catalogue_pattern_compiles() -> None:
    """The catalogue's patterns are compiled on first use (messages.LazyPattern): a bad one must still fail a
    test, not the first run that happens to localize the line."""
    from pytest_apimon import messages

    lazy = [value for value in vars(messages).values() if isinstance(value, messages.LazyPattern)]
    for value in vars(messages).values():
        if isinstance(value, list):
            lazy += [rule[0] for rule in value if isinstance(rule, tuple) and rule
                     and isinstance(rule[0], messages.LazyPattern)]
    assert len(lazy) > 300
    for pattern in lazy:
        assert pattern.compiled().pattern == pattern.pattern


# Under `-n 2` the controller starts the workers (xdist's pytest_sessionstart) only after its own configure, and
# it never reads a document or sends a request: what only those need must not be imported on its start-up.
CONTROLLER_START_UNUSED = (
    "requests", "pytest_apimon.engine", "pytest_apimon.auth", "pytest_apimon.probe", "pytest_apimon.tokencache",
    "pytest_apimon.parsecache", "pytest_apimon.documents", "pytest_apimon.importers.refs",
)
# Of those, what the controller never needs in the whole run (the report header's proxy comes from
# probe.proxy_in_use, after the workers were started; the token cache is purged of the run's failed logins
# at the end).
CONTROLLER_UNUSED = ("pytest_apimon.engine", "pytest_apimon.auth", "pytest_apimon.parsecache")

XDIST_RECORDER = """
import json
import sys

import pytest


def _name(config):
    workerinput = getattr(config, "workerinput", None)
    return workerinput["workerid"] if workerinput is not None else "controller"


@pytest.hookimpl(tryfirst=True)
def pytest_sessionstart(session):  # on the controller, before xdist starts the workers
    name = _name(session.config) + "-start"
    (session.config.rootpath / f"{name}.json").write_text(json.dumps(sorted(sys.modules)), encoding="utf-8")


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config):
    (config.rootpath / f"{_name(config)}.json").write_text(json.dumps(sorted(sys.modules)), encoding="utf-8")
"""


def test_the_xdist_controller_imports_no_request_machinery(pytester: pytest.Pytester,
                                                           ok_server: LocalServer) -> None:
    (pytester.path / "config.yaml").write_text(f"services:\n  shop:\n    base_url: {ok_server.url}\n",
                                              encoding="utf-8")
    pool = pytester.path / "pool" / "shop"
    pool.mkdir(parents=True)
    for n in range(4):
        (pool / f"api{n}.yaml").write_text(PLAIN_DOC.replace("name: ok", f"name: ok{n}"), encoding="utf-8")
    pytester.makeconftest(XDIST_RECORDER)
    result = pytester.runpytest_subprocess("--apimon", "pool", "-p", "no:cacheprovider", "-n", "2")
    assert result.ret == 0, result.stdout.str()
    assert ok_server.count("/ok") == 4

    def modules(name: str) -> set[str]:
        return set(json.loads((pytester.path / f"{name}.json").read_text(encoding="utf-8")))

    start, end = modules("controller-start"), modules("controller")
    assert "pytest_apimon.runstate" in start and "pytest_apimon.collector" in end  # the plugin did run there
    assert sorted(m for m in CONTROLLER_START_UNUSED if m in start) == []
    assert sorted(m for m in CONTROLLER_UNUSED if m in end) == []
    workers = [modules(w) for w in ("gw0", "gw1")]
    # Each is imported by a worker (so a misspelt name or a module renamed away fails here).
    assert sorted(m for m in CONTROLLER_START_UNUSED if not any(m in w for w in workers)) == []
