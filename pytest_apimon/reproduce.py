""""Reproduce with": one shell line of `curl` that repeats a failed request by hand (as Schemathesis prints).

Secrets never appear in clear. A credential header whose value (or, for `Authorization: Bearer x`, whose
credential) equals an environment variable is written as a reference to it (`"$API_TOKEN"`), so the line
works as-is where that variable is set; any other secret (a token fetched at login, a cookie) is masked with
redact.MASK and has to be filled in. The URL and body go through the run's Redactor like every other output.
Quoting is POSIX shell (shlex.quote), so the line is pasted into bash/zsh, not cmd.exe.
"""

from __future__ import annotations

import os
import re
import shlex
from collections.abc import Mapping

from .redact import MASK, Redactor, is_secret_name

__all__ = ["curl_command"]

# Characters of a request body shown in the curl line (as many as the report's request excerpt, engine.REQUEST_EXCERPT).
BODY_SHOWN = 2048
# Headers curl computes itself (sending a stale Content-Length or Host would break the request), and the ones
# it sends anyway: leaving them out keeps the line short.
_SKIP_HEADERS = frozenset({"content-length", "host", "connection", "accept-encoding", "transfer-encoding"})
_SCHEME = re.compile(r"^(?P<scheme>[A-Za-z][A-Za-z0-9_-]*[ \t]+)(?P<cred>\S+)$")
_SHELL_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# Never referenced even when the value matches: they describe the shell, not a credential.
_NOT_REFERENCED = frozenset(("PWD", "OLDPWD", "HOME", "PATH", "SHELL", "USER", "LOGNAME", "TERM", "LANG"))


def curl_command(
    method: str,
    url: str,
    headers: Mapping[str, str],
    body: str | None,
    *,
    redactor: Redactor,
    environ: Mapping[str, str] | None = None,
    timeout_s: float | None = None,
    verify_tls: bool = True,
    follow_redirects: bool = True,
    body_shown: int = BODY_SHOWN,
) -> str:
    """One line: `curl -sS -i [-X M] [-L] [-k] [--max-time N] -H 'Name: value'… [--data-raw '…'] 'URL'`.

    `-L` (follow redirects, when `follow_redirects`) is left out when any header carries a credential: the line
    is run by a person with the real value in their environment, and curl -L sends every -H header on to
    whatever host a redirect names (only curl 7.58.0 and later drop Authorization and Cookie there, and only
    7.83.0 and later on another port of the same host: CVE-2018-1000007, CVE-2022-27776). The line holds no
    shell comment: interactive zsh does not treat `#` as one (without `interactivecomments`) and would hand
    its words to curl (a red team saw `-L:` read as -L).

    `headers` and `body` are what was sent (probe.Exchange.request_headers / request_body, unmasked);
    a body the probe cut (its excerpt ends with "…") cannot be repeated exactly; at most `body_shown`
    characters of it are shown. `environ` (default os.environ) is only read to name the variable holding a
    secret.
    """
    env = _reverse_env(os.environ if environ is None else environ)
    verb = method.upper()
    parts = ["curl", "-sS", "-i"]
    if verb == "HEAD":
        parts.append("--head")  # `-X HEAD` makes curl wait for a body that never comes
    elif verb != "GET" or body:
        parts += ["-X", verb]
    shown_headers: list[str] = []
    credential = False  # a header curl -L could send on to a redirect's other host
    for name, value in headers.items():
        if str(name).lower() in _SKIP_HEADERS:
            continue
        text, secret = _header(str(name), "" if value is None else str(value), redactor, env)
        shown_headers += ["-H", text]
        credential = credential or secret
    if follow_redirects and not credential:
        parts.append("-L")
    if not verify_tls:
        parts.append("-k")
    if timeout_s:
        parts += ["--max-time", f"{timeout_s:g}"]
    parts += shown_headers
    if body:
        # Masked whole, then cut (redact.excerpt): a cut body ends in "…", which the reader sees in the line.
        parts += ["--data-raw", _quote(redactor.excerpt(body, body_shown))]
    parts.append(_quote(redactor.text(url)))
    return " ".join(parts)


def _quote(text: str) -> str:
    """shlex.quote, and always quoted when the word starts with '=': zsh (EQUALS, on by default) reads `=word` as
    the path of the command `word` (a red team: a form body "=hello" stopped the pasted line with "zsh: hello not
    found")."""
    quoted = shlex.quote(text)
    return "'" + text + "'" if quoted == text and text.startswith("=") else quoted


def _header(name: str, value: str, redactor: Redactor, env: Mapping[str, str]) -> tuple[str, bool]:
    """The header as a quoted `-H` argument, and whether it carries a credential."""
    masked = redactor.headers({name: value})[name]
    # A value held by a secret-looking variable (API_TOKEN) is a secret under any header name.
    secret = masked != value or is_secret_name(name) or redactor.is_known(value) or is_secret_name(env.get(value, ""))
    if not secret:
        return shlex.quote(f"{name}: {value}"), False
    if value in env:
        return shlex.quote(f"{name}: ") + f'"${env[value]}"', True
    m = _SCHEME.match(value)
    if m and m.group("cred") in env:
        return shlex.quote(f"{name}: {m.group('scheme')}") + f'"${env[m.group("cred")]}"', True
    if masked == value:  # a secret name whose value the redactor let through (e.g. a flag): mask anyway
        masked = MASK
    return shlex.quote(f"{name}: {masked}"), True


def _reverse_env(environ: Mapping[str, str]) -> dict[str, str]:
    """value -> the variable holding it; secret-looking names win, then the alphabetically first."""
    out: dict[str, str] = {}
    for name in sorted(environ, key=lambda n: (not is_secret_name(n), n)):
        value = environ[name]
        if len(value) >= 4 and _SHELL_NAME.match(name) and name.upper() not in _NOT_REFERENCED:
            out.setdefault(value, name)
    return out
