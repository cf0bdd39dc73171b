"""No part of a secret reaches any output when text is shortened (the nu16 tester's finding on issue 12).

Secrets are planted through `${VAR}` in an Authorization header, a JSON body field, a query parameter and a
scheme-style custom header (`X-Partner: Token …`), each in its own interfaces with its own secret so that no
placement is masked thanks to another. A local server echoes what it got after padding of every length in a
sweep, so the cuts (a value quoted in a reason: 60 characters, a schema message: 80, the response and the
request body excerpts: 2 KiB) fall inside the secret at every offset. Then no prefix of 4+ characters of any
secret may appear in the terminal, in any file the run wrote (state folder and log included) or in JUnit.
"""

from __future__ import annotations

import json

import pytest
from localserver import LocalServer, Response
from test_plugin import write

# All capitals and digits: none reads like a key by itself (redact.looks_like_key), so each is masked only
# because of where it was sent, which is what this test is about. Heads are distinct and unusual.
S = {
    "auth": "ZK4W-PLANT-1234",     # Authorization: Bearer ${AUTH_PLANT}
    "body": "VX8M-PLANT-5678",     # json: {password: ${BODY_PLANT}}
    "query": "JQ2R-PLANT-9012",    # params: {sign: ${QUERY_PLANT}}
    "partner": "HY6T-PLANT-3456",  # X-Partner: Token ${PARTNER_PLANT}
}
ENV = {f"{k.upper()}_PLANT": v for k, v in S.items()}
PLACE = {
    "auth": {"headers": {"Authorization": "Bearer ${AUTH_PLANT}"}},
    "body": {"method": "POST", "json": {"password": "${BODY_PLANT}"}},
    "query": {"params": {"sign": "${QUERY_PLANT}"}},
    "partner": {"headers": {"X-Partner": "Token ${PARTNER_PLANT}"}},
}


def echo(req) -> Response:
    """{"pad": N characters, "echo": M characters + what was sent where the secret went}."""
    q = {k: v[0] for k, v in req.query.items()}
    sent = {"auth": req.headers.get("authorization", ""), "body": req.text(),
            "query": json.dumps(req.query), "partner": req.headers.get("x-partner", "")}[q["place"]]
    return Response(200, {}, {"pad": "p" * int(q["n"]), "echo": "e" * int(q["m"]) + sent,
                              "headers": req.headers})


def interfaces() -> list[dict]:
    out = []
    for place, how in PLACE.items():
        # M moves the secret across the 60-character cut of a quoted value (and the 80 of a schema message);
        # N = 2000 - M + M % 16 moves it across the 2 KiB response excerpt at 16 consecutive offsets.
        for check, ms in (("equals", range(20, 64)), ("schema", range(44, 72))):
            for m in ms:
                n = 2000 - m + m % 16
                expect = ({"body": [{"path": "echo", "equals": "x"}]} if check == "equals"
                          else {"schema": {"properties": {"echo": {"type": "integer"}}}})
                params = {**how.get("params", {}), "place": place, "m": str(m), "n": str(n)}
                out.append({"name": f"{place}-{check}-{m}", "path": "/echo", **how, "params": params,
                            "expect": expect})
    for p in range(2000, 2024):  # the request body excerpt (2 KiB) cut inside the password
        out.append({"name": f"body-request-{p}", "path": "/echo", "method": "POST",
                    "json": {"pad": "q" * p, "password": "${BODY_PLANT}"},
                    "params": {"place": "partner", "m": "0", "n": "0"}, "expect": {"status": 201}})
    return out


def shown_prefixes(text: str) -> dict[str, str]:
    """place -> the 4-character head of its secret, where it appears (any longer prefix contains it)."""
    return {place: secret[:4] for place, secret in S.items() if secret[:4] in text}


@pytest.mark.parametrize("extra", [pytest.param([], id="inprocess"), pytest.param(["-n", "2"], id="xdist")])
def test_no_prefix_of_a_planted_secret_in_any_output_whatever_the_cut(pytester, monkeypatch, extra) -> None:
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    with LocalServer() as server:
        for method in ("GET", "POST"):
            server.route(method, "/echo", echo)
        write(pytester.path, "config.yaml", f"""
            defaults: {{retries: 0, timeout: 5}}
            services:
              plant: {{base_url: "{server.url}"}}
            report: {{markdown: out/report.md, json: out/results.json, html: out/status.html}}
        """)
        write(pytester.path, "pool/plant/echo.json", json.dumps(interfaces()))
        result = pytester.runpytest("--apimon", "pool", "-v", "-rA", "--junitxml", "out/junit.xml", *extra)
        sent = [r for r in server.requests if r.path == "/echo"]

    total = len(interfaces())
    result.assert_outcomes(failed=total)
    assert len(sent) == total
    # The secrets were really sent where planted (the server saw them), and the cuts fell on masked values.
    assert any(S["partner"] in r.headers.get("x-partner", "") for r in sent)
    assert any(S["query"] in r.query.get("sign", [""])[0] for r in sent)
    results = json.loads((pytester.path / "out" / "results.json").read_text(encoding="utf-8"))["results"]
    assert any(r["response_body"].endswith("*…") for r in results), "no response excerpt was cut in a mask"
    assert any("*…" in r["reason"] for r in results), "no reason value was cut in a mask"
    assert all(r["key"] == f"plant/{r['name']}" for r in results)  # the record's own field is never masked

    channels = {"stdout": result.stdout.str(), "stderr": result.stderr.str()}
    files = [p for p in pytester.path.rglob("*") if p.is_file() and p.name != "config.yaml"
             and "pool" not in p.relative_to(pytester.path).parts]
    assert {"junit.xml", "report.md", "results.json", "status.html", "apimon.log", "state.db"} <= {
        p.name for p in files}
    for path in files:
        channels[str(path.relative_to(pytester.path))] = path.read_bytes().decode("utf-8", "replace")
    found = {name: shown_prefixes(text) for name, text in channels.items() if shown_prefixes(text)}
    assert not found, f"part of a planted secret leaked: {found}"


def test_scheme_style_header_echoed_back_is_masked(pytester, local_server: LocalServer) -> None:
    """The docs' own example, `X-Partner: Token k-93jd82hd`, written literally in a document: the request
    header and the curl line showed ******, the server's echo of it did not."""
    local_server.route("GET", "/echo", lambda r: Response(500, {"X-Seen": r.headers.get("x-partner", "")},
                                                          {"headers": r.headers}))
    write(pytester.path, "config.yaml", f"""
        defaults: {{retries: 0}}
        services:
          partner: {{base_url: "{local_server.url}"}}
        report: {{json: out/results.json}}
    """)
    write(pytester.path, "pool/partner/api.yaml", """
        - name: echo
          path: /echo
          headers: {X-Partner: "Token k-93jd82hd"}
    """)
    result = pytester.runpytest("--apimon", "pool", "-v", "--junitxml", "out/junit.xml")
    result.assert_outcomes(failed=1)
    assert local_server.last("/echo").headers["x-partner"] == "Token k-93jd82hd"
    out = result.stdout.str()
    assert '"x-partner": "token ******"' in out.lower()  # the scheme word stays readable
    for text in (out, *(p.read_text(encoding="utf-8", errors="replace") for p in (pytester.path / "out").iterdir()),
                 (pytester.path / ".apimon" / "apimon.log").read_text(encoding="utf-8")):
        assert "k-93" not in text
