"""--apimon-html and --apimon-prometheus through the plugin; the WeCom report links the status page."""

from __future__ import annotations

import pytest
from fake_wecom import KEY, FakeWeCom
from localserver import LocalServer, Response
from test_plugin import XDIST, write


@pytest.mark.parametrize("extra", XDIST)
def test_status_page_and_metrics_written(pytester, local_server: LocalServer, extra) -> None:
    prometheus_parser = pytest.importorskip("prometheus_client.parser")
    local_server.route("GET", "/svc/ok", lambda r: {"ok": True})
    local_server.route("GET", "/svc/boom", lambda r: Response(500, {}, "boom"))
    with FakeWeCom() as fake:
        write(pytester.path, "config.yaml", f"""
            defaults: {{retries: 0}}
            services:
              svc: {{base_url: "{local_server.url}/svc"}}
            report:
              status_page_url: https://status.example.internal/apimon.html
            notify:
              wecom: [{{name: ops, webhook: {KEY}, base_url: "{fake.base_url}"}}]
        """)
        write(pytester.path, "pool/svc/api.yaml", "- {name: 正常, path: /ok}\n- {name: 坏了, path: /boom}\n")
        for _ in range(2):
            pytester.runpytest("--apimon", "pool", "--apimon-html", "site/index.html",
                               "--apimon-prometheus", "prom/apimon.prom", *extra).assert_outcomes(passed=1, failed=1)
        report = fake.messages[0].content
    html = (pytester.path / "site/index.html").read_text("utf-8")
    assert html.startswith("<!DOCTYPE html>") or html.lower().startswith("<!doctype html>")
    assert "正常" in html and "坏了" in html and "http://" not in html.split("<body", 1)[0]
    families = {f.name: f for f in prometheus_parser.text_string_to_metric_families(
        (pytester.path / "prom/apimon.prom").read_text("utf-8"))}
    up = {s.labels["interface"]: s.value for s in families["apimon_interface_up"].samples}
    assert up == {"正常": 1.0, "坏了": 0.0}
    assert "(https://status.example.internal/apimon.html)" in report
