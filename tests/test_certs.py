"""TLS certificate expiry (issue 16, req 4): notAfter per HTTPS origin from the connection actually used,
thresholds, messages. Real HTTPS servers on 127.0.0.1 with trustme certificates; the clock is injected."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from localserver import IssuedCert, LocalServer, Response, issue_cert

from pytest_apimon import certs
from pytest_apimon.categories import Category, Outcome
from pytest_apimon.config import ConfigError, load_config
from pytest_apimon.documents import Expect, Interface
from pytest_apimon.engine import Engine
from pytest_apimon.origins import origin_of
from pytest_apimon.probe import Request, new_session, send
from pytest_apimon.results import InterfaceResult

pytestmark = pytest.mark.integration

DAY = 86400.0
NOW = time.time()  # the certificates' reference; assertions use this injected "now", never the wall clock


@pytest.fixture(scope="module")
def tls_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return Path(tmp_path_factory.mktemp("certs"))


def _server(cert: IssuedCert) -> Iterator[LocalServer]:
    with LocalServer(tls=cert.tls) as srv:
        srv.route("GET", "/ok", lambda r: {"ok": True})
        yield srv


@pytest.fixture(scope="module")
def in_5_days(tls_dir: Path) -> IssuedCert:
    return issue_cert(tls_dir, NOW + 5 * DAY + 3600, "five")


@pytest.fixture(scope="module")
def expired(tls_dir: Path) -> IssuedCert:
    return issue_cert(tls_dir, NOW - 3 * DAY - 3600, "expired")


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
    engine.clock = lambda: NOW
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
    engine.clock = lambda: NOW
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
    engine.clock = lambda: NOW
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
