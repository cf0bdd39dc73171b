"""TLS certificate expiry (issue 16, req 4): notAfter per HTTPS origin from the connection actually used,
thresholds, messages. Real HTTPS servers on 127.0.0.1 with trustme certificates; the clock is injected."""

from __future__ import annotations

import socket
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fake_wecom import KEY, FakeWeCom
from hypothesis import given
from hypothesis import strategies as st
from localserver import IssuedCert, LocalServer, Response, issue_cert
from test_alert_messages import record
from test_statuspage import by_id, parse

from pytest_apimon import alerts, certs
from pytest_apimon.categories import Category, Outcome
from pytest_apimon.config import ConfigError, load_config
from pytest_apimon.documents import Expect, Interface
from pytest_apimon.engine import Engine
from pytest_apimon.origins import origin_of
from pytest_apimon.probe import Environment, Request, new_session, send
from pytest_apimon.redact import Redactor
from pytest_apimon.report import render_json, render_markdown, render_terminal
from pytest_apimon.results import InterfaceResult, RunResult
from pytest_apimon.state import StateStore
from pytest_apimon.statuspage import render_status_page

pytestmark = pytest.mark.integration

DAY = 86400.0


@pytest.fixture(scope="module")
def tls_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return Path(tmp_path_factory.mktemp("certs"))


def _server(cert: IssuedCert) -> Iterator[LocalServer]:
    with LocalServer(tls=cert.tls) as srv:
        srv.route("GET", "/ok", lambda r: {"ok": True})
        yield srv


@pytest.fixture(scope="module")
def in_5_days(tls_dir: Path) -> IssuedCert:
    return issue_cert(tls_dir, time.time() + 5 * DAY + 3600, "five")  # an hour of slack for a slow suite


@pytest.fixture(scope="module")
def expired(tls_dir: Path) -> IssuedCert:
    return issue_cert(tls_dir, time.time() - 3 * DAY - 3600, "expired")


@pytest.fixture
def five(in_5_days: IssuedCert) -> Iterator[LocalServer]:
    yield from _server(in_5_days)


@pytest.fixture
def old(expired: IssuedCert) -> Iterator[LocalServer]:
    yield from _server(expired)


def test_not_after_from_the_connection_with_a_ca_bundle(five: LocalServer, in_5_days: IssuedCert) -> None:
    ex = send(new_session(), Request("GET", five.url + "/ok", ca_bundle=in_5_days.ca_file))
    assert ex.error is None and ex.status == 200
    assert ex.certificates == {origin_of(five.url): in_5_days.not_after}


def test_not_after_with_verification_off(five: LocalServer, in_5_days: IssuedCert) -> None:
    ex = send(new_session(verify_tls=False), Request("GET", five.url + "/ok", verify_tls=False))
    assert ex.error is None and ex.certificates == {origin_of(five.url): in_5_days.not_after}


def test_reused_connection_keeps_its_certificate(five: LocalServer, in_5_days: IssuedCert) -> None:
    session = new_session(verify_tls=False)
    for _ in range(3):
        ex = send(session, Request("GET", five.url + "/ok", verify_tls=False))
        assert ex.certificates == {origin_of(five.url): in_5_days.not_after}
    assert len({r.client_port for r in five.requests}) == 1  # one connection, one handshake


def test_every_hop_of_a_redirect_is_recorded(five: LocalServer, in_5_days: IssuedCert, old: LocalServer,
                                             expired: IssuedCert, srv: LocalServer) -> None:
    five.route("GET", "/to-old", lambda r: Response(302, {"Location": old.url + "/ok"}))
    srv.route("GET", "/plain", lambda r: Response(302, {"Location": five.url + "/to-old"}))
    ex = send(new_session(verify_tls=False), Request("GET", srv.url + "/plain", verify_tls=False))
    assert ex.status == 200
    assert ex.certificates == {origin_of(five.url): in_5_days.not_after, origin_of(old.url): expired.not_after}


def test_plain_http_has_no_certificate(srv: LocalServer) -> None:
    srv.route("GET", "/ok", lambda r: {"ok": True})
    assert send(new_session(), Request("GET", srv.url + "/ok")).certificates == {}


