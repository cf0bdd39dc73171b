from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from pytest_apimon.config import (
    BasicAuth,
    Config,
    ConfigError,
    Defaults,
    LoggingConfig,
    LoginAuth,
    OAuth2Auth,
    ReportConfig,
    ServiceConfig,
    StaticAuth,
    load_config,
    parse_duration,
    parse_size,
)

FULL = """\
env: local
defaults:
  timeout: 10
  connect_timeout: 5
  interval: 15m
  retries: 3
  retry_delay: 1
  backoff_factor: 2
  max_body_bytes: 1MiB
  max_redirects: 5
  verify_tls: true
services:
  user:
    base_url: http://127.0.0.1:8000/user/
    headers: {X-Client: apimon, X-Version: 2}
    verify_tls: false
    timeout: 5
    auth:
      type: login
      method: post
      path: /auth/login
      json: {username: demo, password: "${USER_PASSWORD:-demo-pass}"}
      headers: {}
      token_path: data.token
      header: Authorization
      scheme: Bearer
      query_param: null
  order:
    base_url: https://orders.example.com
logging:
  file: .apimon/apimon.log
  max_bytes: 1048576
  backups: 5
  level: debug
report:
  language: en
  title: Nightly
  markdown: out/report.md
  json: out/report.json
"""


def write(tmp_path: Path, text: str, name: str = "config.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def load(tmp_path: Path, text: str, env: str | None = None, **environ: str) -> Config:
    return load_config(write(tmp_path, text), env=env, environ=environ)


def error(tmp_path: Path, text: str, env: str | None = None, **environ: str) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        load(tmp_path, text, env=env, **environ)
    return info.value


# ---------------------------------------------------------------- loading


def test_full_example_loads_into_models(tmp_path: Path) -> None:
    cfg = load(tmp_path, FULL)
    assert cfg.path == str(tmp_path / "config.yaml")
    assert cfg.base_dir == tmp_path
    assert cfg.env == "local"
    assert cfg.defaults == Defaults(interval=900.0)
    assert cfg.services["user"] == ServiceConfig(
        name="user",
        base_url="http://127.0.0.1:8000/user",  # trailing / stripped
        headers={"X-Client": "apimon", "X-Version": "2"},
        verify_tls=False,
        timeout=5.0,
        auth=LoginAuth(
            method="POST",
            path="/auth/login",
            json={"username": "demo", "password": "demo-pass"},
            token_path="data.token",
        ),
    )
    order = cfg.service("order")
    assert order.base_url == "https://orders.example.com"
    assert order.verify_tls is True and order.timeout is None and order.auth is None
    assert cfg.logging == LoggingConfig(level="DEBUG")
    assert cfg.report == ReportConfig(language="en", title="Nightly", markdown="out/report.md", json="out/report.json")
    assert cfg.secrets == ("demo-pass",)


def test_unconfigured_service_is_empty(tmp_path: Path) -> None:
    assert load(tmp_path, FULL).service("nope") == ServiceConfig(name="nope", base_url=None)


def test_none_path_gives_builtin_defaults() -> None:
    cfg = load_config(None)
    assert cfg == Config(path=None, env="default")
    assert cfg.base_dir == Path.cwd()
    assert load_config(None, env="prod").env == "prod"


def test_empty_file_gives_defaults(tmp_path: Path) -> None:
    cfg = load(tmp_path, "# nothing yet\n")
    assert cfg.defaults == Defaults() and cfg.logging == LoggingConfig() and cfg.report == ReportConfig()
    assert cfg.services == {} and cfg.env == "default" and cfg.secrets == ()


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"config file not found: .*nope\.yaml"):
        load_config(tmp_path / "nope.yaml")


def test_yaml_syntax_error_has_line(tmp_path: Path) -> None:
    err = error(tmp_path, "defaults:\n  timeout: 10\n  retries: [1, 2\n")
    assert "invalid YAML" in err.message and err.line is not None and err.line >= 3
    assert str(err).startswith(str(tmp_path / "config.yaml") + ":")


def test_top_level_must_be_mapping(tmp_path: Path) -> None:
    assert "expected a mapping, got a list" in str(error(tmp_path, "- a\n- b\n"))


def test_json_config_is_accepted(tmp_path: Path) -> None:
    path = write(tmp_path, '{"defaults": {"retries": 0}}', name="config.json")
    assert load_config(path, environ={}).defaults.retries == 0


