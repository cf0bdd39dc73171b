"""Found by a red team: masking after 64634b7 (known secrets first, escaped character forms) and 46fad30 (cut text).

Each test fails on 32cc755 for the fault its docstring names.
"""

from __future__ import annotations

import pytest

from pytest_apimon.redact import Redactor, credential_header_values

UNLEARNT = "Zq9-unlearnt-77"  # a value the run never learnt, under a secret-looking name


@pytest.mark.parametrize(("secret", "text"), [
    ("password", '{"password": "Zq9-unlearnt-77"}'),
    ("password", "new_password=Zq9-unlearnt-77&lang=zh"),
    ("Password", "X-Password: Zq9-unlearnt-77"),
])
def test_a_known_secret_that_is_also_a_key_word_does_not_unmask_the_pair(secret: str, text: str) -> None:
    """Known secrets are now masked before the pair rules, so a known secret that spells (part of) a key turns the
    key into '******' and the pair rule no longer sees a secret-looking key: the value it masked in 4fa69cd is
    printed. A login password 'password' (or an env safety-net value such as DB_PASSWORD=password) is enough."""
    out = Redactor([secret]).text(text)
    assert UNLEARNT not in out, out


@pytest.mark.parametrize("text", [
    "Authorization: Bearer abcDEF1234567890xyz",
    '{"headers": {"Authorization": "Bearer abcDEF1234567890xyz"}}',
    "send: b'GET /x HTTP/1.1\\r\\nAuthorization: Bearer abcDEF1234567890xyz\\r\\n'",
])
def test_the_scheme_word_stays_visible_once_the_header_value_is_known(text: str) -> None:
    """The run learns a credential header's whole value ('Bearer …', credential_header_values); masked first, it
    swallows the scheme word: a server's echo, a log line or http.client's debug line now read
    'Authorization: ******' where 4fa69cd printed 'Authorization: Bearer ******' (the scheme word is kept by
    design: Redactor._mask_keyed, README's reproduce example)."""
    red = Redactor(credential_header_values({"Authorization": "Bearer abcDEF1234567890xyz"}))
    out = red.text(text)
    assert "abcDEF1234567890xyz" not in out
    assert "Bearer ******" in out, out


# How real servers echo a secret (the framework's default escaper), each a form 64634b7's _char_forms misses.
TOKEN = "tok-Zq9/Lm2+Xy7=AbC"  # base64-ish tokens carry / + =
CJK = "密码Secret-2024"  # users are Chinese-speaking teams
LATIN = "Grüße-Passwort-9"
PUNCT = "P@ss!word#2024~"


@pytest.mark.parametrize(("secret", "echoed"), [
    # PHP json_encode / Laravel JsonResponse (default flags): '/' written as '\/'
    pytest.param(TOKEN, '{"headers": "Authorization: Bearer tok-Zq9\\/Lm2+Xy7=AbC"}', id="php-json-slash"),
    pytest.param(TOKEN, '{"echo": "tok-Zq9\\/Lm2+Xy7=AbC"}', id="php-json-slash-bare"),
    # ASP.NET Core System.Text.Json (default encoder): non-ASCII as \uXXXX with upper-case hex
    pytest.param(CJK, '{"echo": "\\u5BC6\\u7801Secret-2024"}', id="dotnet-json-upper-hex"),
    pytest.param(LATIN, '{"echo": "Gr\\u00FC\\u00DFe-Passwort-9"}', id="dotnet-json-latin"),
    # ASP.NET Core HtmlEncoder.Default (Razor): everything outside Basic Latin as &#x…;
    pytest.param(CJK, "<p>&#x5BC6;&#x7801;Secret-2024</p>", id="dotnet-html-cjk"),
    pytest.param(LATIN, "<p>Gr&#xFC;&#xDF;e-Passwort-9</p>", id="dotnet-html-latin"),
    # Spring HtmlUtils.htmlEscape / PHP htmlentities: HTML 4.01 named references for Latin-1 letters
    pytest.param(LATIN, "<p>Gr&uuml;&szlig;e-Passwort-9</p>", id="named-refs-latin"),
    # OWASP ESAPI encodeForHTML (cited by 64634b7): every non-alphanumeric but , . - _ space
    pytest.param(PUNCT, "<td>P&#x40;ss&#x21;word&#x23;2024&#x7e;</td>", id="esapi"),
    # Found by a later red team: URL encoders that keep other characters than Python's quote, or write lower-case
    # hex (RFC 3986 2.1 makes the case equivalent). JavaScript encodeURIComponent keeps ! ' ( ) * ~
    pytest.param(PUNCT, '{"error": "bad redirect ?next=/a&p=P%40ss!word%232024~"}', id="js-encodeuricomponent"),
    # WHATWG URLSearchParams (Node, browsers): ! and ~ escaped, space as +
    pytest.param(PUNCT, "GET /cb?p=P%40ss%21word%232024%7E", id="urlsearchparams"),
    # .NET System.Web.HttpUtility.UrlEncode: lower-case hex
    pytest.param(TOKEN, "redirect to /cb?state=tok-Zq9%2fLm2%2bXy7%3dAbC", id="dotnet-urlencode-lower-hex"),
    pytest.param(CJK, "/cb?p=%e5%af%86%e7%a0%81Secret-2024", id="dotnet-urlencode-cjk"),
])
def test_a_secret_echoed_by_a_common_framework_is_masked(secret: str, echoed: str) -> None:
    out = Redactor([secret]).text(echoed)
    assert out != echoed and "******" in out, out
    # Nothing of the secret's distinctive middle survives in any form.
    assert "Lm2" not in out and "Secret-2024" not in out and "Passwort-9" not in out and "word" not in out, out