def test_expired_certificate_stays_a_tls_failure_and_names_its_not_after(old: LocalServer,
                                                                         expired: IssuedCert) -> None:
    ex = send(new_session(), Request("GET", old.url + "/ok", ca_bundle=expired.ca_file))
    assert ex.error is not None and (ex.error.kind, ex.error.sub) == ("network", "tls")
    assert "expired" in ex.error.message and certs.fmt_not_after(expired.not_after) in ex.error.message
    assert ex.certificates == {origin_of(old.url): expired.not_after}


def test_untrusted_certificate_is_not_called_expired(five: LocalServer) -> None:
    ex = send(new_session(), Request("GET", five.url + "/ok"))  # the throw-away CA is not in the system's store
    assert ex.error is not None and ex.error.sub == "tls" and "expired" not in ex.error.message
    assert ex.certificates == {}


# --- pure parts ------------------------------------------------------------------------------------


def test_messages_and_days() -> None:
    when = 1_800_000_000.0  # 2027-01-15 08:00 UTC
    assert certs.fmt_not_after(when) == "2027-01-15 08:00 UTC"
    assert certs.describe("https://a:443", when, when - 2.5 * DAY) == (
        "certificate of https://a:443 expires in 2 days (notAfter 2027-01-15 08:00 UTC)")
    assert certs.describe("https://a:443", when, when - 1 * DAY) == (
        "certificate of https://a:443 expires in 1 day (notAfter 2027-01-15 08:00 UTC)")
    assert "expires in 5 hours" in certs.describe("https://a:443", when, when - 5.5 * 3600)
    assert "expired 3 days ago" in certs.describe("https://a:443", when, when + 3.2 * DAY)
    assert "expires in 5 days" in certs.describe("https://a:443", when, when - 5 * DAY + 1)  # checked a second later
    assert "expires in 4 days" in certs.describe("https://a:443", when, when - 4.9 * DAY)


def test_failing_picks_the_soonest_origin_below_the_threshold() -> None:
    now = 1_800_000_000.0
    seen = {"https://a:443": now + 10 * DAY, "https://b:443": now + 2 * DAY}
    assert certs.failing(seen, 3, now) == ("https://b:443", now + 2 * DAY)
    assert certs.failing(seen, 2, now) is None  # exactly 2 days left is not fewer than 2
    assert certs.failing({}, 3, now) is None


def test_summarize_levels_and_shared_origins() -> None:
    now = 1_800_000_000.0
    readings = [("a", {"https://x:443": now + 5 * DAY}), ("b", {"https://x:443": now + 4 * DAY}),
                ("a", {"https://y:443": now + 100 * DAY}), ("c", {"https://z:443": now + 2 * DAY})]
    got = certs.summarize(readings, {"a": (14, 3), "b": (7, 1)}, now)
    assert [s.origin for s in got] == ["https://z:443", "https://x:443", "https://y:443"]
    z, x, y = got
    assert (z.level, x.level, y.level) == ("failing", "warning", "ok")
    assert x.not_after == now + 4 * DAY and x.services == ["a", "b"] and (x.warn_days, x.fail_days) == (14, 3)
    assert x.to_dict()["days_left"] == 4.0


def test_garbage_is_not_a_certificate() -> None:
    with pytest.raises(ValueError, match="unreadable certificate"):
        certs.not_after(b"\x30\x03\x02\x01\x00")


# --- config and engine -------------------------------------------------------------------------------


def _config(tmp_path: Path, url: str, bundle: str, extra: str = "", defaults: str = "") -> Path:
    (tmp_path / "certs").mkdir(exist_ok=True)
    (tmp_path / "certs" / "ca.pem").write_bytes(Path(bundle).read_bytes())
    cfg = tmp_path / "config.yaml"
    cfg.write_text(f"{defaults}services:\n  shop:\n    base_url: {url}\n    ca_bundle: certs/ca.pem\n{extra}",
                   encoding="utf-8")
    return cfg


def _itf(**expect: object) -> Interface:
    return Interface(name="ok", service="shop", module="m", method="GET", path="/ok", expect=Expect(**expect))


