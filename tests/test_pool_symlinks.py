"""Pools reached through symlinks (issue 19.5): the path the user wrote names the node ids and services."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from localserver import LocalServer
from test_plugin import write


def shared_layout(pytester: pytest.Pytester, srv: LocalServer, *, configured: bool = True) -> None:
    """pool/shop -> ../shared/shop (a directory link); pool/user is a plain folder."""
    srv.route("GET", "/shop/orders", lambda r: {"ok": True})
    srv.route("GET", "/shop/items", lambda r: {"ok": True})
    srv.route("GET", "/user/me", lambda r: {"ok": True})
    services = (f"services:\n  shop: {{base_url: '{srv.url}/shop'}}\n  user: {{base_url: '{srv.url}/user'}}\n"
                if configured else "")
    write(pytester.path, "config.yaml", "defaults: {retries: 0}\n" + services)
    write(pytester.path, "shared/shop/orders.yaml", "- {name: orders, path: /orders}\n- {name: items, path: /items}\n")
    write(pytester.path, "pool/user/me.yaml", "- {name: me, path: /me}\n")
    (pytester.path / "pool/shop").symlink_to(Path("../shared/shop"), target_is_directory=True)


def records(pytester: pytest.Pytester) -> dict[str, dict]:
    data = json.loads((pytester.path / "out/r.json").read_text(encoding="utf-8"))["results"]
    return {r["name"]: r for r in data}


@pytest.mark.parametrize(("target", "extra"), [
    ("pool", []), ("pool/shop", []), ("pool/shop/", []), ("pool/shop/orders.yaml", []),
    *[pytest.param(t, ["-n", "2"], id=f"{t}-xdist") for t in ("pool/shop", "pool/shop/orders.yaml")],
])
def test_pool_reached_through_a_directory_link(pytester: pytest.Pytester, local_server: LocalServer,
                                               target: str, extra: list[str]) -> None:
    shared_layout(pytester, local_server)
    result = pytester.runpytest("--apimon", target, "--apimon-json", "out/r.json", "-v", *extra)
    expected = 3 if target == "pool" else 2
    result.assert_outcomes(passed=expected)
    got = records(pytester)
    assert got["orders"]["service"] == "shop" and got["orders"]["module"] == "orders"
    # node ids keep the path the user wrote, not the link's target
    assert got["orders"]["nodeid"].startswith("pool/shop/orders.yaml::")
    assert "shared/" not in result.stdout.str()


def test_pool_root_itself_is_a_link(pytester: pytest.Pytester, local_server: LocalServer) -> None:
    shared_layout(pytester, local_server)
    (pytester.path / "monitor").symlink_to(Path("pool"), target_is_directory=True)
    result = pytester.runpytest("--apimon", "monitor/shop", "--apimon-json", "out/r.json")
    result.assert_outcomes(passed=2)
    assert records(pytester)["items"]["nodeid"].startswith("monitor/shop/orders.yaml::")


def test_document_link_and_absolute_path(pytester: pytest.Pytester, local_server: LocalServer) -> None:
    shared_layout(pytester, local_server)
    # a single file link inside a plain service folder, given by its absolute path
    (pytester.path / "pool/user/orders-copy.yaml").symlink_to(pytester.path / "shared/shop/orders.yaml")
    local_server.route("GET", "/user/orders", lambda r: {"ok": True})
    local_server.route("GET", "/user/items", lambda r: {"ok": True})
    doc = pytester.path / "pool/user/orders-copy.yaml"
    result = pytester.runpytest("--apimon", str(doc), "--apimon-json", "out/r.json")
    result.assert_outcomes(passed=2)
    got = records(pytester)
    assert got["orders"]["service"] == "user" and got["orders"]["module"] == "orders-copy"


def test_unconfigured_service_through_a_link_keeps_the_link_name(pytester: pytest.Pytester,
                                                                  local_server: LocalServer) -> None:
    shared_layout(pytester, local_server, configured=False)
    (pytester.path / "pool/shop").unlink()
    (pytester.path / "pool/store").symlink_to(Path("../shared/shop"), target_is_directory=True)
    write(pytester.path, "shared/shop/orders.yaml",
          f"- {{name: orders, url: '{local_server.url}/shop/orders'}}\n")
    result = pytester.runpytest("--apimon", "pool", "--apimon-json", "out/r.json")
    result.assert_outcomes(passed=1, failed=1)  # pool/user/me.yaml has no base URL: invalid_document
    assert records(pytester)["orders"]["service"] == "store"


def test_coverage_follows_the_link(pytester: pytest.Pytester, local_server: LocalServer) -> None:
    shared_layout(pytester, local_server)
    (pytester.path / "pool/user/loop").symlink_to(Path(".."), target_is_directory=True)  # skipped, not walked
    result = pytester.runpytest("--apimon", "pool", "--apimon-coverage", "--apimon-lang", "en")
    result.assert_outcomes(passed=3)
    text = result.stdout.str()
    section = text[text.index("pytest-apimon: coverage"):]
    assert "shop" in section and "user" in section


@pytest.mark.parametrize("linked", [False, True], ids=["plain", "linked"])
def test_split_spec_in_a_linked_service(pytester: pytest.Pytester, local_server: LocalServer, linked: bool) -> None:
    """External $refs of a spec in `pool/billing -> ../shared/billing` stay inside the pool, and its fragment files
    are fragments, not broken documents: the same results as the same files in a plain folder."""
    import shutil

    specs = Path(__file__).parent / "specs" / "vendor-split"
    folder = pytester.path / ("shared" if linked else "pool") / "billing"
    shutil.copytree(specs, folder)
    write(pytester.path, "outside-the-pool.yaml", "operationId: stolen\nresponses: {'200': {description: x}}\n")
    if linked:
        (pytester.path / "pool").mkdir()
        (pytester.path / "pool/billing").symlink_to(Path("../shared/billing"), target_is_directory=True)
    write(pytester.path, "config.yaml",
          f"defaults: {{retries: 0}}\nservices:\n  billing: {{base_url: '{local_server.url}/v1'}}\n")
    pytester.runpytest("--apimon", "pool", "--apimon-json", "out/r.json")
    got = sorted((r["name"], r["category"]) for r in records(pytester).values())
    assert ("getAccount", "not_found") in got and ("listAccounts", "not_found") in got
    assert [name for name, category in got if category == "invalid_document"] == ["GET /exports", "GET /usage"]


@pytest.mark.parametrize("extra", [[], ["-n", "2"]], ids=["serial", "xdist"])
def test_unreadable_document_entries_are_invalid_documents_not_hidden(pytester: pytest.Pytester,
                                                                      local_server: LocalServer,
                                                                      extra: list[str]) -> None:
    """A broken symlink, a symlink loop and a FIFO named like documents each fail as invalid_document naming
    why (pytest's own directory walk skips them, which left the run "all passed")."""
    shared_layout(pytester, local_server)
    user = pytester.path / "pool/user"
    (user / "gone.yaml").symlink_to("/nonexistent-apimon-target")
    (user / "loop.yml").symlink_to("loop.yml")
    os.mkfifo(user / "pipe.json")
    (user / "notes.txt").symlink_to("/nonexistent-apimon-target")  # not document-named: still ignored
    result = pytester.runpytest("--apimon", "pool", "--apimon-json", "out/r.json", *extra)
    result.assert_outcomes(passed=3, failed=3)
    data = json.loads((pytester.path / "out/r.json").read_text(encoding="utf-8"))["results"]
    reasons = {r["nodeid"].split("::")[0]: r for r in data if r["outcome"] != "passed"}
    assert set(reasons) == {"pool/user/gone.yaml", "pool/user/loop.yml", "pool/user/pipe.json"}
    assert all(r["category"] == "invalid_document" for r in reasons.values())
    text = result.stdout.str()
    # in the report language (zh by default, issue 20)
    assert "符号链接指向的 /nonexistent-apimon-target 不存在" in text
    assert "符号链接循环" in text
    assert "不是普通文件" in text