def test_verify_tls_default_flows_to_services(tmp_path: Path) -> None:
    cfg = load(tmp_path, "defaults: {verify_tls: false}\nservices: {a: {base_url: 'http://a'}}\n")
    assert cfg.service("a").verify_tls is False


def test_logging_file_null_disables(tmp_path: Path) -> None:
    assert load(tmp_path, "logging: {file: null}\n").logging.file is None


# ---------------------------------------------------------------- environments

ENVS = """\
services:
  user:
    base_url:
      local: http://127.0.0.1:8000/user
      prod: https://api.example.com/user/
      default: https://staging.example.com/user
  order:
    base_url: {local: "http://127.0.0.1:9000", prod: "https://orders.example.com"}
"""


def test_env_from_file_and_override(tmp_path: Path) -> None:
    text = "env: prod\n" + ENVS
    assert load(tmp_path, text).service("user").base_url == "https://api.example.com/user"
    cfg = load(tmp_path, text, env="local")
    assert cfg.env == "local"
    assert cfg.service("user").base_url == "http://127.0.0.1:8000/user"
    assert cfg.service("order").base_url == "http://127.0.0.1:9000"


def test_env_falls_back_to_default_key(tmp_path: Path) -> None:
    text = ENVS.replace("  order:\n    base_url: {local: \"http://127.0.0.1:9000\", prod: \"https://orders.example.com\"}\n",
                        "")
    cfg = load(tmp_path, text, env="staging")
    assert cfg.env == "staging"
    assert cfg.service("user").base_url == "https://staging.example.com/user"


def test_missing_env_names_service_env_and_choices(tmp_path: Path) -> None:
    err = error(tmp_path, ENVS, env="staging")
    assert err.field == "services.order.base_url"
    assert "'order'" in err.message and "'staging'" in err.message and "local, prod" in err.message
    assert err.line == 8


def test_env_from_variable(tmp_path: Path) -> None:
    assert load(tmp_path, "env: ${APIMON_ENV:-local}\n").env == "local"
    assert load(tmp_path, "env: ${APIMON_ENV:-local}\n", APIMON_ENV="prod").env == "prod"


def test_other_env_url_may_use_unset_variable_but_is_checked(tmp_path: Path) -> None:
    text = "services:\n  a:\n    base_url: {local: 'http://a', prod: 'https://${PROD_HOST}'}\n"
    assert load(tmp_path, text, env="local").service("a").base_url == "http://a"
    assert "PROD_HOST" in error(tmp_path, text, env="prod").message
    bad = "services:\n  a:\n    base_url: {local: 'http://a', prod: 'ftp://b'}\n"
    assert error(tmp_path, bad, env="local").field == "services.a.base_url.prod"


# ---------------------------------------------------------------- substitution

SUB = """\
services:
  user:
    base_url: ${BASE:-http://localhost:8000}
    headers: {X-Tenant: "t-${TENANT}"}
"""


def test_substitution_set_default_and_empty(tmp_path: Path) -> None:
    assert load(tmp_path, SUB, TENANT="1").service("user").base_url == "http://localhost:8000"
    cfg = load(tmp_path, SUB, TENANT="1", BASE="https://x.example.com/")
    assert cfg.service("user").base_url == "https://x.example.com"
    assert cfg.service("user").headers == {"X-Tenant": "t-1"}
    assert load(tmp_path, SUB, TENANT="1", BASE="").service("user").base_url == "http://localhost:8000"


def test_substitution_missing_names_variable_and_field(tmp_path: Path) -> None:
    text = "services:\n  user:\n    base_url: http://a\n    auth:\n      type: login\n      path: /login\n" \
           "      json: {username: demo, password: '${USER_PASSWORD}'}\n"
    err = error(tmp_path, text)
    assert err.field == "services.user.auth.json.password"
    assert "${USER_PASSWORD} is not set" in err.message
    assert err.line == 7
    assert "services.user.auth.json.password: environment variable ${USER_PASSWORD}" in str(err)


def test_substitution_uses_os_environ_by_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("APIMON_TEST_TIMEOUT", "7")
    path = write(tmp_path, "defaults: {timeout: '${APIMON_TEST_TIMEOUT}'}\n")
    assert load_config(path).defaults.timeout == 7.0


