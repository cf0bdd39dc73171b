"""Postman Collection v2.0/v2.1 -> Drafts: one per request, folders as modules.

Behaves as newman runs a collection, except for scripts. `{{var}}` is looked up in the overrides
sidecar's `variables`, the Postman environment file named by the sidecar's `environment`, the
folder and collection variables (innermost first), then the process environment; a request still
holding an unknown variable is skipped with its name, never sent half-filled. A leading
`{{baseUrl}}` (or the scheme and host of a literal URL) becomes the fallback base URL, so a
configured service base_url replaces it. Requests inherit `auth` and `protocolProfileBehavior`
from their folders and the collection; GET/HEAD (and COPY, PURGE, UNLOCK) bodies are pruned
unless `disableBodyPruning` is true (postman-runtime's documented protocolProfileBehavior).
What is not done (scripts are JavaScript; unmapped auth types; file uploads) is noted once per
file in `DocumentFile.notes`, not on every request.
"""

from __future__ import annotations

import base64
import datetime as _dt
import json
import re
import secrets
import time
import uuid
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import parse_qsl

from .._document_fields import describe, url_problem
from ..loader import Path_
from ..redact import is_secret_name
from .model import MISSING, Context, Draft, Param, method_of

_VAR = re.compile(r"\{\{\s*([^{}]+?)\s*\}\}")
_DYNAMIC: dict[str, Callable[[], str]] = {  # Postman built-ins that need no JavaScript
    "$guid": lambda: str(uuid.uuid4()),
    "$randomUUID": lambda: str(uuid.uuid4()),
    "$timestamp": lambda: str(int(time.time())),
    "$isoTimestamp": lambda: _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="milliseconds"),
    "$randomInt": lambda: str(secrets.randbelow(1001)),
}
SCRIPT_NOTE = "Postman scripts (tests, pre-request) are JavaScript and are not run; the status is checked"


class Vars:
    """Variable lookup, narrowest scope first as in newman: sidecar `variables` > environment file (sidecar
    `environment`) > folders (innermost first) > collection > process environment > built-ins."""

    def __init__(self, layers: list[dict[str, str]], environ: Mapping[str, str], sidecar: dict[str, str],
                 environment: Mapping[str, str] | None = None) -> None:
        self.layers, self.environ, self.sidecar = layers, environ, sidecar
        self.environment: Mapping[str, str] = environment or {}
        self.unresolved: list[str] = []
        self.secrets: list[str] = []  # values of secret-looking variables ({{apiKey}}), wherever they are used

    def lookup(self, name: str) -> str | None:
        value = self._lookup(name)
        if value and is_secret_name(name):
            self.secrets.append(value)
        return value

    def _lookup(self, name: str) -> str | None:
        for layer in (self.sidecar, self.environment, *reversed(self.layers)):
            if name in layer:
                return layer[name]
        if name in self.environ:
            return self.environ[name]
        return _DYNAMIC[name]() if name in _DYNAMIC else None

    def resolve(self, text: str, *, record: bool = True) -> str:
        for _ in range(10):  # values may refer to other variables; a cycle stops here
            def repl(m: re.Match[str]) -> str:
                value = self.lookup(m.group(1))
                return m.group(0) if value is None else value

            new = _VAR.sub(repl, text)
            if new == text:
                break
            text = new
        if record:
            self.unresolved += [n for n in _VAR.findall(text) if n not in self.unresolved]
        return text

    def external(self, text: str) -> bool:
        """True when every variable in text is set by the user (sidecar, environment file or process
        environment), not by the export."""
        names = _VAR.findall(text)
        return bool(names) and all(n in self.sidecar or n in self.environment or n in self.environ for n in names)

    def credential(self, text: str) -> tuple[str | None, bool | None]:
        """A credential field such as `{{token}}`: (value to send or None, interface auth).

        Set by the user (sidecar, environment file, process environment): sent as is, no service token.
        A non-empty value saved in the collection: sent as newman would, but a service auth configured in
        config.yaml replaces it (auth None). Empty or undefined (typically set by a login script, which is
        not run): the service's own token (auth True)."""
        if "{{" not in text:
            return (text or None), False
        parts = [self.resolve("{{" + name + "}}", record=False) for name in _VAR.findall(text)]
        if any("{{" in part or not part.strip() for part in parts):
            return None, True
        return self.resolve(text, record=False), False if self.external(text) else None


