"""Property-based test (hypothesis) for the redactor: a known secret planted in ordinary text, written in any
of the forms docs/config-reference.md lists ("Encoded forms": raw, percent-encoded as requests/urllib3 and
urlencode write it, JSON-escaped once or twice) or with its special characters in any HTML/JS escape
(tests/test_redact.py _ESCAPES, as a page assembled from several templates writes them), leaves no piece
of the secret in the output, and every ordinary word around it stays as it was.

Stronger than "the escaped secret is not in the output": no run of 6 or more letters and digits of the
secret survives (a secret masked from its middle on still leaks its head). `APIMON_FUZZ_EXAMPLES=5000
pytest -p no:apimon tests/test_fuzz_redact.py` hunts longer.
"""

from __future__ import annotations

import json
import os
import re
from urllib.parse import quote, quote_plus

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_redact import _ESCAPES

from pytest_apimon.redact import Redactor, is_secret_value

FUZZ = settings(max_examples=int(os.environ.get("APIMON_FUZZ_EXAMPLES", "150")), deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])

# Ordinary words of reports and logs: never masked (README "Secrets": ordinary words are never masked).
WORDS = ["订单查询", "获取用户信息", "服务器错误", "failed", "status", "500", "GET", "POST", "/api/v1/orders",
         "user", "id", "page", "name", "total", "expires", "public", "token_type", "ok", "true",
         "心内科一病区", "timeout", "connect", "sort=asc", "lang=zh", "2026-11-30", "12:30", "request_id", "x"]

secrets = st.text(alphabet=st.sampled_from("abcdefXYZ0123456789-_." + "".join(_ESCAPES)), min_size=10,
                  max_size=28).filter(lambda s: s.strip() == s and is_secret_value(s)
                                      and re.search(r"[A-Za-z0-9]{6,}", s) is not None)


def encodings(secret: str, data: st.DataObject) -> str:
    form = data.draw(st.sampled_from(["raw", "quote", "quote_plus", "json1", "json2", "html"]))
    if form == "quote":
        return quote(secret, safe="/")
    if form == "quote_plus":
        return quote_plus(secret)
    if form == "json1":
        return json.dumps(secret)[1:-1]
    if form == "json2":
        return json.dumps(json.dumps(secret))[1:-1]
    if form == "html":
        return "".join(data.draw(st.sampled_from([c, *_ESCAPES[c]])) if c in _ESCAPES else c for c in secret)
    return secret


def pieces(secret: str) -> list[str]:
    return re.findall(r"[A-Za-z0-9]{6,}", secret)


@FUZZ
@given(secret=secrets, data=st.data(), before=st.lists(st.sampled_from(WORDS), max_size=5),
       after=st.lists(st.sampled_from(WORDS), max_size=5), glue=st.sampled_from([" ", "&", "=", ": ", "\n", ", "]))
def test_a_planted_secret_leaves_no_piece_and_ordinary_words_stay(secret: str, data: st.DataObject,
                                                                  before: list[str], after: list[str],
                                                                  glue: str) -> None:
    planted = encodings(secret, data)
    text = glue.join([*before, planted, *after])
    out = Redactor([secret]).text(text)
    context = glue.join([*before, *after])
    for piece in pieces(secret):
        if piece not in context:
            assert piece not in out, (secret, planted, out)
    for word in before + after:
        if not any(piece in word or word in piece for piece in pieces(secret)) and word not in secret:
            assert word in out, (word, text, out)


def test_a_secret_in_pythons_default_path_quoting_is_masked() -> None:
    """Found by the property above (explore profile, ~300 examples): `urllib.parse.quote`'s default form
    (`/` kept, `+` as %2B) was not among the encoded variants, so `00000000/+` was printed `00000000/%2B`."""
    assert Redactor(["00000000/+"]).text("GET /files/00000000/%2B 404") == "GET /files/****** 404"
