"""--apimon-coverage through the plugin, also when the controller of an xdist run collected nothing."""

from __future__ import annotations

import json

import pytest
from localserver import LocalServer
from test_plugin import XDIST, write


@pytest.mark.parametrize("extra", XDIST)
def test_coverage_lists_blind_spots(pytester, local_server: LocalServer, extra) -> None:
    local_server.route("GET", "/svc/ok", lambda r: {"ok": True})
    write(pytester.path, "config.yaml", f"""
        defaults: {{retries: 0}}
        services:
          svc: {{base_url: "{local_server.url}/svc"}}
    """)
    write(pytester.path, "pool/svc/api.yaml", """
        - {name: ok, path: /ok}
        - {name: later, path: /later, skip: 还没上线}
    """)
    write(pytester.path, "pool/svc/bad.yaml", "- {name: x, pth: /x}\n")
    result = pytester.runpytest("--apimon", "pool", "--apimon-coverage", "--apimon-json", "r.json", *extra)
    result.stdout.fnmatch_lines(["*pytest-apimon：监控覆盖*", "svc: *3*", "*还没上线*"])
    cov = json.loads((pytester.path / "r.json").read_text("utf-8"))["coverage"]["svc"]
    assert cov["documented"] == 3 and cov["monitored"] == 1 and cov["invalid"] == 1