def _kv(raw: Any) -> dict[str, str]:
    """Postman key/value lists ([{key, value, disabled}]) or v2.0 plain mappings -> dict."""
    if isinstance(raw, dict):
        return {str(k): "" if v is None else str(v) for k, v in raw.items()}
    out: dict[str, str] = {}
    for entry in raw if isinstance(raw, list) else ():
        key = entry.get("key", entry.get("id")) if isinstance(entry, dict) else None  # v2.0 variables: "id"
        if key is not None and not entry.get("disabled"):
            value = entry.get("value")
            out[str(key)] = "" if value is None else (json.dumps(value) if isinstance(value, (dict, list))
                                                               else str(value))
    return out


def _has_scripts(events: Any) -> bool:
    for event in events if isinstance(events, list) else ():
        script = event.get("script") if isinstance(event, dict) else None
        lines = script.get("exec") if isinstance(script, dict) else None
        text = "\n".join(map(str, lines)) if isinstance(lines, list) else str(lines or "")
        if text.strip():
            return True
    return False


_BODYLESS = ("GET", "HEAD", "COPY", "PURGE", "UNLOCK")  # postman-runtime prunes their body (disableBodyPruning)
_HONOURED = ("disableBodyPruning", "followRedirects", "strictSSL")  # protocolProfileBehavior keys done here


def drafts(ctx: Context) -> list[Draft]:
    data = ctx.source.data
    items = data.get("item")
    out: list[Draft] = []
    if not isinstance(items, list):
        ctx.error(("item",), f"expected 'item': a list of requests and folders, got {describe(items)}")
        return out
    layers = [_kv(data.get("variable"))]
    _walk(ctx, items, ("item",), (), layers, data.get("auth"), _has_scripts(data.get("event")),
          _behavior({}, data.get("protocolProfileBehavior")), out)
    return out


def _behavior(inherited: dict[str, Any], own: Any) -> dict[str, Any]:
    """protocolProfileBehavior: an item's own keys win over its folders' and the collection's (postman-runtime)."""
    return {**inherited, **own} if isinstance(own, dict) else inherited


def _walk(ctx: Context, items: list[Any], at: Path_, folders: tuple[str, ...], layers: list[dict[str, str]],
          auth: Any, scripted: bool, behavior: dict[str, Any], out: list[Draft]) -> None:
    for i, item in enumerate(items):
        item_at = at + (i,)
        name = str(item.get("name") or "").strip() if isinstance(item, dict) else ""
        if isinstance(item, dict) and isinstance(item.get("item"), list):  # a folder
            own_auth = item.get("auth")
            inherited = auth if not isinstance(own_auth, dict) or own_auth.get("type") == "inherit" else own_auth
            _walk(ctx, item["item"], item_at + ("item",), (*folders, name or f"folder {i + 1}"),
                  [*layers, _kv(item.get("variable"))], inherited, scripted or _has_scripts(item.get("event")),
                  _behavior(behavior, item.get("protocolProfileBehavior")), out)
        elif isinstance(item, dict) and "request" in item:
            try:
                out.append(_request(ctx, item, item_at, folders, layers, auth, scripted,
                                    _behavior(behavior, item.get("protocolProfileBehavior")), len(out)))
            except (TypeError, ValueError, AttributeError, KeyError, IndexError) as exc:
                # A shape this reader did not foresee costs this request only, never the file or the run.
                out.append(Draft(name or f"#{len(out) + 1}", folders[0] if folders else "", "GET", "/", (), item_at,
                                 folders, index=len(out), error=(item_at, f"cannot read this request: {exc!r}")))
        else:
            draft = Draft(name or f"#{len(out) + 1}", folders[0] if folders else "", "GET", "/", (), item_at,
                          folders, index=len(out))
            draft.error = (item_at, f"expected a request (with 'request') or a folder (with 'item'), got "
                                    f"{describe(item)}")
            out.append(draft)


