""""Reproduce with" (issue 16, requirement 7): a one-line curl per failure in the terminal, Markdown and JSON,
secrets as $ENV_VAR references or masked; the line really repeats the request (run with the system curl)."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from localserver import LocalServer, Response
from test_plugin import write

from pytest_apimon.redact import MASK, Redactor
from pytest_apimon.reproduce import curl_command

SECRET_ENV = "Rp1-envToken-58Kd"  # via ${APIMON_T16_TOKEN}: referenced as $APIMON_T16_TOKEN
SECRET_LITERAL = "Rp2-literalKey-73Qs"  # written in the document: masked
SECRET_LOGIN = "Rp3-loginTok-19Vw"  # learnt at login: masked
SECRET_PASSWORD = "Rp4-passWord-44Hx"  # login password in the config


def test_curl_line_shape_and_quoting() -> None:
    red = Redactor()
    line = curl_command("POST", "http://127.0.0.1:1/a?q=心 内", {"Content-Type": "application/json",
                                                                "Content-Length": "9", "Host": "x"},
                        '{"a": "it\'s"}', redactor=red, environ={}, timeout_s=2.5, verify_tls=False)
    assert shlex.split(line) == ["curl", "-sS", "-i", "-X", "POST", "-L", "-k", "--max-time", "2.5",
                                 "-H", "Content-Type: application/json", "--data-raw", '{"a": "it\'s"}',
                                 "http://127.0.0.1:1/a?q=心 内"]
    assert shlex.split(curl_command("HEAD", "http://h/", {}, None, redactor=red, environ={},
                                    follow_redirects=False)) == ["curl", "-sS", "-i", "--head", "http://h/"]
    # A cut body ends in "…" inside --data-raw; the line carries no shell comment (see below).
    assert shlex.split(curl_command("POST", "http://h/", {}, "x" * 10 + "…", redactor=red, environ={}))[-3:] == [
        "--data-raw", "x" * 10 + "…", "http://h/"]


def test_secrets_become_env_references_or_masks() -> None:
    red = Redactor([SECRET_LITERAL, SECRET_LOGIN])
    env = {"APIMON_T16_TOKEN": SECRET_ENV, "HOME": "/root", "OTHER": "application/json"}
    headers = {"Authorization": f"Bearer {SECRET_ENV}", "X-Api-Key": SECRET_LITERAL,
               "X-Auth-Token": SECRET_LOGIN, "Cookie": f"sid={SECRET_LOGIN}", "Accept": "application/json",
               "X-Plain": SECRET_ENV}
    line = curl_command("GET", f"http://h/x?sign={SECRET_LITERAL}&page=1", headers,
                        json.dumps({"password": SECRET_PASSWORD}), redactor=red, environ=env)
    for secret in (SECRET_ENV, SECRET_LITERAL, SECRET_LOGIN, SECRET_PASSWORD):
        assert secret not in line
    args = shlex.split(line)  # what the shell passes to curl, before it expands "$VAR"
    assert "Authorization: Bearer $APIMON_T16_TOKEN" in args  # shlex does not expand: the reference as written
    assert "X-Plain: $APIMON_T16_TOKEN" in args  # a secret variable's value under a harmless name
    assert f"X-Api-Key: {MASK}" in args and f"X-Auth-Token: {MASK}" in args
    assert "Accept: application/json" in args  # ordinary values stay in clear
    assert f"http://h/x?sign={MASK}&page=1" in args
    assert red.text(line) == line  # every output masks again: the line survives it unchanged


@settings(max_examples=100, deadline=None)
@given(name=st.sampled_from(["Authorization", "X-Api-Key", "X-Token", "Cookie", "X-Trace"]),
       value=st.text(st.characters(min_codepoint=32, max_codepoint=126), min_size=8, max_size=30),
       body=st.text(max_size=40))
def test_a_known_secret_never_appears_in_clear(name: str, value: str, body: str) -> None:
    red = Redactor([value])
    if not red.is_known(value):
        return  # too plain to be a secret (e.g. "true"): nothing to hide
    if value in f"curl -sS -i -X POST -H '{name}: ' --data-raw  http://h/p":
        return  # e.g. 'Authoriz' (a random seed found it): the line's own words, not the secret, hold that text
    line = curl_command("POST", "http://h/p", {name: value}, body + value, redactor=red, environ={})
    assert value not in line
    shlex.split(line)  # always a well-formed shell line


@pytest.mark.skipif(shutil.which("curl") is None, reason="needs the curl program")
def test_reproduce_in_every_output_and_it_repeats_the_request(pytester, monkeypatch) -> None:
    monkeypatch.setenv("APIMON_T16_TOKEN", SECRET_ENV)
    with LocalServer() as srv:
        srv.route("POST", "/shop/login", lambda r: {"data": {"token": SECRET_LOGIN}}
                  if r.json().get("password") == SECRET_PASSWORD else Response(401, {}, {}))
        srv.route("POST", "/shop/orders", lambda r: Response(503, {}, {"echo": r.headers.get("x-api-key")}))
        write(pytester.path, "config.yaml", f"""
            defaults: {{retries: 0, timeout: 5}}
            services:
              shop:
                base_url: {srv.url}/shop
                auth: {{type: login, path: /login, json: {{username: u, password: {SECRET_PASSWORD}}},
                        token_path: data.token}}
            report: {{markdown: out/report.md, json: out/report.json}}
        """)
        write(pytester.path, "pool/shop/orders.yaml", f"""
            name: 下单
            method: POST
            path: /orders
            headers: {{X-Api-Key: "${{APIMON_T16_TOKEN}}", X-Literal-Key: {SECRET_LITERAL}}}
            json: {{sku: A1, note: "it's"}}
        """)
        result = pytester.runpytest("--apimon", "pool", "-rA")
        stdout = result.stdout.str()
        markdown = (pytester.path / "out" / "report.md").read_text("utf-8")
        records = json.loads((pytester.path / "out" / "report.json").read_text("utf-8"))["results"]
        (record,) = [r for r in records if r["outcome"] == "failed"]
        line = record["reproduce"]
        assert line.startswith("curl ") and "$APIMON_T16_TOKEN" in line
        assert "复现命令：curl " in stdout and line in stdout  # pytest's failure text, in zh (the default)
        assert "复现命令" in markdown and line.replace("`", "'") in markdown
        for text in (stdout, markdown, json.dumps(records, ensure_ascii=False)):
            for secret in (SECRET_ENV, SECRET_LITERAL, SECRET_LOGIN, SECRET_PASSWORD):
                assert secret not in text
        # The line, pasted into a shell with the variable set, sends the same request again.
        before = srv.count("/shop/orders")
        done = subprocess.run(["sh", "-c", line], capture_output=True, text=True, timeout=30,
                              env={**os.environ, "APIMON_T16_TOKEN": SECRET_ENV})
        assert done.returncode == 0, done.stderr
        assert srv.count("/shop/orders") == before + 1
        again = srv.last("/shop/orders")
        assert again.headers["x-api-key"] == SECRET_ENV  # expanded from the environment
        assert again.headers["x-literal-key"] == MASK and again.headers["authorization"] == f"Bearer {MASK}"
        assert again.json() == {"sku": "A1", "note": "it's"}
        assert done.stdout.startswith("HTTP/1.")


def test_no_follow_when_any_header_carries_a_credential() -> None:
    """curl -L sends -H headers on to a redirect's other host; only curl 7.58.0 and later drop Authorization and
    Cookie there (7.83.0 on another port), so any credential header means no -L."""
    red = Redactor([SECRET_LITERAL])
    env = {"APIMON_T16_TOKEN": SECRET_ENV}
    for headers in ({"Authorization": f"Bearer {SECRET_ENV}"}, {"Cookie": "sid=" + SECRET_LITERAL},
                    {"X-Api-Key": SECRET_ENV, "Accept": "*/*"}, {"X-Auth-Token": SECRET_LITERAL},
                    {"Api-Key": SECRET_ENV}):
        args = shlex.split(curl_command("GET", "http://h/", headers, None, redactor=red, environ=env),
                           comments=False)
        assert "-L" not in args and args[-1] == "http://h/", args
    plain = shlex.split(curl_command("GET", "http://h/", {"X-Trace": "abc-123"}, None, redactor=red, environ={}))
    assert "-L" in plain  # nothing secret to resend


def _pasted_line() -> str:
    env = {"SHOP_API_KEY": "k-93jd82hd-Xy9secret"}
    return curl_command("POST", "http://127.0.0.1:1/a", {"X-Api-Key": "k-93jd82hd-Xy9secret"}, "x" * 3000,
                        redactor=Redactor(["k-93jd82hd-Xy9secret"]), environ=env)


def test_the_line_holds_no_shell_comment_whatever_the_shell() -> None:
    """Interactive zsh without `interactivecomments` hands a comment's words to curl (a red team saw `-L:` read
    as -L, and each other word became a URL that got the headers); so the line has none, also for a cut body."""
    args = shlex.split(_pasted_line(), comments=False)
    assert not any(a.startswith("-L") or a == "--location" for a in args), args
    urls = [a for i, a in enumerate(args[1:], 1) if not a.startswith("-")
            and args[i - 1] not in ("-H", "--max-time", "-X", "--data-raw")]
    assert urls == ["http://127.0.0.1:1/a"], urls


@pytest.mark.skipif(shutil.which("zsh") is None, reason="needs zsh")
def test_pasted_into_interactive_zsh_curl_gets_only_the_line_s_words() -> None:
    # `zsh -f -i` reads the pasted line like a terminal session with zsh's default options.
    line = _pasted_line().replace("curl ", "printf '<%s>\\n' ", 1)
    out = subprocess.run(["zsh", "-f", "-i"], input=line + "\n", capture_output=True, text=True, timeout=30).stdout
    assert "<-L:>" not in out and "<no>" not in out and "<request>" not in out and "<http://127.0.0.1:1/a>" in out


@pytest.mark.skipif(shutil.which("curl") is None, reason="needs the curl program")
def test_the_reproduce_line_never_hands_a_key_to_a_redirect_s_other_host() -> None:
    """Run as a person would, with the key in the environment: the other host a redirect names gets nothing."""
    with LocalServer() as home, LocalServer() as foreign:
        foreign.route("GET", "/landing", lambda r: {"ok": True})
        home.route("GET", "/api/x", lambda r: Response(302, {"Location": f"{foreign.url}/landing"}, ""))
        line = curl_command("GET", f"{home.url}/api/x", {"X-Api-Key": SECRET_ENV}, None, redactor=Redactor(),
                            environ={"APIMON_T16_TOKEN": SECRET_ENV})
        done = subprocess.run(["sh", "-c", line], capture_output=True, text=True, timeout=30,
                              env={**os.environ, "APIMON_T16_TOKEN": SECRET_ENV})
        assert done.returncode == 0, done.stderr
        assert home.last("/api/x").headers["x-api-key"] == SECRET_ENV  # the request itself is repeated
        assert foreign.count("/landing") == 0  # before the fix curl -L followed, sending the key along
        assert done.stdout.startswith("HTTP/1.1 302")