def test_substituted_strings_convert_to_numbers_and_bools(tmp_path: Path) -> None:
    text = "defaults: {retries: '${R}', verify_tls: '${V}', max_body_bytes: '${S}'}\n"
    d = load(tmp_path, text, R="2", V="false", S="512KiB").defaults
    assert (d.retries, d.verify_tls, d.max_body_bytes) == (2, False, 512 * 1024)


def test_keys_are_not_substituted(tmp_path: Path) -> None:
    # (A header name '${X}' would now be refused as unsendable: keys of a login body show the rule instead.)
    cfg = load(tmp_path, "services:\n  a:\n    base_url: http://h\n"
                         "    auth: {type: login, path: /l, json: {'${X}': v}}\n")
    assert cfg.service("a").auth.json == {"${X}": "v"}  # type: ignore[union-attr]


def test_literal_dollar_brace(tmp_path: Path) -> None:
    cfg = load(tmp_path, "report: {title: 'cost $${AMOUNT}'}\n")
    assert cfg.report.title == "cost ${AMOUNT}"


# ---------------------------------------------------------------- validation errors


@pytest.mark.parametrize(
    ("text", "field", "line", "needle"),
    [
        ("defaults:\n  timeout: ten\n", "defaults.timeout", 2, "expected a number of seconds, got 'ten'"),
        ("defaults:\n  timeout: 0\n", "defaults.timeout", 2, "expected a value > 0"),
        # A whole number of requests: `true` said "expected a whole number >= 0" (red team), which allows 0.
        ("defaults:\n  max_per_host: true\n", "defaults.max_per_host", 2, "expected a whole number >= 1, got true"),
        ("defaults:\n  concurrency: 0\n", "defaults.concurrency", 2, "expected a whole number >= 1, got 0"),
        ("defaults:\n  interval: 15x\n", "defaults.interval", 2, "expected a number of seconds"),
        ("defaults:\n  retries: -1\n", "defaults.retries", 2, "expected a whole number >= 0, got -1"),
        ("defaults:\n  retries: 1.5\n", "defaults.retries", 2, "whole number"),
        ("defaults:\n  retries: yes\n", "defaults.retries", 2, "got 'yes'"),
        ("defaults:\n  max_body_bytes: lots\n", "defaults.max_body_bytes", 2, "expected a size in bytes"),
        ("defaults:\n  max_body_bytes: 0\n", "defaults.max_body_bytes", 2, "> 0"),
        ("defaults:\n  verify_tls: maybe\n", "defaults.verify_tls", 2, "expected true or false, got 'maybe'"),
        ("defaults:\n  backoff_factor: [2]\n", "defaults.backoff_factor", 2, "got a list"),
        ("defaults:\n  timout: 3\n", "defaults.timout", 2, "unknown key 'timout' (did you mean 'timeout'?)"),
        ("servces: {}\n", "servces", 1, "(did you mean 'services'?)"),
        ("defaults: 3\n", "defaults", 1, "expected a mapping, got 3"),
        ("services:\n  a:\n    base_ur: http://a\n", "services.a.base_ur", 3, "(did you mean 'base_url'?)"),
        ("services:\n  a:\n    base_url: localhost:8000\n", "services.a.base_url", 3, "absolute http(s) URL"),
        ("services:\n  a:\n    base_url: ftp://host\n", "services.a.base_url", 3, "absolute http(s) URL"),
        ("services:\n  a:\n    base_url: 'http://'\n", "services.a.base_url", 3, "with a host"),
        ("services:\n  a:\n    base_url: 8000\n", "services.a.base_url", 3, "got 8000"),
        ("services:\n  a:\n    headers: {X-A: [1]}\n", "services.a.headers.X-A", 3, "string or number"),
        ("services:\n  a:\n    headers: {X-A: true}\n", "services.a.headers.X-A", 3, "got true"),
        ("services:\n  a:\n    headers: [1]\n", "services.a.headers", 3, "expected a mapping"),
        ("services:\n  a:\n    timeout: -2\n", "services.a.timeout", 3, ">= 0"),
        ("services:\n  a: [1]\n", "services.a", 2, "expected a mapping, got a list"),
        ("logging:\n  level: LOUD\n", "logging.level", 2, "expected a logging level"),
        ("logging:\n  level: inf\n", "logging.level", 2, "(did you mean 'INFO'?)"),
        ("logging:\n  backups: two\n", "logging.backups", 2, "whole number"),
        ("logging:\n  max_bytes: 1.5\n", "logging.max_bytes", 2, "size in bytes"),
        ("logging:\n  flie: x\n", "logging.flie", 2, "(did you mean 'file'?)"),
        ("report:\n  language: fr\n", "report.language", 2, "expected a report language (zh, en), got 'fr'"),
        ("report:\n  title: [x]\n", "report.title", 2, "expected a string, got a list"),
        ("env: [a]\n", "env", 1, "expected a string"),
    ],
)
def test_validation_errors(tmp_path: Path, text: str, field: str, line: int, needle: str) -> None:
    err = error(tmp_path, text)
    assert err.field == field
    assert err.line == line
    assert needle in err.message
    assert err.file == str(tmp_path / "config.yaml")
    assert str(err) == f"{err.file}:{line}: {field}: {err.message}"