def _request(ctx: Context, item: dict[str, Any], at: Path_, folders: tuple[str, ...],
             layers: list[dict[str, str]], auth: Any, scripted: bool, behavior: dict[str, Any], index: int) -> Draft:
    req = item["request"]
    req = {"url": req, "method": "GET"} if isinstance(req, str) else req
    req_at = at + ("request",)
    method = str(req.get("method") or "GET").strip().upper() if isinstance(req, dict) else "GET"
    name = str(item.get("name") or "").strip()
    draft = Draft(name, folders[0] if folders else "", method, "/", (), req_at, folders, index=index)
    if not isinstance(req, dict):
        draft.error = (req_at, f"expected a request (a URL or a mapping with 'url'), got {describe(req)}")
        return draft
    v = Vars(layers, ctx.environ, ctx.overrides.variables, ctx.overrides.environment)
    notes = [_description(req.get("description"))] if req.get("description") else []
    draft.fallback_base_url, draft.path, query = _url(req.get("url"), v, draft)
    if draft.error is not None and isinstance(item["request"], str):  # the URL is the request itself
        draft.error = (req_at, draft.error[1])
    draft.name = name or f"{method} {draft.path}"
    draft.keys = (name, f"{method} {draft.path}") if name else (f"{method} {draft.path}",)
    draft.params += [Param(k, "query", True, MISSING if _placeholder(val) else val) for k, val in query.items()]
    draft.headers = _headers(req.get("header"), v, draft)
    if method not in _BODYLESS or behavior.get("disableBodyPruning") is True:
        _body(ctx, req.get("body"), v, draft)  # newman drops a GET's saved body (e.g. a leftover OAuth form)
    _behave(ctx, behavior, draft)
    own = req.get("auth")
    _auth(ctx, own if isinstance(own, dict) and own.get("type") != "inherit" else auth, v, draft)
    ctx.secrets += v.secrets
    saved = item.get("response")
    responses = saved if isinstance(saved, list) else []
    top = 300 if draft.follow_redirects else 400  # not following redirects: a saved 3xx is the expected answer
    codes = sorted({r["code"] for r in responses if isinstance(r, dict)
                    and isinstance(r.get("code"), int) and 200 <= r["code"] < top})
    draft.status = tuple(codes) or (() if draft.follow_redirects else ("2xx", "3xx"))
    if scripted or _has_scripts(item.get("event")):
        ctx.note(SCRIPT_NOTE)
    draft.description = "\n".join(n for n in notes if n) or None
    if method_of(method) is None:
        draft.skip, draft.skip_kind = f"HTTP method {method} is not supported by pytest-apimon", "unsupported"
    elif not _has_url(req.get("url")):  # newman fails it ("Invalid URI"); sending GET / would prove nothing
        draft.skip, draft.skip_kind = "the request has no URL", "unsupported"
    elif v.unresolved:
        names = ", ".join("{{" + n + "}}" for n in v.unresolved)
        draft.skip = (f"variable {names} is not defined in the collection or the environment"
                      f"{' (maybe set by a script, which is not run)' if scripted else ''} — set it in apimon "
                      "overrides `variables`")
        draft.skip_kind = "unresolved"
    return draft


def _behave(ctx: Context, behavior: dict[str, Any], draft: Draft) -> None:
    """followRedirects and strictSSL as newman honours them; other keys are listed as not done."""
    if behavior.get("followRedirects") is False:
        draft.follow_redirects = False
    if isinstance(behavior.get("strictSSL"), bool):
        draft.verify_tls = behavior["strictSSL"]
    for key, value in behavior.items():
        if key not in _HONOURED and value not in (None, False, [], {}):
            ctx.note(f"Postman protocolProfileBehavior '{key}' is not supported")


_PLACEHOLDER = re.compile(r"^<[A-Za-z][\w -]*>$")  # openapi-to-postman writes "<long>", "<string>", "<dateTime>"


def _placeholder(value: Any) -> bool:
    """True when value is (or, for a list / JSON body, holds) a type placeholder such as "<long>" instead of
    a value: sending it would only make a healthy service fail the check."""
    if isinstance(value, str):
        return bool(_PLACEHOLDER.match(value.strip()))
    if isinstance(value, dict):
        return any(_placeholder(v) for v in value.values())
    if isinstance(value, list):
        return any(_placeholder(v) for v in value)
    return False


def _description(raw: Any) -> str:
    text = raw.get("content", "") if isinstance(raw, dict) else str(raw)
    return " ".join(str(text).split())[:300]


def _plausible_host(hostport: str) -> bool:
    """A host name with a dot or a port, localhost, or an IP address."""
    host = hostport.rpartition("@")[2]
    return "." in host or ":" in host or host.lower() == "localhost" or host.startswith("[")


