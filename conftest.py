"""Sample-workspace wiring: start the bundled demo services for `pytest --apimon Interface-pool/`.

config.yaml points the sample services at ${APIMON_DEMO_URL} (and the HTTPS `portal` at ${APIMON_DEMO_TLS_URL}).
When you monitor your own services, delete this file (or keep it for your own fixtures) and set real base URLs in
config.yaml.
"""

from __future__ import annotations

import os

import pytest

from pytest_apimon import demo


def pytest_configure(config: pytest.Config) -> None:
    # Only the controller starts the server; xdist workers are spawned later and inherit the env.
    if not config.getoption("apimon", default=None) or hasattr(config, "workerinput"):
        return
    if os.environ.get("APIMON_DEMO_URL"):
        return  # already running (e.g. `python -m pytest_apimon.demo` in another shell)
    server = demo.start()
    os.environ["APIMON_DEMO_URL"] = server.url
    os.environ["APIMON_DEMO_HOSTPORT"] = f"127.0.0.1:{server.port}"
    os.environ["APIMON_DEMO_TLS_URL"] = server.tls_url

    def stop() -> None:
        server.stop()
        for name in ("APIMON_DEMO_URL", "APIMON_DEMO_HOSTPORT", "APIMON_DEMO_TLS_URL"):
            os.environ.pop(name, None)

    config.add_cleanup(stop)