AUTH = "services:\n  a:\n    base_url: http://a\n    auth:\n"


@pytest.mark.parametrize(
    ("auth", "field", "needle"),
    [
        ("      type: oauth2\n", "services.a.auth", "missing 'token_url'"),
        ("      type: static\n", "services.a.auth", "static auth needs 'token'"),
        ("      type: basic\n", "services.a.auth", "needs 'username' and 'password'"),
        ("      type: lgoin\n      path: /l\n", "services.a.auth.type", "(did you mean 'login'?)"),
        ("      type: oauth\n", "services.a.auth.type", "(did you mean 'oauth2'?)"),
        ("      path: /l\n", "services.a.auth", "missing 'type' (one of: login, static, oauth2, basic)"),
        ("      type: login\n", "services.a.auth", "'path' (joined to base_url) or an absolute 'url'"),
        ("      type: login\n      path: /l\n      url: http://x/l\n", "services.a.auth.url", "either 'path' or 'url'"),
        ("      type: login\n      url: /l\n", "services.a.auth.url", "absolute http(s) URL"),
        ("      type: login\n      path: /l\n      json: {}\n      form: {}\n", "services.a.auth.form", "not both"),
        ("      type: login\n      path: /l\n      form: [1]\n", "services.a.auth.form", "expected a mapping"),
        ("      type: login\n      path: /l\n      token_path: a\n      token_header: X\n",
         "services.a.auth.token_header", "either 'token_path' or 'token_header'"),
        ("      type: login\n      path: /l\n      method: FETCH\n", "services.a.auth.method", "HTTP method"),
        ("      type: login\n      path: /l\n      tokn_path: a\n", "services.a.auth.tokn_path",
         "(did you mean 'token_path'?)"),
        ("      type: login\n      path: /l\n      header: ''\n", "services.a.auth.header", "non-empty"),
    ],
)
def test_auth_errors(tmp_path: Path, auth: str, field: str, needle: str) -> None:
    err = error(tmp_path, AUTH + auth)
    assert err.field == field
    assert needle in err.message
    assert err.line is not None and err.line >= 4


def test_auth_path_needs_base_url(tmp_path: Path) -> None:
    err = error(tmp_path, "services:\n  a:\n    auth: {type: login, path: /l}\n")
    assert err.field == "services.a.auth.path" and "base_url" in err.message


def test_auth_variants(tmp_path: Path) -> None:
    text = AUTH + (
        "      type: login\n      url: https://sso.example.com/token/\n      form: {user: u, pwd: p1}\n"
        "      token_header: X-Token\n      header: X-Auth\n      scheme: ''\n      query_param: access_token\n"
        "      headers: {X-Api-Key: k9}\n"
    )
    auth = load(tmp_path, text).service("a").auth
    assert auth == LoginAuth(url="https://sso.example.com/token", form={"user": "u", "pwd": "p1"},
                             token_header="X-Token", header="X-Auth", scheme="", query_param="access_token",
                             headers={"X-Api-Key": "k9"})
    bare = load(tmp_path, AUTH + "      type: login\n      path: /l\n      scheme: null\n").service("a").auth
    assert bare is not None and bare.scheme == ""


# ---------------------------------------------------------------- durations and sizes


@pytest.mark.parametrize(
    ("value", "seconds"),
    [(10, 10.0), (2.5, 2.5), ("90", 90.0), ("30s", 30.0), ("15m", 900.0), ("1h", 3600.0), ("1h30m", 5400.0),
     ("1h 30m 15s", 5415.0), ("1.5h", 5400.0), ("2M", 120.0), (0, 0.0)],
)
def test_parse_duration(value: object, seconds: float) -> None:
    assert parse_duration(value) == seconds


