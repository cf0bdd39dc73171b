"""The bundled demo services: auth, healthy endpoints, every deliberately broken endpoint, clean stop."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
import yaml

from pytest_apimon import demo, demo_routes
from pytest_apimon.demo import CREDENTIALS, DemoServer

POOL = Path(__file__).resolve().parent.parent / "Interface-pool"


@pytest.fixture(scope="module")
def server() -> Iterator[DemoServer]:
    with DemoServer() as srv:
        yield srv


def login(srv: DemoServer, service: str) -> str:
    username, password = CREDENTIALS[service]
    r = requests.post(f"{srv.url}/{service}/auth/login", json={"username": username, "password": password}, timeout=30)
    assert r.status_code == 200
    return r.json()["data"]["token"]


def get(srv: DemoServer, path: str, token: str | None = None, **kw: object) -> requests.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return requests.get(srv.url + path, headers=headers, timeout=kw.pop("timeout", 30), **kw)  # type: ignore[arg-type]


# ---- lifecycle


@pytest.mark.integration
def test_url_port_and_context_manager() -> None:
    srv = DemoServer()
    assert not srv.running
    with srv as started:
        assert started is srv and srv.running
        assert srv.port > 0
        assert srv.url == f"http://127.0.0.1:{srv.port}"
        assert srv.hostport == f"127.0.0.1:{srv.port}"
        assert get(srv, "/user/health").json() == {"status": "UP"}
    assert not srv.running
    srv.stop()  # idempotent
    with pytest.raises(requests.ConnectionError):
        get(srv, "/user/health", timeout=2)


@pytest.mark.integration
def test_module_level_start() -> None:
    srv = demo.start()
    try:
        assert get(srv, "/admin/health").status_code == 200
    finally:
        srv.stop()


def test_request_logging_is_silenced(capfd: pytest.CaptureFixture[str], server: DemoServer) -> None:
    get(server, "/user/health")
    get(server, "/nope")
    assert capfd.readouterr().err == ""


# ---- auth


@pytest.mark.parametrize("service", ["user", "nurse", "admin"])
def test_health_needs_no_auth(server: DemoServer, service: str) -> None:
    r = get(server, f"/{service}/health")
    assert r.status_code == 200 and r.json() == {"status": "UP"}


@pytest.mark.parametrize("service", ["user", "nurse", "admin"])
def test_login_ok_is_counted(server: DemoServer, service: str) -> None:
    before = server.logins[service]
    r = requests.post(
        f"{server.url}/{service}/auth/login",
        json=dict(zip(("username", "password"), CREDENTIALS[service], strict=True)),
        timeout=30,
    )
    body = r.json()
    assert r.status_code == 200 and body["code"] == 0 and body["msg"] == "ok"
    assert len(body["data"]["token"]) == 32 and body["data"]["expires_in"] == 3600
    assert server.logins[service] == before + 1


def test_login_wrong_password(server: DemoServer) -> None:
    before = server.logins["user"], server.failed_logins["user"]
    r = requests.post(f"{server.url}/user/auth/login", json={"username": "demo", "password": "nope"}, timeout=30)
    assert r.status_code == 401
    assert r.json() == {"code": 40101, "msg": "用户名或密码错误"}
    assert (server.logins["user"], server.failed_logins["user"]) == (before[0], before[1] + 1)


def test_login_with_another_services_credentials_fails(server: DemoServer) -> None:
    r = requests.post(f"{server.url}/nurse/auth/login", json={"username": "demo", "password": "d3mo-pass"}, timeout=30)
    assert r.status_code == 401


def test_protected_endpoint_requires_own_services_token(server: DemoServer) -> None:
    assert get(server, "/user/profile").status_code == 401
    assert get(server, "/user/profile", token="not-a-token").status_code == 401
    assert get(server, "/user/profile", token=login(server, "nurse")).status_code == 401
    r = get(server, "/user/profile", token=login(server, "user"))
    assert r.status_code == 200 and r.json()["data"]["name"] == "张伟"


def test_route_accepting_another_services_token(server: DemoServer) -> None:
    assert get(server, "/user/manage/users", token=login(server, "user")).status_code == 401
    assert get(server, "/user/manage/users", token=login(server, "admin")).status_code == 200


def test_expire_tokens(server: DemoServer) -> None:
    token = login(server, "nurse")
    assert get(server, "/nurse/wards", token=token).status_code == 200
    server.expire_tokens("nurse")
    assert get(server, "/nurse/wards", token=token).status_code == 401


def test_direct_token_counts_as_login(server: DemoServer) -> None:
    before = server.logins["admin"]
    assert get(server, "/admin/dashboard/stats", token=server.token("admin")).status_code == 200
    assert server.logins["admin"] == before + 1


# ---- healthy endpoints


def test_user_list_paging(server: DemoServer) -> None:
    data = get(server, "/user/users", login(server, "user"), params={"page": 2, "size": 3}).json()["data"]
    assert (data["page"], data["size"], data["total"]) == (2, 3, 7)
    assert data["items"][0]["id"] == 1004


def test_user_search_with_chinese_query(server: DemoServer) -> None:
    r = get(server, "/user/users/search", login(server, "user"), params={"keyword": "张", "status": "active"})
    assert [u["name"] for u in r.json()["data"]["items"]] == ["张伟", "张敏"]


def test_create_and_update(server: DemoServer) -> None:
    auth = {"Authorization": f"Bearer {login(server, 'user')}"}
    r = requests.post(f"{server.url}/user/users", json={"name": "测试用户"}, headers=auth, timeout=30)
    assert r.status_code == 201 and r.json()["data"]["name"] == "测试用户" and "Location" in r.headers
    r = requests.post(f"{server.url}/user/users", json={}, headers=auth, timeout=30)
    assert r.status_code == 400
    r = requests.put(f"{server.url}/user/users/1002", json={"status": "locked"}, headers=auth, timeout=30)
    assert r.status_code == 200 and r.json()["data"]["status"] == "locked"
    assert requests.put(f"{server.url}/user/users/9999", json={}, headers=auth, timeout=30).status_code == 404


def test_form_post(server: DemoServer) -> None:
    r = requests.post(
        f"{server.url}/nurse/patients/50002/care-records",
        data={"content": "晨间护理完成"},
        headers={"Authorization": f"Bearer {login(server, 'nurse')}"},
        timeout=30,
    )
    assert r.status_code == 201 and r.json()["data"]["content"] == "晨间护理完成"


def test_echo_shows_request(server: DemoServer) -> None:
    token = login(server, "user")
    r = get(server, "/user/echo", token, params={"lang": "zh-CN"})
    body = r.json()
    assert body["query"] == {"lang": "zh-CN"} and body["authorized"] is True
    assert get(server, "/user/echo").json()["authorized"] is False


def test_json_is_utf8(server: DemoServer) -> None:
    r = get(server, "/nurse/schedules", login(server, "nurse"), params={"ward": "W01"})
    assert r.headers["Content-Type"] == "application/json; charset=utf-8"
    assert "白班".encode() in r.content  # not \u-escaped
    assert r.json()["data"]["items"][0]["shift"] == "白班"


def test_unknown_path_and_wrong_method(server: DemoServer) -> None:
    r = get(server, "/admin/reports/legacy", login(server, "admin"))
    assert r.status_code == 404 and r.json()["code"] == 40400
    assert get(server, "/nope/health").status_code == 404
    r = requests.delete(f"{server.url}/user/health", timeout=30)
    assert r.status_code == 405 and r.headers["Allow"] == "GET"


# ---- broken on purpose


def test_server_error_has_stack_trace(server: DemoServer) -> None:
    r = get(server, "/user/orders/export", login(server, "user"))
    assert r.status_code == 500
    assert "NullPointerException" in r.json()["trace"]


def test_unavailable_has_retry_after(server: DemoServer) -> None:
    r = get(server, "/nurse/wards/occupancy", login(server, "nurse"))
    assert r.status_code == 503 and r.headers["Retry-After"] == demo.RETRY_AFTER


def test_rate_limited_has_retry_after(server: DemoServer) -> None:
    r = get(server, "/admin/reports/bulk-export", login(server, "admin"))
    assert r.status_code == 429 and r.headers["Retry-After"] == demo.RETRY_AFTER


def test_forbidden(server: DemoServer) -> None:
    r = get(server, "/admin/audit/logs", login(server, "admin"))
    assert r.status_code == 403 and r.json()["code"] == 40301


def test_business_error_in_200(server: DemoServer) -> None:
    r = get(server, "/admin/notifications", login(server, "admin"))
    assert r.status_code == 200 and r.json()["code"] == 50001 and r.json()["data"] is None


class RecordingStop(threading.Event):
    """Stands in for the demo server's stop event, which its slow handlers wait on: records how long they asked
    to wait, and lets the test end the wait."""

    def __init__(self) -> None:
        super().__init__()
        self.waits: list[float | None] = []

    def wait(self, timeout: float | None = None) -> bool:
        self.waits.append(timeout)
        return super().wait(timeout)


@pytest.fixture
def stop_event(server: DemoServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[RecordingStop]:
    event = RecordingStop()
    monkeypatch.setattr(server, "_stop", event)
    yield event
    event.set()  # release any handler still waiting


def test_slowish_endpoint(server: DemoServer, stop_event: RecordingStop) -> None:
    token = login(server, "user")
    r = get(server, "/user/recommendations", token)
    assert r.status_code == 200 and stop_event.waits == [demo_routes.SLOWISH_SECONDS]  # documents allow 100 ms


def test_slow_endpoint_times_out(server: DemoServer, stop_event: RecordingStop,
                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(demo_routes, "SLOW_SECONDS", 3600.0)  # answers only when the test releases it
    token = login(server, "nurse")
    with pytest.raises(requests.ReadTimeout):
        get(server, "/nurse/reports/monthly", token, timeout=(5, 0.2))
    assert stop_event.waits == [3600.0]


def test_dripping_defeats_read_timeout(server: DemoServer, stop_event: RecordingStop) -> None:
    # Headers arrive at once, then one byte every DRIP_INTERVAL: far inside any read timeout, so only a total
    # deadline can cut it (DRIP_BYTES x DRIP_INTERVAL = 30 s).
    with get(server, "/nurse/vitals/stream", login(server, "nurse"), timeout=(5, 30), stream=True) as r:
        assert r.status_code == 200 and int(r.headers["Content-Length"]) == demo.DRIP_BYTES
        got = b""
        for chunk in r.iter_content(1):
            got += chunk
            if len(got) == 4:
                break
    assert got == b'{"co'
    assert len(stop_event.waits) >= 3 and set(stop_event.waits) == {demo_routes.DRIP_INTERVAL}
    assert demo.DRIP_BYTES * demo_routes.DRIP_INTERVAL >= 30


def test_tls_to_plain_http_port(server: DemoServer) -> None:
    with pytest.raises(requests.exceptions.SSLError):
        requests.get(f"https://{server.hostport}/user/health", timeout=2)
    assert get(server, "/user/health").status_code == 200  # the server survives it


@pytest.mark.integration
def test_stop_ends_dripping_and_slow_handlers_quickly() -> None:
    srv = DemoServer().start()
    nurse = srv.token("nurse")
    outcome: dict[str, object] = {}

    def drip() -> None:
        try:
            with get(srv, "/nurse/vitals/stream", nurse, timeout=(2, 5), stream=True) as r:
                outcome["bytes"] = len(r.raw.read(demo.DRIP_BYTES))
        except Exception as exc:  # truncated body: urllib3 ProtocolError / IncompleteRead
            outcome["error"] = exc

    def slow() -> None:
        try:
            get(srv, "/nurse/reports/monthly", nurse, timeout=(2, 5))
        except requests.RequestException as exc:
            outcome["slow"] = exc

    clients = [threading.Thread(target=drip), threading.Thread(target=slow)]
    for t in clients:
        t.start()
    deadline = time.monotonic() + 60  # a hang guard: the loop ends as soon as both handlers run
    while srv.active_connections() < 2 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert srv.active_connections() == 2
    srv.stop(timeout=60)  # returns once every handler thread ended; they end at once or this test hangs
    assert srv.active_connections() == 0
    for t in clients:
        t.join(60)
        assert not t.is_alive()
    assert "error" in outcome or outcome["bytes"] < demo.DRIP_BYTES  # type: ignore[operator]
    assert "slow" in outcome


@pytest.mark.integration
def test_idle_keepalive_connection_does_not_block_stop() -> None:
    srv = DemoServer().start()
    session = requests.Session()
    assert session.get(f"{srv.url}/user/health", timeout=30).status_code == 200  # connection stays open
    srv.stop(timeout=60)
    assert srv.active_connections() == 0
    session.close()


def test_hits_are_counted(server: DemoServer) -> None:
    before = server.hits["GET /admin/health"]
    get(server, "/admin/health")
    get(server, "/admin/health")
    assert server.hits["GET /admin/health"] == before + 2


# ---- CLI


@pytest.mark.integration
def test_cli_prints_url_and_stops_on_ctrl_c() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "pytest_apimon.demo", "--port", "0"], stdout=subprocess.PIPE, text=True,
        # As from a terminal: SIGINT at its default, whatever disposition this (xdist worker) process passes on.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        url = line.split(" at ", 1)[1].split()[0]
        assert "演示服务已启动" in line  # the first line is bilingual like the rest of the banner (issue 20)
        assert url.startswith("http://127.0.0.1:")
        assert requests.get(f"{url}/nurse/health", timeout=30).json() == {"status": "UP"}
        proc.send_signal(signal.SIGINT)
        assert proc.wait(60) == 0  # a hang guard: SIGINT stops it at once
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


# ---- the sample workspace stays in step with the demo


def _sample_interfaces() -> list[tuple[Path, dict[str, object]]]:
    out = []
    for path in sorted(POOL.rglob("*")):
        if path.suffix not in (".yaml", ".yml", ".json") or path.name.endswith(".schema.json"):
            continue
        text = path.read_text(encoding="utf-8")
        data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
        items = data["interfaces"] if isinstance(data, dict) and "interfaces" in data else data
        out += [(path, item) for item in (items if isinstance(items, list) else [items])]
    return out


def test_sample_workspace_shape() -> None:
    interfaces = _sample_interfaces()
    assert len(interfaces) >= 24
    assert {p.relative_to(POOL).parts[0] for p, _ in interfaces} == {"user", "nurse", "admin", "portal"}
    assert sum(1 for _, i in interfaces if "skip" in i) == 1
    schema = (POOL.parent / "pytest_apimon" / "schema" / "interface-document.schema.json").resolve()
    for path in {p for p, _ in interfaces}:
        text = path.read_text(encoding="utf-8")
        if path.suffix == ".json":
            ref = json.loads(text).get("$schema") if text.lstrip().startswith("{") else None
        else:
            first = text.splitlines()[0]
            assert first.startswith("# yaml-language-server: $schema="), path
            ref = first.split("=", 1)[1]
        if ref:
            assert (path.parent / ref).resolve() == schema, path


def test_sample_paths_exist_on_demo(server: DemoServer) -> None:
    """Every sample `path:` is routed by the demo, except the one meant to be 404 and skipped ones."""
    on_purpose_missing = {"/reports/legacy"}
    for path, itf in _sample_interfaces():
        if "path" not in itf or "skip" in itf or itf["path"] in on_purpose_missing:
            continue
        service = path.relative_to(POOL).parts[0]
        method = str(itf.get("method", "GET"))
        rest = str(itf["path"])
        routes = demo.ROUTES[service]
        if method not in {"GET", "POST", "PUT", "PATCH", "DELETE"}:
            continue  # admin/broken.yaml: invalid on purpose
        assert any(r.method == method and r.pattern.fullmatch(rest) for r in routes), f"{path}: {method} {rest}"


def test_sample_checks_pass_against_the_demo(pytester: pytest.Pytester, server: DemoServer) -> None:
    """Interface-pool/admin/checks.yaml (every kind of check once, issue 16) passes against the demo services."""
    (pytester.path / "config.yaml").write_text(f"services:\n  admin: {{base_url: {server.url}/admin}}\n", "utf-8")
    pool = pytester.path / "pool" / "admin"
    pool.mkdir(parents=True)
    text = (POOL / "admin" / "checks.yaml").read_text("utf-8").replace("../../pytest_apimon", "../../../pytest_apimon")
    (pool / "checks.yaml").write_text(text, "utf-8")
    result = pytester.runpytest("--apimon", "pool")
    result.assert_outcomes(passed=3)


# ---- HTTPS with a certificate that expires soon (issue 16)


def test_https_listener_serves_a_certificate_expiring_in_demo_cert_days(server: DemoServer) -> None:
    from cryptography import x509

    from pytest_apimon import certs
    from pytest_apimon.probe import Request, new_session, send

    assert server.tls_url.startswith("https://127.0.0.1:") and server.tls_port != server.port
    ex = send(new_session(verify_tls=False), Request("GET", server.tls_url + "/portal/health", verify_tls=False))
    assert ex.error is None and ex.text() == '{"status": "UP"}'
    [not_after] = ex.certificates.values()
    pem = x509.load_pem_x509_certificate(server.cert_pem)
    assert not_after == pem.not_valid_after_utc.timestamp()
    made = pem.not_valid_before_utc.timestamp() + 86400  # issued "now", valid from a day before
    assert certs.days_left(not_after, made) == demo_routes.DEMO_CERT_DAYS


def test_short_lived_certificate_is_self_signed_for_localhost() -> None:
    from cryptography import x509

    cert_pem, key_pem = demo.short_lived_certificate(days=2, now=1_800_000_000)
    cert = x509.load_pem_x509_certificate(cert_pem)
    assert cert.not_valid_after_utc.timestamp() == 1_800_000_000 + 2 * 86400
    assert cert.issuer == cert.subject and b"PRIVATE KEY" in key_pem
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "localhost" in names.get_values_for_type(x509.DNSName)


def test_sample_portal_passes_with_a_certificate_warning(pytester: pytest.Pytester, server: DemoServer) -> None:
    """Interface-pool/portal (HTTPS, certificate expiring in 5 days) passes; the report warns."""
    (pytester.path / "config.yaml").write_text(
        f"services:\n  portal: {{base_url: {server.tls_url}/portal, verify_tls: false}}\n", "utf-8")
    pool = pytester.path / "pool" / "portal"
    pool.mkdir(parents=True)
    text = (POOL / "portal" / "health.yaml").read_text("utf-8")
    (pool / "health.yaml").write_text(text.replace("../../pytest_apimon", "../../../pytest_apimon"), "utf-8")
    result = pytester.runpytest("--apimon", "pool", "--apimon-json", "r.json")
    result.assert_outcomes(passed=1)
    [cert] = json.loads((pytester.path / "r.json").read_text("utf-8"))["certificates"]
    assert cert["level"] == "warning" and cert["origin"] == f"https://127.0.0.1:{server.tls_port}"
    assert "证书即将过期 (1)" in result.stdout.str()
