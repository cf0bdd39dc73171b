"""A folder under the pool root is one service, named the same however the run is started (nu16 finding):
`--apimon pool`, `--apimon pool/urlsvc` and `--apimon pool/urlsvc/a.yaml` all check service `urlsvc`, with the
same interface keys, so the state (alerts, history) carries over from one way of starting the run to the other."""

from __future__ import annotations

import json

import pytest
from localserver import LocalServer, Response
from test_plugin import write


def _workspace(base, server: LocalServer, configured: bool) -> None:
    services = f'services:\n  api: {{base_url: "{server.url}"}}\n' if configured else ""
    write(base, "config.yaml", f"defaults: {{retries: 0}}\n{services}report: {{json: out/results.json}}\n")
    write(base, "pool/urlsvc/a.yaml", f"""
        - name: abs-url
          url: {server.url}/down
    """)
    write(base, "pool/urlsvc/b.yaml", f"""
        - name: second
          url: {server.url}/up
    """)
    if configured:
        write(base, "pool/api/x.yaml", "- {name: up, path: /up}\n")


def _keys(base) -> dict[str, tuple[str, str]]:
    results = json.loads((base / "out" / "results.json").read_text(encoding="utf-8"))["results"]
    return {r["key"]: (r["service"], r["module"]) for r in results if r["service"] != "api"}


@pytest.mark.parametrize("configured", [True, False], ids=["next-to-a-configured-service", "no-services"])
def test_a_service_keeps_its_name_and_keys_however_the_pool_is_named(pytester, configured) -> None:
    with LocalServer() as server:
        server.route("GET", "/down", lambda r: Response(503, {}, "down"))
        server.route("GET", "/up", lambda r: {"ok": True})
        _workspace(pytester.path, server, configured)
        seen = {}
        for arg in ("pool", "pool/urlsvc", "pool/urlsvc/", "pool/urlsvc/a.yaml"):
            result = pytester.runpytest("--apimon", arg, "-q", "-p", "no:randomly")
            assert result.ret == 1, result.stdout.str()
            seen[arg] = _keys(pytester.path)
            if arg != "pool":  # the same incident as the first run's, not a new one
                assert "[持续，" in result.stdout.str() and "[新告警]" not in result.stdout.str(), arg
    whole = {"urlsvc/abs-url": ("urlsvc", "a"), "urlsvc/second": ("urlsvc", "b")}
    assert seen["pool"] == whole
    assert seen["pool/urlsvc"] == seen["pool/urlsvc/"] == whole
    assert seen["pool/urlsvc/a.yaml"] == {"urlsvc/abs-url": ("urlsvc", "a")}