@pytest.mark.parametrize("value", ["ten", "", "h", "1d", "-5", -1, True, None, [1], "nan", "1h30"])
def test_parse_duration_rejects(value: object) -> None:
    with pytest.raises(ValueError, match="expected a"):
        parse_duration(value)


@pytest.mark.parametrize(
    ("value", "size"),
    [(1024, 1024), ("1048576", 1048576), ("1MiB", 1048576), ("512KiB", 524288), ("2MB", 2_000_000),
     ("1 GiB", 1024**3), ("100kb", 100_000), ("10B", 10), ("1.5KiB", 1536), (2048.0, 2048)],
)
def test_parse_size(value: object, size: int) -> None:
    assert parse_size(value) == size


@pytest.mark.parametrize("value", ["lots", "1XB", "-1", -1, 1.5, True, None, "MiB"])
def test_parse_size_rejects(value: object) -> None:
    with pytest.raises(ValueError, match="expected a size"):
        parse_size(value)


# ---------------------------------------------------------------- secrets


def test_secrets_collected(tmp_path: Path) -> None:
    text = """\
    services:
      user:
        base_url: http://admin:urlpass@127.0.0.1:8000
        headers: {Authorization: "Bearer static-tok", Cookie: "sid=abc", X-Api-Key: k-123,
                  X-Session-Token: st-1, X-Client-Secret: cs-1, X-Client: apimon}
        auth:
          type: login
          path: /login
          json:
            username: demo
            password: "${USER_PASSWORD:-demo-pass}"
            client_secret: shh
            PIN: "1234"
            api_key: ""
            credentials: {user: alice, pass: wonder}
            tokens: [t1, t2]
          headers: {X-Login-Token: lt-1}
          token_path: data.token
          token_header: null
    """
    cfg = load(tmp_path, text, USER_PASSWORD="s3cr3t!")
    expected = {"urlpass", "Bearer static-tok", "static-tok", "sid=abc", "k-123", "st-1", "cs-1",
                "s3cr3t!", "shh", "1234", "alice", "wonder", "t1", "t2", "lt-1"}
    assert set(cfg.secrets) == expected
    assert len(cfg.secrets) == len(expected)  # no duplicates
    # Structural settings are not secrets even though their names contain "token".
    assert "data.token" not in cfg.secrets and "demo" not in cfg.secrets and "apimon" not in cfg.secrets


# ---------------------------------------------------------------- auth kinds (issue 3)


def auth_of(tmp_path: Path, body: str, **environ: str) -> tuple[object, Config]:
    cfg = load(tmp_path, AUTH + textwrap.indent(textwrap.dedent(body), "      "), **environ)
    return cfg.service("a").auth, cfg


def test_login_lifetime_sources(tmp_path: Path) -> None:
    auth, _ = auth_of(tmp_path, "type: login\npath: /l\nexpires_in_path: data.ttl\nrefresh_before: 1m\n")
    assert auth == LoginAuth(path="/l", expires_in_path="data.ttl", refresh_before=60.0)
    auth, _ = auth_of(tmp_path, "type: login\npath: /l\nexpiry: JWT\n")
    assert auth == LoginAuth(path="/l", expiry="jwt")
    auth, _ = auth_of(tmp_path, "type: login\npath: /l\nttl: 2h\n")
    assert auth == LoginAuth(path="/l", ttl=7200.0)
    auth, _ = auth_of(tmp_path, "type: login\npath: /l\n")
    assert isinstance(auth, LoginAuth) and auth.refresh_before == 300.0 and auth.kind == "login"
    assert auth.ttl is None and auth.expiry is None and auth.expires_in_path is None


def test_static_token_from_env(tmp_path: Path) -> None:
    auth, cfg = auth_of(tmp_path, "type: static\ntoken: ${NURSE_TOKEN}\n", NURSE_TOKEN="st-abc-123")
    assert auth == StaticAuth(token="st-abc-123")
    assert "st-abc-123" in cfg.secrets
    auth, _ = auth_of(tmp_path, "type: static\ntoken: t0k3n\nquery_param: access_token\nscheme: ''\n")
    assert auth == StaticAuth(token="t0k3n", scheme="", query_param="access_token")


