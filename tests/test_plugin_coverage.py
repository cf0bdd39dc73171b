"""--apimon-coverage through the plugin, also when the controller of an xdist run collected nothing."""

from __future__ import annotations

import json

import pytest
from localserver import LocalServer
from test_plugin import XDIST, write


def one_service(pytester: pytest.Pytester, local_server: LocalServer) -> None:
    """config.yaml with one service `svc` on `local_server`, whose /ok answers."""
    local_server.route("GET", "/svc/ok", lambda r: {"ok": True})
    write(pytester.path, "config.yaml", f"""
        defaults: {{retries: 0}}
        services:
          svc: {{base_url: "{local_server.url}/svc"}}
    """)


@pytest.mark.parametrize("extra", XDIST)
def test_coverage_lists_blind_spots(pytester, local_server: LocalServer, extra) -> None:
    one_service(pytester, local_server)
    write(pytester.path, "pool/svc/api.yaml", """
        - {name: ok, path: /ok}
        - {name: later, path: /later, skip: 还没上线}
    """)
    write(pytester.path, "pool/svc/bad.yaml", "- {name: x, pth: /x}\n")
    result = pytester.runpytest("--apimon", "pool", "--apimon-coverage", "--apimon-json", "r.json", *extra)
    result.stdout.fnmatch_lines(["*pytest-apimon：监控覆盖*", "svc: *3*", "*还没上线*"])
    cov = json.loads((pytester.path / "r.json").read_text("utf-8"))["coverage"]["svc"]
    assert cov["documented"] == 3 and cov["monitored"] == 1 and cov["invalid"] == 1


def test_coverage_is_masked_and_keeps_one_line_per_record(pytester, local_server: LocalServer, monkeypatch) -> None:
    """A secret in a skipped interface's path or reason (a ${VAR} the document names) is masked in the coverage
    part of the terminal, the Markdown report and results.json, like every other text; with the coverage the
    results file still holds one record per line (report.iter_json)."""
    secret = "Cv21-coverage-77Gh"
    monkeypatch.setenv("PARTNER_TOKEN", secret)  # a secret-looking variable name: masked by value
    one_service(pytester, local_server)
    write(pytester.path, "pool/svc/api.yaml", """
        - {name: ok, path: /ok}
        - {name: later, path: "/later?access_token=${PARTNER_TOKEN}", skip: "not before ${PARTNER_TOKEN}"}
    """)
    result = pytester.runpytest("--apimon", "pool", "--apimon-coverage", "--apimon-json", "r.json",
                                "--apimon-report", "r.md")
    result.stdout.fnmatch_lines(["*pytest-apimon：监控覆盖*"])
    text = (pytester.path / "r.json").read_text("utf-8")
    for output in (result.stdout.str(), text, (pytester.path / "r.md").read_text("utf-8")):
        assert "/later" in output and secret not in output
    doc = json.loads(text)
    assert doc["coverage"]["svc"]["skipped"][0]["reason"] == "not before ******"
    records = [line for line in text.splitlines() if line.startswith('    {"nodeid": ')]
    assert len(records) == len(doc["results"]) == 2
