"""Found by a red team: the reproduce line as pasted from every output (the terminal/JSON line was made safe
to paste first).

Each test fails on 32cc755 for the fault its docstring names.
"""

from __future__ import annotations

import re
import shlex

from pytest_apimon.redact import Redactor
from pytest_apimon.report import render_details, render_markdown
from pytest_apimon.reproduce import curl_command
from pytest_apimon.results import InterfaceResult, RunResult

URL = "http://127.0.0.1:1/api/notes"
# A chat/notification API's message with Markdown inline code holding a command (a perfectly ordinary body).
BODY = '{"text": "build with `make; touch /tmp/apimon-redteam7-pwned`"}'


def _run(body: str) -> tuple[RunResult, str]:
    line = curl_command("POST", URL, {"Content-Type": "application/json"}, body, redactor=Redactor(), environ={},
                        timeout_s=5, follow_redirects=False)
    r = InterfaceResult(nodeid="pool/s/a.yaml::n", service="s", module="a", name="n", method="POST", url=URL,
                        outcome="failed", category="server_error", reason="HTTP 500", status=500,
                        request_headers={"Content-Type": "application/json"}, request_body=body, reproduce=line)
    return RunResult(started_at=0.0, finished_at=1.0, env="local", results=[r]), line


def _code_after(label: str, markdown: str) -> list[str]:
    """The inline-code spans that follow `label` on a line of `markdown`."""
    return [m.group(1) for m in re.finditer(re.escape(label) + r"[^`\n]*`([^`\n]*)`", markdown)]


def test_the_markdown_reproduce_line_runs_the_same_words_as_the_terminal_line() -> None:
    """report._code turns every backtick into a quote so the line fits WeCom's inline code; inside the line's
    single-quoted body that closes the quoting: pasted into sh/bash/zsh, the words after `make;` run as a
    command (measured: `touch` created a file in sh, bash and zsh -f -i). The Markdown report and the WeCom
    message must show the terminal's line (or none), never a different command."""
    run, line = _run(BODY)
    lines = _code_after("复现命令", render_markdown(run, "zh", "t", redactor=Redactor()))
    assert all(shlex.split(md) == shlex.split(line) for md in lines), (line, lines)


def test_the_wecom_details_reproduce_line_keeps_the_body_one_argument() -> None:
    """render_details builds its own curl line (report._curl, not reproduce.curl_command) and passes it through
    _code as well: the same backtick break-out runs the body's words as commands."""
    run, _ = _run(BODY)
    for md in _code_after("复现", render_details(run, "zh", "t", redactor=Redactor())):
        words = shlex.split(md)
        assert not any("touch" == w for w in words), words


def test_the_wecom_details_reproduce_line_never_makes_curl_read_a_local_file() -> None:
    """report._curl sends the body with `-d`, for which curl reads a file when the value starts with '@'
    (`-d '@/etc/passwd'` posts that file to the server); reproduce.curl_command uses --data-raw for this reason.
    A text body such as a WeCom-style mention ('@all …') or '@/path' must not make the pasted line upload a file."""
    run, _ = _run("@/etc/hostname")
    for md in _code_after("复现", render_details(run, "zh", "t", redactor=Redactor())):
        words = shlex.split(md)
        data = [words[i + 1] for i, w in enumerate(words[:-1]) if w in ("-d", "--data", "--data-binary")]
        assert not any(d.startswith("@") for d in data), words


def test_a_body_starting_with_equals_is_quoted_for_zsh() -> None:
    """shlex.quote leaves '=hello' unquoted; zsh (EQUALS, on by default, also with -f) reads a word starting with
    '=' as a command path: the pasted line stops with 'zsh: hello not found' and curl never runs. A form body
    '=value' is how ASP.NET Web API posts a [FromBody] string."""
    line = curl_command("POST", URL, {"Content-Type": "application/x-www-form-urlencoded"}, "=hello",
                        redactor=Redactor(), environ={}, timeout_s=5, follow_redirects=False)
    assert " =hello" not in line, line