def test_engine_warn_window_passes_and_records(tmp_path: Path, five: LocalServer, in_5_days: IssuedCert) -> None:
    engine = Engine(load_config(_config(tmp_path, five.url, in_5_days.ca_file)))
    engine.clock = lambda: in_5_days.not_after - 5 * DAY - 3600  # as if checked when it was issued
    result = engine.check(_itf())
    assert result.outcome == Outcome.PASSED, result.reason
    assert result.certificates == {origin_of(five.url): in_5_days.not_after}
    assert InterfaceResult.from_dict(result.to_dict()).certificates == result.certificates  # crosses xdist


def test_engine_fails_below_cert_fail_days(tmp_path: Path, five: LocalServer, in_5_days: IssuedCert) -> None:
    engine = Engine(load_config(_config(tmp_path, five.url, in_5_days.ca_file)))
    engine.clock = lambda: in_5_days.not_after - 2.5 * DAY  # three days later: 2.5 days left, default fail 3
    result = engine.check(_itf())
    assert (result.outcome, result.category, result.sub) == (Outcome.FAILED, Category.UNEXPECTED, "cert")
    assert result.reason == (f"certificate of {origin_of(five.url)} expires in 2 days "
                             f"(notAfter {certs.fmt_not_after(in_5_days.not_after)})")
    assert result.certificates  # kept on failures too


def test_expect_cert_days_and_service_threshold(tmp_path: Path, five: LocalServer, in_5_days: IssuedCert) -> None:
    engine = Engine(load_config(_config(tmp_path, five.url, in_5_days.ca_file, "    cert_fail_days: 1\n")))
    engine.clock = lambda: in_5_days.not_after - 5 * DAY - 3600  # as if checked when it was issued
    assert engine.check(_itf()).outcome == Outcome.PASSED
    failed = engine.check(_itf(cert_days=7))
    assert (failed.category, failed.sub) == (Category.UNEXPECTED, "cert") and "expires in 5 days" in failed.reason
    engine.clock = lambda: in_5_days.not_after - 0.5 * DAY
    assert engine.check(_itf()).sub == "cert"  # service's cert_fail_days: 1
    assert engine.check(_itf(cert_days=0)).outcome == Outcome.PASSED


def test_global_thresholds(tmp_path: Path, five: LocalServer, in_5_days: IssuedCert) -> None:
    cfg = load_config(_config(tmp_path, five.url, in_5_days.ca_file,
                              defaults="defaults:\n  cert_warn_days: 30\n  cert_fail_days: 10\n"))
    assert cfg.cert_days("shop") == (30, 10) and cfg.cert_days("unknown") == (30, 10)
    engine = Engine(cfg)
    engine.clock = lambda: in_5_days.not_after - 5 * DAY - 3600  # as if checked when it was issued
    assert engine.check(_itf()).sub == "cert"


def test_a_wrong_answer_is_reported_before_the_certificate(tmp_path: Path, five: LocalServer,
                                                           in_5_days: IssuedCert) -> None:
    engine = Engine(load_config(_config(tmp_path, five.url, in_5_days.ca_file)))
    engine.clock = lambda: in_5_days.not_after - DAY
    assert engine.check(_itf(status=(201,))).sub == "status"


def test_engine_expired_is_network_tls_with_not_after(tmp_path: Path, old: LocalServer, expired: IssuedCert) -> None:
    engine = Engine(load_config(_config(tmp_path, old.url, expired.ca_file)))
    result = engine.check(_itf())
    assert (result.category, result.sub) == (Category.NETWORK, "tls")
    assert "expired" in result.reason and certs.fmt_not_after(expired.not_after) in result.reason