def _has_url(raw: Any) -> bool:
    if isinstance(raw, dict):
        return any(raw.get(k) for k in ("raw", "host", "path"))
    return bool(str(raw or "").strip())


def _url(raw: Any, v: Vars, draft: Draft) -> tuple[str | None, str, dict[str, Any]]:
    """(fallback base URL, path with :vars kept, query) from a Postman URL (string or object)."""
    path_vars: dict[str, str] = {}
    pairs: list[tuple[str, str]] | None = None  # the structured query, when the URL has parts
    if isinstance(raw, dict):
        path_vars = _kv(raw.get("variable"))
        text = raw.get("raw")
        # As postman-collection's Url: the structured parts win over `raw` (a disabled query parameter stays
        # in `raw` but is not sent); `raw` alone only when there are no parts.
        if raw.get("host") or raw.get("path") or not isinstance(text, str) or not text.strip():
            host = raw.get("host")
            host = ".".join(map(str, host)) if isinstance(host, list) else str(host or "")
            segments = raw.get("path")
            segments = "/".join(str(s.get("value", "") if isinstance(s, dict) else s) for s in segments) \
                if isinstance(segments, list) else str(segments or "")
            protocol = f"{raw['protocol']}://" if raw.get("protocol") else ""
            port = f":{raw['port']}" if raw.get("port") else ""
            pairs = [(str(q["key"]), "" if q.get("value") is None else str(q["value"]))
                     for q in raw.get("query") or () if isinstance(q, dict) and q.get("key") is not None
                     and not q.get("disabled")]
            text = f"{protocol}{host}{port}/{segments.lstrip('/')}"
    else:
        text = str(raw or "")
    text = text.strip().split("#", 1)[0]
    base: str | None = None
    lead = re.match(r"^(\{\{[^{}]+\}\})([/?].*|)$", text)
    if lead:  # {{baseUrl}}/pets: the variable is the base URL, a configured base_url replaces it
        base, rest = v.resolve(lead.group(1), record=False), lead.group(2)
    else:
        resolved = v.resolve(text, record=False)
        split = re.match(r"^([a-zA-Z][\w+.-]*://[^/?]*|[^/?]+)(.*)$", resolved)
        base, rest = (split.group(1), split.group(2)) if split else (None, resolved)
    if base is not None:
        base = base.rstrip("/")
        schemeless = "://" not in base
        if schemeless:
            base = "http://" + base
        if "{{" in base or not re.match(r"^https?://[^/\s{}]+", base):
            base = None  # unresolved host: only a configured base_url can say where to send it
        elif (problem := url_problem(base)) is not None:
            # A malformed host (http://[::1/x) must not be replaced by the configured base_url and sent anyway.
            draft.error = (draft.at + ("url",), f"malformed URL {text!r}: {problem}")
        elif schemeless and not lead and "{{" not in text and not rest.strip("/") \
                and not _plausible_host(base[len("http://"):]):
            # Postman reads `not-a-url` as a host; only a configured base_url would then be asked for GET /.
            draft.error = (draft.at + ("url",), f"{text!r} is not a URL: expected e.g. "
                                                "'https://api.example.com/path' or '{{baseUrl}}/path'")
    rest = v.resolve(rest)
    path, _, qs = rest.partition("?")
    path = "/" + path.lstrip("/")
    query: dict[str, Any] = {}
    found = parse_qsl(qs, keep_blank_values=True) if pairs is None else [(k, v.resolve(val)) for k, val in pairs]
    for key, value in found:
        query[key] = [*query[key], value] if isinstance(query.get(key), list) else (
            [query[key], value] if key in query else value)
    for name in re.findall(r"(?<=/):([A-Za-z_][\w-]*)", path):
        saved = path_vars.get(name)
        filled = v.resolve(saved) if saved else ""
        draft.params.append(Param(name, "path", True, MISSING if not filled or _placeholder(filled) else filled))
    return base, path, query


def _headers(raw: Any, v: Vars, draft: Draft) -> dict[str, str]:
    if isinstance(raw, str):  # v2.0 allows "Key: value\nKey2: value2"
        raw = [{"key": k.strip(), "value": val.strip()} for k, _, val in
               (line.partition(":") for line in raw.splitlines()) if k.strip()]
    out: dict[str, str] = {}
    for key, value in _kv(raw).items():
        if key.lower() == "authorization" and "{{" in value:  # "Bearer {{token}}"
            sent, draft.auth = v.credential(value)
            if sent is not None:
                out[key] = sent
            continue
        value = v.resolve(value)
        if _placeholder(value):  # openapi-to-postman's "<uuid>": a type, not a value
            draft.params.append(Param(key, "header", True, MISSING))
            continue
        out[key] = value
    return out