def test_a_cut_inside_a_service_name_is_not_masked_in_the_demo_summary() -> None:
    """README's 'Try it' at 80 columns: pytest's short summary cuts the failure line of service 'nurse' (demo
    password 'nurse-pass') after 'nurs' and the run printed '[服务不可用] ******...'. The demo's passwords no longer
    begin with their services' names (a start of a known secret is masked at any cut, by design)."""
    from pytest_apimon.demo_routes import CREDENTIALS

    red = Redactor([password for _, password in CREDENTIALS.values()])  # the demo's own passwords
    line = "FAILED Interface-pool/nurse/病房/wards.json::床位占用统计 - [服务不可用] nurs..."
    assert red.text(line) == line


def test_a_cut_secret_with_a_key_value_shape_is_not_cut_apart() -> None:
    """64634b7's own example, cut by a library before it reached us ('…'): the literal no longer matches, the
    form rule takes 'Zp0Secret' as a key, masks '…' as its value, and the cut-mark defence then finds no mark:
    22 of the secret's 23 characters are printed."""
    red = Redactor(["kX9+Qa7/Lm2+Zp0Secret=="])
    out = red.text("upstream said: kX9+Qa7/Lm2+Zp0Secret=… (truncated)")
    assert "Qa7/Lm2" not in out, out


def test_the_end_of_a_known_token_after_a_middle_cut_is_masked() -> None:
    """pytest's saferepr (assertion messages of users' tests in the pool, -l locals) cuts a long string in the middle:
    'start...end'. The start is masked; the end, here a JWT's payload tail and its whole signature, is printed
    (measured end to end: `assert apimon_token("shop") == …` printed '******...sw5cSIGSIGSIG', and a
    `.startswith` on the login response printed the signature whole in the terminal and JUnit XML). The JWT rule
    even takes one '.' of the '...' as the token's second dot."""
    header = "eyJhbGciOiAiSFMyNTYiLCAidHlwIjogIkpXVCJ9"
    payload = "eyJzdWIiOiAidXNlci0xMjMiLCAibmFtZSI6ICJ4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4In0"
    signature = "SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c"
    token = f"{header}.{payload}.{signature}"
    red = Redactor([token])
    cut = f"assert '{token[:60]}...{token[-70:]}' == 'expected'"
    out = red.text(cut)
    assert signature[-20:] not in out, out


@pytest.mark.parametrize("cut", [
    "<p>invalid key kX9&#43;Qa7/Lm2&#43;Zp…</p>",  # the red team's case: cut after complete escapes
    "<p>invalid key kX9&#43;Qa7/Lm2&#4…</p>",  # cut inside an escape
    "<p>invalid key kX9&amp;#43;Qa7&#x2F;Lm2…</p>",  # escaped twice, hex
    '{"k": "kX9\\u002bQa7\\/Lm2\\u002…"}',  # JSON escapes, cut inside one
])
def test_a_cut_secret_in_an_escaped_form_is_masked(cut: str) -> None:
    """A server that escapes a secret and then cuts its own text (a framework truncating its error message): the
    escaped start of the secret is masked like a raw one (mask_partial_tail decodes the escapes first)."""
    out = Redactor(["kX9+Qa7/Lm2+Zp0Secret=="]).text(cut)
    assert "Qa7" not in out and "kX9" not in out, out


def test_escapes_in_ordinary_text_around_a_cut_stay() -> None:
    text = "AT&amp;T &#34;quoted&#34; Tom&Jerry \\u0041BC…"
    assert Redactor(["kX9+Qa7/Lm2+Zp0Secret=="]).text(text) == text
