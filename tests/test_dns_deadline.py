"""Name resolution counts against the request's deadline (issue 19.3).

The resolver is patched in this test process only (socket.getaddrinfo): lookups of the fake names block on an
event the test controls, so the tests assert on the order of events (the request returned while the lookup was
still unanswered), not on wall-clock time.
"""

from __future__ import annotations

import json
import socket
import subprocess
import threading
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from localserver import LocalServer
from test_plugin import write

from pytest_apimon.probe import Request, new_session, send

FAST = "api.example.test"
GONE = "gone.example.test"


class FakeResolver:
    """slow-*: no answer until `release` is set, then 'temporary failure'; FAST: 127.0.0.1; GONE: NXDOMAIN.

    Each test gets its own slow name (`.slow`): a lookup parked by an earlier test, released at its teardown, must
    not be shared with this test's requests (probe.resolve shares lookups in flight by name)."""

    def __init__(self, real) -> None:
        self.real = real
        self.release = threading.Event()
        self.calls: Counter[str] = Counter()
        self.lock = threading.Lock()
        self.slow = f"slow-{uuid.uuid4().hex[:12]}.example.test"

    def __call__(self, host, port, *args, **kwargs):
        name = host.decode() if isinstance(host, bytes) else host
        with self.lock:
            self.calls[name] += 1
        if name.startswith("slow-"):
            self.release.wait(30)
            raise socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")
        if name == GONE:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        if name == FAST:
            return self.real("127.0.0.1", port, *args, **kwargs)
        return self.real(host, port, *args, **kwargs)


@pytest.fixture
def resolver(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeResolver]:
    fake = FakeResolver(socket.getaddrinfo)
    monkeypatch.setattr(socket, "getaddrinfo", fake)
    yield fake
    fake.release.set()  # let the parked lookup threads end


def test_slow_resolver_is_a_dns_failure_within_the_deadline(resolver: FakeResolver,
                                                           session: requests.Session) -> None:
    ex = send(session, Request("GET", f"http://{resolver.slow}/x", timeout=0.3))
    assert not resolver.release.is_set()  # returned while the lookup was still unanswered
    assert ex.error is not None and (ex.error.kind, ex.error.sub) == ("network", "dns")
    assert ex.error.message == f"DNS lookup for {resolver.slow} did not answer within 0.3 s"


def test_lookup_is_part_of_connecting(resolver: FakeResolver, session: requests.Session) -> None:
    ex = send(session, Request("GET", f"http://{resolver.slow}/x", timeout=5, connect_timeout=0.2))
    assert not resolver.release.is_set()
    assert ex.error is not None and ex.error.message == f"DNS lookup for {resolver.slow} did not answer within 0.2 s"


def test_failed_lookup_still_reads_as_before(resolver: FakeResolver, session: requests.Session) -> None:
    ex = send(session, Request("GET", f"http://{GONE}/x", timeout=2))
    assert ex.error is not None and (ex.error.kind, ex.error.sub) == ("network", "dns")
    assert ex.error.message == f"DNS lookup failed for {GONE}"


def test_concurrent_lookups_of_one_name_share_one_worker(resolver: FakeResolver, session: requests.Session) -> None:
    results = []
    threads = [threading.Thread(target=lambda: results.append(send(session, Request("GET", f"http://{resolver.slow}/x",
                                                                                      timeout=0.3))))
               for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [r.error.sub for r in results if r.error] == ["dns"] * 8
    assert resolver.calls[resolver.slow] == 1  # one parked lookup, not eight


def test_resolved_address_is_used_and_the_host_name_kept(resolver: FakeResolver, srv: LocalServer,
                                                         session: requests.Session) -> None:
    srv.route("GET", "/ok", lambda r: {"host": r.headers.get("host")})
    url = f"http://{FAST}:{srv.port}/ok"
    ex = send(session, Request("GET", url))
    assert ex.error is None and ex.status == 200
    assert json.loads(ex.body) == {"host": f"{FAST}:{srv.port}"}
    assert send(session, Request("GET", url)).status == 200
    assert resolver.calls[FAST] == 1  # the keep-alive connection was reused: no second lookup


@pytest.fixture(scope="module")
def name_cert(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    """A self-signed certificate valid for the fake name only (not for 127.0.0.1)."""
    directory = Path(tmp_path_factory.mktemp("tls-name"))
    cert, key = directory / "cert.pem", directory / "key.pem"
    cmd = ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-keyout", str(key),
           "-out", str(cert), "-subj", f"/CN={FAST}", "-addext", f"subjectAltName=DNS:{FAST}"]
    try:
        subprocess.run(cmd, check=True, capture_output=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        pytest.skip("openssl CLI not available")
    return str(cert), str(key)


def test_tls_verifies_and_names_the_host_not_the_address(resolver: FakeResolver, name_cert: tuple[str, str],
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", name_cert[0])  # trust the test certificate
    names: list[str | None] = []
    with LocalServer(tls=name_cert) as tls_srv:
        assert tls_srv._tls is not None
        tls_srv._tls.sni_callback = lambda sslobj, name, ctx: names.append(name)
        tls_srv.route("GET", "/ok", lambda r: {"host": r.headers.get("host")})
        session = new_session(verify_tls=True)
        port = tls_srv.port
        ex = send(session, Request("GET", f"https://{FAST}:{port}/ok"))
        session.close()
    assert ex.error is None and ex.status == 200  # certificate checked against the name, not 127.0.0.1
    assert json.loads(ex.body) == {"host": f"{FAST}:{port}"}
    assert names == [FAST]  # SNI


def test_issue_example_resolver_slower_than_timeout(pytester: pytest.Pytester, resolver: FakeResolver) -> None:
    """A resolver that needs 8 s to fail, with `timeout: 2`: network/dns, named, at the deadline."""
    write(pytester.path, "config.yaml", f"""
        defaults: {{retries: 0}}
        services:
          shop: {{base_url: "http://{resolver.slow}", timeout: 2}}
    """)
    write(pytester.path, "pool/shop/api.yaml", "- {name: orders, path: /orders}\n")
    result = pytester.runpytest("--apimon", "pool", "--apimon-json", "out/r.json")
    result.assert_outcomes(failed=1)
    assert not resolver.release.is_set()
    record = json.loads((pytester.path / "out/r.json").read_text(encoding="utf-8"))["results"][0]
    assert (record["category"], record["sub"]) == ("network", "dns")
    assert record["reason"] == f"DNS lookup for {resolver.slow} did not answer within 2 s"