def test_ca_bundle_missing_names_file_and_field(tmp_path: Path) -> None:
    cfg = tmp_path / "config.yaml"
    cfg.write_text("services:\n  shop:\n    base_url: https://x\n    ca_bundle: nope/ca.pem\n", encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_config(cfg)
    err = info.value
    assert err.field == "services.shop.ca_bundle" and err.line == 4 and str(tmp_path / "nope" / "ca.pem") in str(err)


@pytest.mark.parametrize(("text", "field"), [
    ("defaults:\n  cert_warn_days: 2\n", "defaults.cert_fail_days"),
    ("services:\n  s:\n    cert_fail_days: 20\n", "services.s.cert_fail_days"),
    ("services:\n  s:\n    cert_warn_days: -1\n", "services.s.cert_warn_days"),
    ("defaults:\n  cert_fail_days: soon\n", "defaults.cert_fail_days"),
])
def test_bad_thresholds(tmp_path: Path, text: str, field: str) -> None:
    cfg = tmp_path / "config.yaml"
    cfg.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_config(cfg)
    assert info.value.field == field


# --- warnings: report, WeCom at most once a day per origin, state -----------------------------------------


KEY2 = "11111111-2222-3333-4444-555555555555"
T0 = 1_790_000_000.0
SHOP, PAY = "https://shop.example.com:443", "https://pay.example.com:443"


def _alert_config(tmp_path: Path, fake: FakeWeCom) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(textwrap.dedent(f"""
        env: prod
        services:
          shop: {{cert_warn_days: 14}}
          pay: {{cert_warn_days: 30, cert_fail_days: 1}}
        notify:
          wecom:
            - {{name: all, webhook: {KEY}, base_url: "{fake.base_url}"}}
            - {{name: pay-group, webhook: {KEY2}, base_url: "{fake.base_url}", services: [pay]}}
    """), encoding="utf-8")
    return path


def _run(t: float, shop_days: float, pay_days: float) -> RunResult:
    results = [
        InterfaceResult(nodeid=f"pool/{svc}/a.yaml::home", service=svc, module="a", name="home", method="GET",
                        url=f"{origin}/", status=200, elapsed_ms=5.0, started_at=t,
                        certificates={origin: t + 5 + days * DAY})
        for svc, origin, days in (("shop", SHOP, shop_days), ("pay", PAY, pay_days))]
    return RunResult(t, t + 5, "prod", results)


def _finish(cfg_path: Path, run: RunResult) -> alerts.AlertOutcome:
    outcome, extras = record(load_config(cfg_path), run)
    outcome.extras = extras  # type: ignore[attr-defined]
    return outcome


def test_warning_reaches_wecom_at_most_once_a_day_per_origin(tmp_path: Path) -> None:
    with FakeWeCom(keys=[KEY, KEY2]) as fake:
        cfg = _alert_config(tmp_path, fake)
        first = _finish(cfg, _run(T0, 5, 100))  # shop: 5 days left < 14; pay: 100 > 30
        assert first.sent
        texts = [m.content for m in fake.for_key(KEY)]
        assert any("证书即将过期" in t and SHOP in t and "5 天后过期" in t for t in texts), texts
        assert fake.for_key(KEY2) == []  # the pay group hears nothing about shop
        assert "全部通过" in texts[0]  # a warning is not a failure
        # Every hour for the rest of the day: the report lists it, WeCom does not repeat it.
        for i in range(1, 24):
            later = _finish(cfg, _run(T0 + i * 3600, 5 - i / 24, 100))
            assert not later.sent
            assert [c.origin for c in later.extras.cert_warnings] == [SHOP]  # type: ignore[attr-defined]
        assert len(fake.for_key(KEY)) == len(texts)
        # A day after the first warning: once more.
        again = _finish(cfg, _run(T0 + DAY, 4, 100))
        assert again.sent and any("4 天后过期" in m.content for m in fake.for_key(KEY)[len(texts):])


def test_each_origin_and_group_has_its_own_day(tmp_path: Path) -> None:
    with FakeWeCom(keys=[KEY, KEY2]) as fake:
        cfg = _alert_config(tmp_path, fake)
        _finish(cfg, _run(T0, 5, 100))
        before = len(fake.for_key(KEY))
        # Six hours later pay's certificate falls under its own cert_warn_days (30): only pay is new news.
        assert _finish(cfg, _run(T0 + 6 * 3600, 4.75, 29)).sent
        pay = [m.content for m in fake.for_key(KEY2)]
        assert pay and any(PAY in t for t in pay) and not any(SHOP in t for t in pay)
        latest = "".join(m.content for m in fake.for_key(KEY)[before:])
        assert PAY in latest and SHOP not in latest  # shop was told six hours ago


def test_renewed_certificate_starts_afresh(tmp_path: Path) -> None:
    with FakeWeCom(keys=[KEY, KEY2]) as fake:
        cfg = _alert_config(tmp_path, fake)
        assert _finish(cfg, _run(T0, 5, 100)).sent
        # Renewed to another short-lived certificate an hour later: a different notAfter is new news.
        assert _finish(cfg, _run(T0 + 3600, 10, 100)).sent
        assert not _finish(cfg, _run(T0 + 7200, 10 - 1 / 24, 100)).sent


def test_certificates_are_stored_for_the_page_and_metrics(tmp_path: Path) -> None:
    with FakeWeCom(keys=[KEY, KEY2]) as fake:
        cfg = _alert_config(tmp_path, fake)
        _finish(cfg, _run(T0, 5, 100))
        with StateStore.in_dir(tmp_path / ".apimon") as store:
            rows = store.certificates("prod")
        assert [(r.origin, r.services) for r in rows] == [(SHOP, ("shop",)), (PAY, ("pay",))]
        assert rows[0].not_after == T0 + 5 + 5 * DAY and rows[0].warned_at == T0 + 5 and rows[1].warned_at is None


def test_report_and_json_show_the_warning_and_every_origin(tmp_path: Path) -> None:
    with FakeWeCom(keys=[KEY, KEY2]) as fake:
        cfg = _alert_config(tmp_path, fake)
        run = _run(T0, 5, 100)
        extras = _finish(cfg, run).extras  # type: ignore[attr-defined]
    md = render_markdown(run, "zh", extras=extras)
    assert "## 证书即将过期 `cert` (1)" in md and f"{SHOP} 的证书将在 5 天后过期" in md
    en = render_terminal(run, "en", extras=extras)
    assert "[cert] Certificates expiring soon (1)" in en and f"certificate of {SHOP} expires in 5 days" in en
    doc = __import__("json").loads(render_json(run, extras=extras))
    by_origin = {c["origin"]: c for c in doc["certificates"]}
    assert by_origin[SHOP]["level"] == "warning" and by_origin[SHOP]["days_left"] == 5.0
    assert by_origin[PAY]["level"] == "ok" and by_origin[PAY]["not_after_ts"] == T0 + 5 + 100 * DAY
    assert doc["stats"]["failed"] == 0


def test_no_state_store_warns_every_run(tmp_path: Path) -> None:
    cfg = load_config(_alert_config(tmp_path, FakeWeCom()))
    run = _run(T0, 5, 100)
    _, extras = alerts.finish(run, cfg, "zh", Redactor(), None, dry_run=True)
    assert [c.origin for c in extras.cert_warnings] == [SHOP]


# --- a whole run (pytester), single process and two workers ---------------------------------------------


@pytest.mark.parametrize("workers", [[], ["-n", "2"]], ids=["single", "xdist"])
def test_run_against_an_origin_expiring_in_5_days_passes_with_a_warning(
        pytester: pytest.Pytester, five: LocalServer, in_5_days: IssuedCert, workers: list[str]) -> None:
    import json

    (pytester.path / "tls").mkdir()
    (pytester.path / "tls" / "ca.pem").write_bytes(Path(in_5_days.ca_file).read_bytes())
    (pytester.path / "config.yaml").write_text(
        f"services:\n  shop:\n    base_url: {five.url}\n    ca_bundle: tls/ca.pem\n", encoding="utf-8")
    pool = pytester.path / "pool" / "shop"
    pool.mkdir(parents=True)
    (pool / "api.yaml").write_text("".join(f"- name: ok{i}\n  path: /ok\n" for i in range(4)), encoding="utf-8")
    result = pytester.runpytest("--apimon", "pool", "--apimon-json", "out/r.json", "--apimon-report", "out/r.md",
                                *workers)
    result.assert_outcomes(passed=4)
    origin = origin_of(five.url)
    out = result.stdout.str()
    assert "证书即将过期 (1)" in out and f"{origin} 的证书将在 5 天后过期" in out
    doc = json.loads((pytester.path / "out" / "r.json").read_text("utf-8"))
    assert doc["stats"]["failed"] == 0
    [cert] = doc["certificates"]
    assert (cert["origin"], cert["level"], cert["not_after_ts"]) == (origin, "warning", in_5_days.not_after)
    assert 5 <= cert["days_left"] < 5.1 and "expires in 5 days" in cert["message"]
    assert all(r["certificates"] == {origin: in_5_days.not_after} for r in doc["results"])
    assert "## 证书即将过期 `cert` (1)" in (pytester.path / "out" / "r.md").read_text("utf-8")


# --- property: whatever a server presents, reading it raises ValueError at most ------------------------


@given(st.binary(max_size=300))
def test_any_bytes_read_as_a_certificate_or_value_error(der: bytes) -> None:
    try:
        when = certs.not_after(der)
    except ValueError:
        return
    assert isinstance(when, float)


@given(st.floats(min_value=-3650, max_value=3650, allow_nan=False), st.floats(min_value=0, max_value=4e9))
def test_describe_never_claims_more_time_than_an_hour_of_rounding(days: float, now: float) -> None:
    text = certs.describe("https://a:443", now + days * DAY, now)
    number = int(text.split(" expired " if " expired " in text else " in ", 1)[1].split()[0])
    unit = DAY if " day" in text else 3600.0
    assert number * unit <= abs(days) * DAY + 1800 + 1e-6 * max(1.0, abs(days) * DAY)


# --- status page: a certificates table and a pill on the interfaces of an expiring origin ---------------


def _page_run(t: float) -> RunResult:
    run = _run(t, 5, 100)
    run.results.append(InterfaceResult(nodeid="pool/shop/a.yaml::plain", service="shop", module="a", name="plain",
                                       method="GET", url="http://shop.example.com/", status=200, elapsed_ms=3.0))
    return run


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_status_page_lists_certificates_and_flags_interfaces(tmp_path: Path, lang: str) -> None:
    with FakeWeCom(keys=[KEY, KEY2]) as fake:
        cfg_path = _alert_config(tmp_path, fake)
        run = _page_run(T0)
        extras = _finish(cfg_path, run).extras  # type: ignore[attr-defined]
    with StateStore.in_dir(tmp_path / ".apimon") as store:
        given = parse(render_status_page(store, "prod", run, None, lang=lang, certificates=extras.certificates))
        stored = parse(render_status_page(store, "prod", run, None, lang=lang))  # from the store, default 14 / 3
    for root in (given, stored):
        table = by_id(root, "certificates")
        rows = [[td.all_text() for td in tr.find_all("td")] for tr in table.find_all("tr")[1:]]
        assert [r[0] for r in rows] == [SHOP, PAY]
        assert rows[0][1] == "5.0" and rows[0][3] == certs.fmt_not_after(T0 + 5 + 5 * DAY) and rows[0][4] == "shop"
        assert rows[0][2] == ("即将过期" if lang == "zh" else "expiring soon")
        assert table.find_all("tr")[1].attrs["class"] == "cert-warning"
        pills = root.find_all("span", "cert")
        assert len(pills) == 1  # shop's https interface, not its plain-http one, nor pay's healthy certificate
        assert pills[0].text == ("证书 5 天" if lang == "zh" else "cert 5 d")
        assert SHOP in pills[0].attrs["title"]


def test_status_page_without_https_has_no_certificates_card(tmp_path: Path) -> None:
    run = RunResult(T0, T0 + 1, "prod", [InterfaceResult("n::a", "svc", "mod", "a", status=200, elapsed_ms=1.0)])
    with StateStore.in_dir(tmp_path) as store:
        page = render_status_page(store, "prod", run, None, certificates=[])
    assert 'id="certificates"' not in page and "pill cert" not in page


# --- through an HTTP CONNECT proxy: the certificate is the origin's, not the proxy's ----------------------


class ConnectProxy:
    """A minimal HTTP CONNECT proxy on 127.0.0.1 (free port) that tunnels bytes and counts tunnels."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.tunnels: list[str] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        with client:
            head = b""
            while b"\r\n\r\n" not in head:
                chunk = client.recv(4096)
                if not chunk:
                    return
                head += chunk
            target = head.split(b" ", 2)[1].decode()
            self.tunnels.append(target)
            host, port = target.rsplit(":", 1)
            with socket.create_connection((host, int(port)), timeout=10) as upstream:
                client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
                pump = threading.Thread(target=self._pipe, args=(upstream, client), daemon=True)
                pump.start()
                self._pipe(client, upstream)
                pump.join(10)

    @staticmethod
    def _pipe(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
            dst.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def proxy() -> Iterator[ConnectProxy]:
    p = ConnectProxy()
    yield p
    p.close()


def test_through_a_connect_proxy(proxy: ConnectProxy, five: LocalServer, in_5_days: IssuedCert, old: LocalServer,
                                 expired: IssuedCert) -> None:
    session = new_session()
    session.environment = Environment({"https": proxy.url}, None)
    ex = send(session, Request("GET", five.url + "/ok", ca_bundle=in_5_days.ca_file))
    assert ex.error is None and ex.certificates == {origin_of(five.url): in_5_days.not_after}
    ex = send(session, Request("GET", old.url + "/ok", ca_bundle=expired.ca_file))
    assert ex.error is not None and ex.error.sub == "tls" and certs.fmt_not_after(expired.not_after) in ex.error.message
    assert ex.certificates == {origin_of(old.url): expired.not_after}
    assert proxy.tunnels.count(f"127.0.0.1:{old.port}") == 2  # the refused handshake, then the one reading notAfter
    assert f"127.0.0.1:{five.port}" in proxy.tunnels


def test_verify_off_expired_certificate_fails_as_cert(tmp_path: Path, old: LocalServer, expired: IssuedCert) -> None:
    cfg = tmp_path / "config.yaml"
    cfg.write_text(f"services:\n  shop:\n    base_url: {old.url}\n    verify_tls: false\n", encoding="utf-8")
    engine = Engine(load_config(cfg))
    engine.clock = lambda: expired.not_after + 3 * DAY + 600
    result = engine.check(_itf())
    assert (result.category, result.sub) == (Category.UNEXPECTED, "cert")
    assert result.reason == (f"certificate of {origin_of(old.url)} expired 3 days ago "
                             f"(notAfter {certs.fmt_not_after(expired.not_after)})")


@pytest.mark.parametrize(("strict", "env"), [
    ([], {}),
    (["-W", "error"], {}), (["-W", "error", "-n", "2"], {}), (["-o", "filterwarnings=error"], {}),
    ([], {"PYTHONWARNINGS": "error"}), (["-n", "2"], {"PYTHONWARNINGS": "error"}),
], ids=["default", "W_error", "W_error_n2", "ini_error", "PYTHONWARNINGS_error", "PYTHONWARNINGS_error_n2"])
def test_verification_turned_off_on_purpose_warns_nobody_and_fails_nothing(
        pytester: pytest.Pytester, five: LocalServer, local_server: LocalServer, monkeypatch: pytest.MonkeyPatch,
        strict: list[str], env: dict[str, str]) -> None:
    """verify_tls: false is the user's explicit choice: urllib3's InsecureRequestWarning (English, one per
    request thread) must not reach the run's warnings summary, nor fail a healthy check where warnings are
    errors. Teams run pytest with `-W error` or `filterwarnings = error`, which pytest applies after the plugin's
    ini filter: the warning raised in a Runner thread reported the service failed ("无法处理…的请求：
    InsecureRequestWarning"; a red team, with the sample pool's `portal`, in 5 of 8 runs with -n 2). The
    interpreter's own -W (PYTHONWARNINGS) also applies between pytest's per-item filters, where the Runner's
    threads send requests too (prefetch)."""
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    local_server.route("GET", "/ok", lambda r: {"ok": True})
    # Another service's items come first: the HTTPS requests then run inside their warning contexts, as in the
    # sample pool (pytest resets warning filters per item; the Runner's threads do not follow items).
    (pytester.path / "config.yaml").write_text(
        f"services:\n  a_plain:\n    base_url: {local_server.url}\n"
        f"  shop:\n    base_url: {five.url}\n    verify_tls: false\n", encoding="utf-8")
    for service, count in (("a_plain", 20), ("shop", 20)):
        pool = pytester.path / "pool" / service
        pool.mkdir(parents=True)
        (pool / "api.yaml").write_text("".join(f"- name: ok{i}\n  path: /ok\n" for i in range(count)),
                                       encoding="utf-8")
    # A fresh process: the outer run's own warning filters must not hide the warning from the test.
    result = pytester.runpytest_subprocess("--apimon", "pool", *strict)
    result.assert_outcomes(passed=40)
    assert "InsecureRequestWarning" not in result.stdout.str()
