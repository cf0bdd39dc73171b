"""Shortened text never shows part of a secret (redact.excerpt), credential headers the tool sent are masked
by value when echoed, results records keep their own field names, the pool root does not depend on how the
pool is named, and the state folder's .gitignore is private."""

from __future__ import annotations

import json
import os
from pathlib import Path

from hypothesis import example, given
from hypothesis import strategies as st

from pytest_apimon.categories import Category, Outcome
from pytest_apimon.classify import classify
from pytest_apimon.documents import BodyCheck, Expect
from pytest_apimon.plugin import pool_root
from pytest_apimon.probe import Exchange
from pytest_apimon.redact import MASK, Redactor, credential_header_values, excerpt
from pytest_apimon.report import render_json
from pytest_apimon.response_schema import validator as schema_validator
from pytest_apimon.response_schema import violations
from pytest_apimon.results import InterfaceResult, RunResult
from pytest_apimon.statedir import ensure_state_dir

# Secrets and padding are drawn from disjoint alphabets, so a prefix of the secret found in an excerpt can only
# come from the secret itself.
SECRET_CHARS = "ABCDEFGHJKMNPQRSTUVWXYZ0123456789-"
PAD_CHARS = "abcdefghijklmnopqrstuvwxyz ,.:{}"
secrets = st.text(SECRET_CHARS, min_size=8, max_size=40).filter(lambda s: s.strip("-") == s)
pads = st.text(PAD_CHARS, max_size=300)


def prefixes_shown(secret: str, text: str) -> list[str]:
    """Every prefix of 4+ characters of the secret that appears in text (its 4-character head suffices)."""
    return [secret[:k] for k in range(4, len(secret) + 1) if secret[:k] in text][:1]


# -- excerpt: mask, then cut ---------------------------------------------------------------------------------
@given(secret=secrets, before=pads, after=pads, limit=st.integers(1, 800))
@example(secret="S3CRET-PLANT-1234", before='{"note": "', after='"}', limit=15)
def test_no_prefix_of_a_known_secret_survives_any_cut(secret: str, before: str, after: str, limit: int) -> None:
    red = Redactor([secret])
    for text in (before + secret + after, json.dumps({"pad": before, "v": secret, "w": after}),
                 json.dumps(json.dumps({"pad": before, "v": secret}))):  # echoed inside a JSON string
        shown = excerpt(text, limit, red)
        assert not prefixes_shown(secret, shown), (text, limit, shown)
        assert len(shown) <= max(limit, 0) + len(MASK)  # the defence may swap a 4+ character tail for MASK


@given(secret=secrets, pad=pads, limit=st.integers(1, 400))
@example(secret="S3CRET-PLANT-1234", pad="", limit=40)
def test_a_value_under_a_secret_name_is_masked_before_the_cut_even_when_unknown(secret: str, pad: str,
                                                                                limit: int) -> None:
    """Nobody told the redactor this value: only its name (`password`) says it is a credential, and that pair
    can only be recognised in the whole text, never in a cut one ending inside the value."""
    text = json.dumps({"note": pad, "password": secret})
    for shown in (excerpt(text, limit, Redactor()), excerpt(json.dumps(text), limit, Redactor())):
        assert not prefixes_shown(secret, shown), (limit, shown)


@given(secret=secrets, pad=pads, k=st.integers(4, 40))
def test_text_masks_the_start_of_a_known_secret_before_a_cut_mark(secret: str, pad: str, k: int) -> None:
    """Defence for text cut before it reached the redactor (a library's message, an old record)."""
    red = Redactor([secret])
    for mark in ("…", "..."):
        shown = red.text(f"got {pad}{secret[:k]}{mark} end")
        assert not prefixes_shown(secret, shown), shown
        assert shown.endswith(f"{MASK}{mark} end")


def test_excerpt_keeps_ordinary_text_and_marks_the_cut() -> None:
    red = Redactor(["S3CRET-PLANT-1234"])
    assert excerpt("short", 10, red) == "short"
    assert excerpt("a" * 20, 10, red) == "a" * 9 + "…"
    assert excerpt("ordinary words stay visible", 14) == "ordinary word…"
    assert red.text("Loading S3...") == "Loading S3..."  # fewer than 4 characters of a secret: not a secret


def test_issue_example_reason_quotes_the_echo_masked() -> None:
    """The tester's reason: `got "{\\"note\\": \\"******\\", \\"password\\": \\"S3CRET-P…`."""
    secret = "S3CRET-PLANT-1234"
    red = Redactor()
    red.add_secret(secret)  # as engine.build_request learns it from the `password` field
    echo = json.dumps({"echo": json.dumps({"note": secret, "password": secret})}).encode()
    ex = Exchange("POST", "http://127.0.0.1:1/echo", {}, None, status=200,
                  response_headers={"Content-Type": "application/json"}, body=echo)
    out = classify(ex, Expect(body=(BodyCheck("echo", "equals", "x"),)), red)
    assert out.category == Category.UNEXPECTED
    assert "S3CR" not in out.reason and MASK in out.reason, out.reason