def test_oauth2_client_credentials(tmp_path: Path) -> None:
    body = """\
    type: oauth2
    token_url: https://sso.example.com/oauth/token
    client_id: 10086
    client_secret: ${CLIENT_SECRET}
    scope: [read, write]
    audience: https://api.example.com
    extra_params: {resource: nurse, assertion_key: ak-999}
    client_auth: basic
    ttl: 10m
    refresh_before: 30s
    """
    auth, cfg = auth_of(tmp_path, body, CLIENT_SECRET="cs-secret-1")
    assert auth == OAuth2Auth(
        token_url="https://sso.example.com/oauth/token", client_id="10086", client_secret="cs-secret-1",
        scope="read write", audience="https://api.example.com",
        extra_params={"resource": "nurse", "assertion_key": "ak-999"}, client_auth="basic", ttl=600.0,
        refresh_before=30.0,
    )
    assert isinstance(auth, OAuth2Auth) and auth.header == "Authorization" and auth.scheme == "Bearer"
    assert {"cs-secret-1", "ak-999"} <= set(cfg.secrets) and "10086" not in cfg.secrets


def test_basic_auth_secrets(tmp_path: Path) -> None:
    auth, cfg = auth_of(tmp_path, "type: basic\nusername: alice\npassword: ${PW}\n", PW="wonder-land")
    assert auth == BasicAuth(username="alice", password="wonder-land")
    assert isinstance(auth, BasicAuth) and auth.credentials == "YWxpY2U6d29uZGVyLWxhbmQ="
    assert {"wonder-land", "YWxpY2U6d29uZGVyLWxhbmQ="} <= set(cfg.secrets) and "alice" not in cfg.secrets


@pytest.mark.parametrize(
    ("body", "field", "needle"),
    [
        ("type: login\npath: /l\nttl: 1h\nexpiry: jwt\n", "services.a.auth.ttl", "only one of"),
        ("type: login\npath: /l\nexpires_in_path: a\nttl: 1h\n", "services.a.auth.ttl", "only one of"),
        ("type: login\npath: /l\nexpiry: jws\n", "services.a.auth.expiry", "(did you mean 'jwt'?)"),
        ("type: login\npath: /l\nttl: 0\n", "services.a.auth.ttl", "> 0"),
        ("type: login\npath: /l\nrefresh_before: soon\n", "services.a.auth.refresh_before", "number of seconds"),
        ("type: static\ntoken: ''\n", "services.a.auth.token", "non-empty"),
        ("type: static\ntoken: t\nrefresh_before: 1m\n", "services.a.auth.refresh_before", "no effect"),
        ("type: static\ntoken: t\npath: /l\n", "services.a.auth.path", "unknown key 'path'"),
        ("type: basic\nusername: u\n", "services.a.auth", "'username' and 'password'"),
        ("type: basic\nusername: u\npassword: p\nheader: X\n", "services.a.auth.header", "unknown key"),
        ("type: oauth2\ntoken_url: /token\nclient_id: c\nclient_secret: s\n", "services.a.auth.token_url",
         "absolute http(s) URL"),
        ("type: oauth2\ntoken_url: http://x/t\nclient_id: c\n", "services.a.auth", "missing 'client_secret'"),
        ("type: oauth2\ntoken_url: http://x/t\nclient_id: c\nclient_secret: s\nclient_auth: form\n",
         "services.a.auth.client_auth", "body, basic"),
        ("type: oauth2\ntoken_url: http://x/t\nclient_id: c\nclient_secret: s\nscope: [1]\n",
         "services.a.auth.scope", "expected a string"),
    ],
)
def test_auth_kind_errors(tmp_path: Path, body: str, field: str, needle: str) -> None:
    err = error(tmp_path, AUTH + textwrap.indent(body, "      "))
    assert err.field == field
    assert needle in err.message


def test_auth_missing_env_names_variable(tmp_path: Path) -> None:
    err = error(tmp_path, AUTH + "      type: static\n      token: ${NURSE_TOKEN}\n")
    assert err.field == "services.a.auth.token" and "${NURSE_TOKEN}" in err.message


def test_credential_shaped_header_values_are_secrets_whatever_the_name(tmp_path: Path) -> None:
    cfg = load(tmp_path, """\
    services:
      user:
        base_url: http://127.0.0.1:8000
        headers: {X-Partner: "ptn-8a7b6c5d", X-Client: apimon, Accept: application/json,
                  Cookie: "sid=s1d-998877; lang=zh"}
    """)
    assert "ptn-8a7b6c5d" in cfg.secrets and "s1d-998877" in cfg.secrets
    assert "apimon" not in cfg.secrets and "application/json" not in cfg.secrets


