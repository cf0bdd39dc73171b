from __future__ import annotations

from pytest_apimon.parsecache import CACHE_FILE, ParseCache


def _doc(tmp_path, text: str):
    pool = tmp_path / "pool"
    path = pool / "svc" / "a.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return pool, path


def test_unchanged_document_comes_from_the_cache(tmp_path) -> None:
    pool, path = _doc(tmp_path, "- {name: a, path: /a}\n")
    first = ParseCache(tmp_path / "state")
    doc = first.load(path, pool, "pool/svc/a.yaml")
    assert [i.name for i in doc.interfaces] == ["a"] and first.hits == 0
    first.save()
    second = ParseCache(tmp_path / "state")
    again = second.load(path, pool, "pool/svc/a.yaml")
    assert second.hits == 1 and again == doc
    assert not again.interfaces[0].has_json  # the "no body" sentinel survives the round trip
    path.write_text("- {name: b, path: /b}\n", encoding="utf-8")  # changed content: parsed anew
    third = ParseCache(tmp_path / "state")
    assert [i.name for i in third.load(path, pool, "pool/svc/a.yaml").interfaces] == ["b"] and third.hits == 0


def test_environment_dependent_documents_are_not_cached(tmp_path, monkeypatch) -> None:
    pool, path = _doc(tmp_path, "- {name: a, url: '${BASE}/a'}\n")
    monkeypatch.setenv("BASE", "http://127.0.0.1:1")
    cache = ParseCache(tmp_path / "state")
    cache.load(path, pool, "a")
    cache.save()
    monkeypatch.setenv("BASE", "http://127.0.0.1:2")
    doc = ParseCache(tmp_path / "state").load(path, pool, "a")
    assert doc.interfaces[0].url == "http://127.0.0.1:2/a"


def test_damaged_cache_is_ignored(tmp_path) -> None:
    pool, path = _doc(tmp_path, "- {name: a, path: /a}\n")
    (tmp_path / "state").mkdir()
    (tmp_path / "state" / CACHE_FILE).write_bytes(b"not a pickle")
    cache = ParseCache(tmp_path / "state")
    assert cache.load(path, pool, "a").interfaces[0].name == "a"
    cache.save()
    assert oct((tmp_path / "state" / CACHE_FILE).stat().st_mode & 0o777) == "0o600"


def test_overrides_sidecar_is_part_of_the_key(tmp_path) -> None:
    pool, path = _doc(tmp_path, "- {name: a, path: /a}\n")
    side = path.with_name("a.apimon.yaml")
    side.write_text("allow_write: false\n", encoding="utf-8")
    first = ParseCache(tmp_path / "state")
    first.load(path, pool, "a")
    first.save()
    side.write_text("allow_write: true\n", encoding="utf-8")
    second = ParseCache(tmp_path / "state")
    second.load(path, pool, "a")
    assert second.hits == 0  # the sidecar changed: parsed anew


def test_spec_with_external_refs_follows_its_fragments(tmp_path) -> None:
    spec = "openapi: 3.0.3\ninfo: {title: t, version: '1'}\npaths:\n  /a: {$ref: 'parts/a.yaml'}\n"
    pool, path = _doc(tmp_path, spec)
    fragment = path.parent / "parts" / "a.yaml"
    fragment.parent.mkdir()
    fragment.write_text("get: {operationId: first, responses: {'200': {description: ok}}}\n", encoding="utf-8")
    first = ParseCache(tmp_path / "state")
    assert [i.name for i in first.load(path, pool, "a").interfaces] == ["first"]
    first.save()
    fragment.write_text("get: {operationId: second, responses: {'200': {description: ok}}}\n", encoding="utf-8")
    assert [i.name for i in ParseCache(tmp_path / "state").load(path, pool, "a").interfaces] == ["second"]


def test_documents_holding_credentials_are_not_cached(tmp_path) -> None:
    """Issue 12: the parse cache in the state folder never holds a copy of a document's credentials."""
    from pytest_apimon.parsecache import ParseCache

    pool = tmp_path / "pool"
    (pool / "svc").mkdir(parents=True)
    (pool / "svc" / "a.yaml").write_text("- {name: a, path: /a, headers: {X-Api-Key: lit-Key-998877}}\n")
    (pool / "svc" / "b.yaml").write_text("- {name: b, path: /b}\n")
    cache = ParseCache(tmp_path / "state")
    for name in ("a.yaml", "b.yaml"):
        cache.load(pool / "svc" / name, pool, name)
    cache.save()
    stored = b"".join(p.read_bytes() for p in (tmp_path / "state").rglob("*") if p.is_file())
    assert b"lit-Key-998877" not in stored and b"/b" in stored