@given(secret=secrets, pad=pads, where=st.sampled_from(["note", "password"]))
def test_no_prefix_of_a_secret_in_any_reason_whatever_the_padding(secret: str, pad: str, where: str) -> None:
    """classify quotes the echoed value (60 characters) in a reason (200): for any padding in front of the
    secret, the reason shows no part of it. `note` relies on the secret being known, `password` on its name."""
    red = Redactor([secret] if where == "note" else [])
    inner = json.dumps({"pad": pad, where: secret})
    ex = Exchange("POST", "http://127.0.0.1:1/echo", {}, None, status=200,
                  response_headers={"Content-Type": "application/json"},
                  body=json.dumps({"echo": inner, "raw": pad + secret}).encode())
    for check in (BodyCheck("echo", "equals", "x"), BodyCheck("raw", "equals", "x"),
                  BodyCheck("echo", "regex", "^nothing$"), BodyCheck("echo", "in", ["x"])):
        if check.path == "raw" and where == "password":
            continue  # bare text with no name: only a known secret can be recognised
        reason = classify(ex, Expect(body=(check,)), red).reason
        assert not prefixes_shown(secret, reason), reason


def test_schema_messages_are_masked_before_they_are_cut() -> None:
    secret = "S3CRET-PLANT-1234"
    red = Redactor([secret])
    data = {"echo": "x" * 40 + secret + "y" * 40}
    for pad in range(0, 60):
        data = {"echo": "x" * pad + secret + "y" * 80}
        shown, _ = violations(schema_validator({"properties": {"echo": {"type": "integer"}}}), data, red)
        assert shown and not prefixes_shown(secret, " ".join(shown)), shown


# -- credentials the tool sent -------------------------------------------------------------------------------
def test_credential_header_values_include_the_credential_after_a_scheme_word() -> None:
    values = credential_header_values({"X-Partner": "Token k-93jd82hd", "Accept": "application/json",
                                       "Cookie": "sid=Zx81-sess-val; theme=dark", "X-Flag": "true"})
    # The credential alone: the scheme word stays readable wherever the value shows up again.
    assert "Token k-93jd82hd" not in values and "k-93jd82hd" in values and "Zx81-sess-val" in values
    assert "application/json" not in values and "true" not in values and "theme=dark" not in values
    red = Redactor(values)
    assert red.text('{"X-Partner": "Token k-93jd82hd"}') == f'{{"X-Partner": "Token {MASK}"}}'


# -- the tool's own records ----------------------------------------------------------------------------------
def test_results_json_keeps_the_key_field_and_still_masks_user_data() -> None:
    r = InterfaceResult(nodeid="pool/svc/a.yaml::get", service="svc", module="a", name="get", key="svc/get",
                        outcome=Outcome.FAILED, category=Category.UNEXPECTED, reason="HTTP 500",
                        request_headers={"X-Api-Key": "k-123456789", "Accept": "*/*"},
                        response_body='{"key": "Zq7-abcdefgh", "token": "tok-987654321"}')
    record = json.loads(render_json(RunResult(0.0, 1.0, "prod", [r])))["results"][0]
    assert record["key"] == "svc/get"
    assert record["request_headers"] == {"X-Api-Key": MASK, "Accept": "*/*"}
    assert "Zq7-abcdefgh" not in record["response_body"] and "tok-987654321" not in record["response_body"]


# -- the pool root --------------------------------------------------------------------------------------------
def _tree(base: Path, *files: str) -> None:
    for rel in files:
        (base / rel).parent.mkdir(parents=True, exist_ok=True)
        (base / rel).write_text("- {name: a, url: 'http://127.0.0.1:9/'}\n", encoding="utf-8")


def test_pool_root_is_the_same_however_the_pool_is_named(tmp_path: Path) -> None:
    _tree(tmp_path, "pool/api/x.yaml", "pool/urlsvc/a.yaml", "pool/urlsvc/sub/b.yaml", "pool/health.json")
    pool = tmp_path / "pool"
    for services in (("api",), ()):  # next to a configured service, and with no service configured at all
        for arg in ("pool", "pool/urlsvc", "pool/urlsvc/a.yaml", "pool/urlsvc/sub", "pool/health.json",
                    "pool/api", "pool/api/x.yaml"):
            assert pool_root(tmp_path / arg, services, tmp_path) == pool, (services, arg)


def test_pool_root_outside_the_config_folder(tmp_path: Path) -> None:
    _tree(tmp_path, "elsewhere/pool/api/x.yaml", "elsewhere/pool/urlsvc/a.yaml")
    config_dir = tmp_path / "ws"
    config_dir.mkdir()
    pool = tmp_path / "elsewhere" / "pool"
    assert pool_root(pool, ("api",), config_dir) == pool
    assert pool_root(pool / "urlsvc", ("api",), config_dir) == pool  # a configured sibling names the pool
    assert pool_root(pool / "urlsvc" / "a.yaml", ("api",), config_dir) == pool
    assert pool_root(pool / "urlsvc", (), config_dir) == pool / "urlsvc"  # nothing says otherwise: a pool


# -- files at rest ---------------------------------------------------------------------------------------------
def test_state_folder_gitignore_is_private_and_an_old_one_is_tightened(tmp_path: Path) -> None:
    folder = ensure_state_dir(tmp_path / ".apimon")
    ignore = folder / ".gitignore"
    assert ignore.read_text() == "*\n" and oct(ignore.stat().st_mode & 0o777) == "0o600"
    os.chmod(ignore, 0o644)
    ensure_state_dir(folder)
    assert oct(ignore.stat().st_mode & 0o777) == "0o600" and ignore.read_text() == "*\n"