# ---------------------------------------------------------------- issue 12 red team L4: ${VAR} in messages

L4_SECRET = "Pumice-Secret-7788"


@pytest.mark.parametrize("field", [
    'timeout: "${INNOCENT}"', 'verify_tls: "${INNOCENT}"', 'trusted_origins: ["${INNOCENT}"]',
    'base_url: "${INNOCENT}"', 'base_url: "http://[${INNOCENT}]/"',
    'auth: {type: login, method: "${INNOCENT}", path: /l, json: {password: "${INNOCENT}"}}',
    'auth: {type: "${INNOCENT}"}', 'auth: {type: login, path: /l, token_path: "${INNOCENT}[", json: {a: b}}',
    'base_url: {dev: "http://ok/", prod: "${INNOCENT}"}',
    'timeout: "${INNOCENT}${INNOCENT}${INNOCENT}"',
])
def test_l4_config_errors_show_the_variable_never_its_value(tmp_path: Path, field: str) -> None:
    base = "" if "base_url" in field else "    base_url: http://h/\n"
    text = f"services:\n  svc:\n{base}    {field}\n"
    exc = error(tmp_path, text, env="dev", INNOCENT=L4_SECRET)
    message = str(exc)
    assert L4_SECRET.lower() not in message.lower() and L4_SECRET[:10].lower() not in message.lower(), message
    assert "${INNOCENT}" in message, message


def test_l4_short_values_are_left_alone(tmp_path: Path) -> None:
    exc = error(tmp_path, """
    services:
      svc:
        base_url: http://h/
        timeout: "${T}"
    """, T="-5")
    assert "-5" in str(exc)


def test_l7_key_like_variable_values_in_the_config_are_secrets(tmp_path: Path) -> None:
    cfg = load(tmp_path, """
    services:
      svc:
        base_url: "http://h/${REGION}/"
        headers: {X-Tenant: "${TENANT}"}
    """, REGION="prod-eu-west-1", TENANT="Onyx-Seg-4471")
    assert "Onyx-Seg-4471" in cfg.secrets and "prod-eu-west-1" not in cfg.secrets


def test_l4_a_value_quoted_with_escapes_is_shown_as_the_variable(tmp_path: Path) -> None:
    secret = 'Zq"7\\\\密码-Lx42'
    exc = error(tmp_path, """
    services:
      svc:
        base_url: http://h/
        timeout: "${INNOCENT}"
    """, INNOCENT=secret)
    message = str(exc)
    assert "Lx42" not in message and "${INNOCENT}" in message, message


# ---------------------------------------------------------------- one dialect for every section


@pytest.mark.parametrize("field", ["defaults: {retries: null}", "alerts: {failure_threshold: null}",
                                   "notify: {max_messages: null}", "state: {lock_timeout: null}"])
def test_null_means_not_set_in_every_section(tmp_path: Path, field: str) -> None:
    cfg = load(tmp_path, field + "\n")
    assert (cfg.defaults.retries, cfg.policy.defaults.failure_threshold, cfg.notify.max_messages,
            cfg.state.lock_timeout) == (3, 1, 4, 300.0)


@pytest.mark.parametrize(("text", "field"), [
    ("defaults: {retries: yes}", "defaults.retries"),
    ("alerts: {failure_threshold: yes}", "alerts.failure_threshold"),
    ("notify: {max_messages: yes}", "notify.max_messages"),
    ("state: {retention_days: true}", "state.retention_days"),  # float(True) was 1 day
    ("state: {retention_days: .nan}", "state.retention_days"),
    ("state: {retention_days: [1]}", "state.retention_days"),
])
def test_wrong_type_is_an_error_naming_the_field_in_every_section(tmp_path: Path, text: str, field: str) -> None:
    err = error(tmp_path, text + "\n")
    assert err.field == field and err.line == 1


def test_variables_are_substituted_in_every_section(tmp_path: Path) -> None:
    cfg = load(tmp_path, "defaults: {retries: '${N}'}\nalerts: {failure_threshold: '${N}'}\n"
                         "notify: {max_messages: '${N}'}\nstate: {retention_days: '${N}'}\n", N="2")
    assert (cfg.defaults.retries, cfg.policy.defaults.failure_threshold, cfg.notify.max_messages,
            cfg.state.retention_days) == (2, 2, 2, 2.0)