def _body(ctx: Context, raw: Any, v: Vars, draft: Draft) -> None:
    if not isinstance(raw, dict) or raw.get("disabled"):
        return
    mode = raw.get("mode")
    if mode == "raw" and isinstance(raw.get("raw"), str) and raw["raw"].strip():
        text = v.resolve(raw["raw"])
        given = raw.get("options")
        options = given if isinstance(given, dict) else {}
        language = (options.get("raw") or {}).get("language") if isinstance(options.get("raw"), dict) else None
        ctype = next((val for k, val in draft.headers.items() if k.lower() == "content-type"), "")
        if language == "json" or "json" in ctype.lower() or text.lstrip()[:1] in ("{", "["):
            try:
                draft.body_kind, draft.body = "json", json.loads(text)
                if _placeholder(draft.body):
                    draft.body, draft.body_required = MISSING, True
                return
            except ValueError:
                pass
        draft.body_kind, draft.body = "body", text
    elif mode in ("urlencoded", "formdata"):
        entries = [e for e in raw.get(mode) or () if isinstance(e, dict) and e.get("type") != "file"]
        if len(entries) != len([e for e in raw.get(mode) or () if isinstance(e, dict)]):
            ctx.note("Postman form-data file uploads are not sent")
        form = {k: v.resolve(val) for k, val in _kv(entries).items()}
        if form:
            draft.body_kind, draft.body = "form", form
            if mode == "formdata":
                ctx.note("Postman form-data bodies are sent URL-encoded, not as multipart/form-data")
    elif mode == "file":
        ctx.note("Postman binary file bodies are not sent")
    elif mode == "graphql" and isinstance(raw.get("graphql"), dict):
        gql = raw["graphql"]
        variables = v.resolve(str(gql.get("variables") or "")).strip()
        try:
            parsed = json.loads(variables) if variables else None
        except ValueError:
            parsed = None
        draft.body_kind = "json"
        draft.body = {"query": v.resolve(str(gql.get("query") or "")), **({"variables": parsed} if parsed else {})}


def _auth(ctx: Context, auth: Any, v: Vars, draft: Draft) -> None:
    """Map collection/folder/request auth onto the interface; an unmapped type is noted for the file."""
    if not isinstance(auth, dict):
        return
    kind = str(auth.get("type") or "")
    values = _kv(auth.get(kind))
    if kind == "noauth":
        draft.auth = False
    elif kind == "bearer":
        token, draft.auth = v.credential(values.get("token", ""))
        if token:
            ctx.secrets.append(token)
            draft.headers.setdefault("Authorization", f"Bearer {token}")
    elif kind == "oauth2":  # newman sends the saved access token; it never runs the grant itself
        token, draft.auth = v.credential(values.get("accessToken", ""))
        ctx.secrets += [token or "", *(v.resolve(values.get(k, "")) for k in ("clientSecret", "password",
                                                                             "refreshToken"))]
        if token and values.get("addTokenTo") == "queryParams":
            draft.params.append(Param("access_token", "query", True, token))
        elif token:
            prefix = values.get("headerPrefix", "Bearer").strip()
            draft.headers.setdefault("Authorization", f"{prefix} {token}".strip())
    elif kind == "basic":
        user, password = v.resolve(values.get("username", "")), v.resolve(values.get("password", ""))
        pair = base64.b64encode(f"{user}:{password}".encode()).decode("ascii")
        ctx.secrets += [password, pair]
        draft.headers.setdefault("Authorization", f"Basic {pair}")
        draft.auth = False
    elif kind == "apikey":
        key, value = v.resolve(values.get("key", "")), v.resolve(values.get("value", ""))
        ctx.secrets.append(value)  # sent under any name the author chose ("q"): masked by value
        if values.get("in") == "query":
            draft.params.append(Param(key, "query", True, value))
        else:
            draft.headers.setdefault(key or "X-API-Key", value)
        draft.auth = False
    elif kind:
        ctx.note(f"Postman auth type '{kind}' is not mapped: configure the service's auth in config.yaml")
