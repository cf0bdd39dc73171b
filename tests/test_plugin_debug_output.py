"""What libraries print while pytest-apimon sends its requests is masked (red team): a conftest that sets
`http.client.HTTPConnection.debuglevel = 1` (http.client then print()s every request line, header and body) or
adds a StreamHandler at DEBUG to the root logger (urllib3 logs every URL with its query string). The secrets were
printed in clear by the requests the in-process runner's threads send while pytest's capture is suspended (always
under `-s`), by the WeCom report sent at the end of the session after capture stopped, by
`--apimon-test-webhook`, and by `apimon merge` and `apimon watch`. streams.py masks sys.stdout and sys.stderr.

The runs are subprocesses: the terminal a person or a CI log sees is the process's real standard output and error.
"""

from __future__ import annotations

import base64
import io
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from fake_wecom import KEY, FakeWeCom
from localserver import LocalServer, Response

from pytest_apimon import streams
from pytest_apimon.redact import Redactor

S = {
    "bearer": "Br1-bearerTok-55Qz",          # static token, sent as Authorization: Bearer
    "basic_password": "Bp2-basicPass-13Rb",  # basic auth password (sent base64-encoded)
    "login_password": "Lp3-loginPass-77Xc",  # in the login request's JSON body
    "login_token": "Lt4-loginTok-91Vd",      # the login response's token, a secret learnt at run time
    "wecom_key": KEY,                        # the robot key, in the webhook URL's query string
}
S["basic_credentials"] = base64.b64encode(f"demo:{S['basic_password']}".encode()).decode()

DEBUG_CONFTEST = """
import http.client
import logging
import sys

http.client.HTTPConnection.debuglevel = 1
handler = logging.StreamHandler(sys.stderr)
logging.getLogger().addHandler(handler)
logging.getLogger().setLevel(logging.DEBUG)
"""


def leaks(text: str) -> list[str]:
    return [name for name, value in S.items() if value in text]


def serve(home: LocalServer) -> None:
    def login(req):
        if req.json().get("password") == S["login_password"]:
            return {"data": {"token": S["login_token"], "expires_in": 3600}}
        return Response(401, {}, {"msg": "no"})

    home.route("POST", "/app/login", login)
    for svc in ("app", "bear", "basic"):
        home.route("GET", f"/{svc}/ok", lambda r: {"ok": True})
        home.route("GET", f"/{svc}/bad", lambda r: Response(500, {}, {"ok": False}))


def workspace(base: Path, home: LocalServer, wecom: str) -> None:
    (base / "config.yaml").write_text(textwrap.dedent(f"""
        defaults: {{retries: 0}}
        services:
          app:
            base_url: {home.url}/app
            auth: {{type: login, path: /login, json: {{username: demo, password: "{S['login_password']}"}},
                    token_path: data.token}}
          bear:
            base_url: {home.url}/bear
            auth: {{type: static, token: "{S['bearer']}"}}
          basic:
            base_url: {home.url}/basic
            auth: {{type: basic, username: demo, password: "{S['basic_password']}"}}
        state: {{dir: out/state}}
        notify:
          send_on: always
          wecom:
            - name: ops
              webhook: "{KEY}"
              base_url: {wecom}
        """), encoding="utf-8")
    for svc in ("app", "bear", "basic"):
        (base / "pool" / svc).mkdir(parents=True)
        (base / "pool" / svc / "api.json").write_text(json.dumps([
            {"name": "Show basic information", "path": "/ok"}, {"name": "broken", "path": "/bad"}]), encoding="utf-8")
    (base / "conftest.py").write_text(DEBUG_CONFTEST, encoding="utf-8")


@pytest.mark.parametrize("extra", [
    pytest.param([], id="fd-capture"),
    pytest.param(["-n", "2"], id="xdist"),
    pytest.param(["-s"], id="no-capture"),
    pytest.param(["--capture=sys"], id="sys-capture"),
    pytest.param(["-s", "-n", "2"], id="xdist-no-capture"),
])
def test_what_libraries_print_during_a_run_is_masked(pytester: pytest.Pytester, extra: list[str]) -> None:
    with LocalServer() as home, FakeWeCom() as fake:
        serve(home)
        workspace(pytester.path, home, fake.base_url)
        result = pytester.runpytest_subprocess("--apimon", "pool", "-v", "-rA", "-p", "no:cacheprovider", *extra)
        sent = list(fake.messages)
    out = result.stdout.str() + result.stderr.str()
    assert not leaks(out), f"planted secrets printed: {leaks(out)}"
    assert sent, "the report reached the WeCom fake"
    assert result.parseoutcomes().get("failed") == 3
    # http.client's debug line and urllib3's record of the report's request were printed, with the key masked
    assert "send: b'POST /cgi-bin/webhook/send?key=****** HTTP/1.1" in out
    assert '"POST /cgi-bin/webhook/send?key=****** HTTP/1.1" 200' in out
    assert "Content-Type: application/json" in out and "Show basic information" in out  # ordinary words stay
    if "-s" in extra and "-n" not in extra:  # the checks' own requests, printed by the runner's threads
        assert "Authorization: Bearer ******" in out and "Authorization: Basic ******" in out
        assert '"password": "******"' in out


@pytest.mark.parametrize("conftest", [
    pytest.param("import http.client\nhttp.client.HTTPConnection.debuglevel = 1\n", id="debuglevel"),
    pytest.param("import logging, sys\nlogging.getLogger().addHandler(logging.StreamHandler(sys.stdout))\n"
                 "logging.getLogger().setLevel(logging.DEBUG)\n", id="root-logger"),
])
def test_test_webhook_masks_what_libraries_print(pytester: pytest.Pytester, conftest: str) -> None:
    with FakeWeCom() as fake:
        (pytester.path / "config.yaml").write_text(
            f"notify:\n  wecom:\n    - name: ops\n      webhook: {KEY}\n      base_url: {fake.base_url}\n",
            encoding="utf-8")
        pytester.makeconftest(conftest)
        result = pytester.runpytest_subprocess("--apimon-test-webhook", "-p", "no:cacheprovider")
        sent = list(fake.messages)
    out = result.stdout.str() + result.stderr.str()
    assert KEY not in out
    assert result.ret == 0 and len(sent) == 1
    assert "/cgi-bin/webhook/send?key=******" in out


def _cli(tmp_path: Path, args: list[str]) -> subprocess.CompletedProcess[str]:
    """`apimon ARGS` started the way a user debugging it would: http.client's debug prints on, logging at DEBUG."""
    code = ("import http.client, logging, sys\n"
            "http.client.HTTPConnection.debuglevel = 1\n"
            "logging.basicConfig(level=logging.DEBUG)\n"
            "from pytest_apimon.__main__ import main\n"
            "sys.exit(main(sys.argv[1:]))\n")
    return subprocess.run([sys.executable, "-c", code, *args], cwd=tmp_path, capture_output=True, text=True,
                          timeout=60, check=False)


@pytest.mark.parametrize("command", ["merge", "watch"])
def test_apimon_commands_mask_what_libraries_print(tmp_path: Path, command: str) -> None:
    with FakeWeCom() as fake:
        cfg = tmp_path / "config.yaml"
        cfg.write_text(f"env: prod\nnotify:\n  send_on: always\n  wecom:\n    - name: ops\n      webhook: {KEY}\n"
                       f"      base_url: {fake.base_url}\n", encoding="utf-8")
        if command == "merge":
            (tmp_path / "r.json").write_text("{}", encoding="utf-8")  # no usable shard: still reported
            proc = _cli(tmp_path, ["merge", "--config", str(cfg), "r.json"])
        else:  # a cycle whose pytest cannot start: the watcher's own "monitor broken" message
            proc = _cli(tmp_path, ["watch", "--every", "1s", "--run-now", "--cycles", "1", "--config", str(cfg),
                                   "no-such-pool/", "-p", "no:cacheprovider", "--apimon-config", str(cfg)])
        sent = list(fake.messages)
    out = proc.stdout + proc.stderr
    assert KEY not in out
    assert len(sent) == 1, out
    assert "send: b'POST /cgi-bin/webhook/send?key=****** HTTP/1.1" in out


def test_a_masked_stream_masks_each_write_and_is_otherwise_the_stream() -> None:
    raw = io.StringIO()
    stream = streams.MaskedStream(raw)
    stream.write("before the mask: s3cret\n")  # no mask yet: unchanged
    stream.mask = lambda text: text.replace("s3cret", "******")
    assert stream.write("token s3cret\n") == len("token s3cret\n")
    stream.writelines(["a s3cret", "\n"])
    stream.mask = lambda text: 1 / 0  # type: ignore[assignment,return-value]
    stream.write("s3cret again\n")
    assert raw.getvalue() == "before the mask: s3cret\ntoken ******\na ******\n" + streams.HIDDEN
    assert stream.getvalue() == raw.getvalue() and not stream.closed  # everything else is the stream's


def test_restore_puts_back_only_its_own_streams(monkeypatch: pytest.MonkeyPatch) -> None:
    out, err = io.StringIO(), io.StringIO()
    monkeypatch.setattr(sys, "stdout", out)
    monkeypatch.setattr(sys, "stderr", err)
    std = streams.mask_standard_streams(lambda text: text.replace("s3cret", "******"))
    print("a s3cret")
    print("b s3cret", file=sys.stderr)
    other = io.StringIO()
    sys.stderr = other  # someone else's stream since: left in place
    std.restore()
    std.restore()
    assert sys.stdout is out and sys.stderr is other
    assert out.getvalue() == "a ******\n" and err.getvalue() == "b ******\n"
    std.out.write("after s3cret\n")  # kept by someone (a logging handler): still masked after restore()
    assert out.getvalue().endswith("after ******\n")


def test_a_line_printed_in_parts_is_masked_whole() -> None:
    """Red team: http.client prints a response header as print("header:", name + ":", value); masked write by
    write, the token-looking name and the unknown value never met (a header token leaked under -s)."""
    raw = io.StringIO()
    stream = streams.MaskedStream(raw, lambda text: Redactor([]).text(text))
    print("header:", "X-Auth-Token:", "HdrTok6Wp2Lm9Qs", file=stream)
    print("header:", "Content-Type:", "application/json", file=stream)
    stream.write("collecting ... ")  # no newline: held until flush(), as pytest flushes its progress itself
    assert raw.getvalue() == "header: X-Auth-Token: ******\nheader: Content-Type: application/json\n"
    stream.flush()
    assert raw.getvalue().endswith("collecting ... ")
    stream.write("x" * (streams.MaskedStream.LINE_LIMIT + 5))  # a runaway line is not held for ever
    assert len(raw.getvalue()) > streams.MaskedStream.LINE_LIMIT


def test_restore_writes_out_an_unfinished_line_masked(monkeypatch: pytest.MonkeyPatch) -> None:
    out = io.StringIO()
    monkeypatch.setattr(sys, "stdout", out)
    std = streams.mask_standard_streams(lambda text: text.replace("s3cret", "******"))
    sys.stdout.write("partial s3cret")
    std.restore()
    assert out.getvalue() == "partial ******"


def test_secrets_from_a_login_header_and_the_environment_are_masked_from_the_start(
        pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    """Red team, with -s: a token the login returns in a response header was printed by http.client before
    the run learnt it; a conftest printing an environment secret at import, before pytest-apimon's
    pytest_configure, printed it in clear."""
    header_token = "HdrTok6Wp2Lm9Qs"
    monkeypatch.setenv("LOGIN_PASSWORD", "EnvPass-84Kq-zz")
    with LocalServer() as home:
        home.route("POST", "/app/login", lambda r: Response(200, {"X-Auth-Token": header_token}, {"ok": True}))
        home.route("GET", "/app/ok", lambda r: {"ok": True})
        (pytester.path / "config.yaml").write_text(textwrap.dedent(f"""
            services:
              app:
                base_url: {home.url}/app
                auth: {{type: login, path: /login, json: {{password: "${{LOGIN_PASSWORD}}"}},
                        token_header: X-Auth-Token}}
            """), encoding="utf-8")
        (pytester.path / "pool" / "app").mkdir(parents=True)
        (pytester.path / "pool" / "app" / "api.json").write_text(json.dumps([{"name": "ok", "path": "/ok"}]),
                                                                encoding="utf-8")
        (pytester.path / "conftest.py").write_text(
            "import os\nimport http.client\nhttp.client.HTTPConnection.debuglevel = 1\n"
            "print('at import', os.environ['LOGIN_PASSWORD'])\n", encoding="utf-8")
        result = pytester.runpytest_subprocess("--apimon", "pool", "-s", "-p", "no:cacheprovider")
    out = result.stdout.str() + result.stderr.str()
    result.assert_outcomes(passed=1)
    assert "header: X-Auth-Token: ******" in out and "at import ******" in out
    assert header_token not in out and "EnvPass-84Kq-zz" not in out
