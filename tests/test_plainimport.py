"""Issue 15 (first request within 0.5 s): pytest does not compile this package again in every process.

Installed from a wheel, the package is a plain folder on sys.path, and pytest marks every module of a `pytest11`
distribution for assertion rewriting. Where no bytecode is written (PYTHONDONTWRITEBYTECODE=1, a read-only
install) pytest then parsed and compiled all of it on every run and in every xdist worker: the first request came
0.68 s after the command started instead of 0.39 s (docs/benchmarks.md, seventh pass). The test suite's own
editable install hides this (pytest's hook cannot find a module that the editable finder maps), so the
subprocess test below imports a copy of the package from a folder on PYTHONPATH, as a wheel install would.
"""

from __future__ import annotations

import importlib.machinery
import json
import shutil
import sys
from pathlib import Path

import pytest
from localserver import LocalServer

import pytest_apimon
from pytest_apimon import plainimport
from pytest_apimon.plainimport import PlainImport, install


class FakeRewriteHook:
    """Stands for pytest's AssertionRewritingHook: a meta path finder with `mark_rewrite`."""

    def find_spec(self, fullname: str, path: object, target: object = None) -> None:
        return None

    def mark_rewrite(self, *names: str) -> None:
        pass


class UsersHook:
    """A user's own import hook, ahead of pytest's."""

    def find_spec(self, fullname: str, path: object, target: object = None) -> None:
        return None


@pytest.fixture
def meta_path(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    finders = [f for f in sys.meta_path if not isinstance(f, PlainImport)]
    monkeypatch.setattr(sys, "meta_path", finders)
    return finders


def kinds(finders: list[object]) -> list[str]:
    return [type(f).__name__ for f in finders]


def test_not_installed_without_a_rewriting_hook(meta_path: list[object]) -> None:
    meta_path[:] = [f for f in meta_path if not plainimport._is_rewrite_hook(f)]
    before = list(meta_path)
    assert install("pkg") is False
    assert sys.meta_path == before


def test_installed_once_just_ahead_of_the_hook(meta_path: list[object]) -> None:
    meta_path[:] = [f for f in meta_path if not plainimport._is_rewrite_hook(f)]
    meta_path.insert(0, UsersHook())
    meta_path.insert(1, FakeRewriteHook())
    assert install("pkg") and install("pkg")
    assert kinds(sys.meta_path)[:3] == ["UsersHook", "PlainImport", "FakeRewriteHook"]
    assert sum(isinstance(f, PlainImport) for f in sys.meta_path) == 1


def test_moves_ahead_of_a_newer_hook(meta_path: list[object]) -> None:
    # A second pytest.main in one process puts its own hook at the front.
    meta_path[:] = [f for f in meta_path if not plainimport._is_rewrite_hook(f)]
    meta_path.insert(0, FakeRewriteHook())
    install("pkg")
    meta_path.insert(0, FakeRewriteHook())
    install("pkg")
    assert kinds(sys.meta_path)[:3] == ["PlainImport", "FakeRewriteHook", "FakeRewriteHook"]
    assert sum(isinstance(f, PlainImport) for f in sys.meta_path) == 1


def test_answers_only_for_the_packages_submodules() -> None:
    finder = PlainImport("pytest_apimon")
    path = list(pytest_apimon.__path__)
    spec = finder.find_spec("pytest_apimon.redact", path)
    assert spec is not None and isinstance(spec.loader, importlib.machinery.SourceFileLoader)
    assert Path(spec.origin or "").name == "redact.py"
    assert finder.find_spec("pytest_apimon", None) is None  # the package itself: top level, path None
    assert finder.find_spec("pytest_apimonx.redact", path) is None
    assert finder.find_spec("json.decoder", path) is None
    assert finder.find_spec("pytest_apimon.no_such_module", path) is None


RECORDER = """
import json
import sys


def pytest_unconfigure(config):
    loaders = {name: type(getattr(mod, "__loader__", None)).__name__
               for name, mod in list(sys.modules.items()) if name.split(".")[0] == "pytest_apimon"}
    who = getattr(config, "workerinput", {}).get("workerid", "controller")
    (config.rootpath / f"loaders-{who}.json").write_text(
        json.dumps({"loaders": loaders, "file": sys.modules["pytest_apimon"].__file__}), encoding="utf-8")
"""


def installed_copy(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, local_server: LocalServer) -> Path:
    """A copy of the package on PYTHONPATH (as a wheel installs it), a pool of two interfaces and the recorder;
    returns the copy's site folder."""
    local_server.route("GET", "/ok", lambda r: {"ok": True})
    site = pytester.path / "site"
    shutil.copytree(Path(pytest_apimon.__file__).parent, site / "pytest_apimon",
                    ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setenv("PYTHONPATH", str(site))
    monkeypatch.setenv("PYTHONDONTWRITEBYTECODE", "1")
    pytester.makeconftest(RECORDER)
    (pytester.path / "config.yaml").write_text(f"services:\n  shop:\n    base_url: {local_server.url}\n",
                                              encoding="utf-8")
    (pytester.path / "pool" / "shop").mkdir(parents=True)
    (pytester.path / "pool" / "shop" / "api.yaml").write_text(
        "interfaces:\n  - {name: ok, path: /ok, expect: {status: 200}}\n  - {name: ok2, path: /ok}\n",
        encoding="utf-8")
    return site


ARGS = ["--apimon", "pool", "--apimon-config", "config.yaml", "-p", "no:cacheprovider"]


def assert_rewritten(pytester: pytest.Pytester, site: Path, files: list[str], expected: list[str]) -> None:
    found_files = sorted(pytester.path.glob("loaders-*.json"))
    assert [f.name for f in found_files] == files
    for file in found_files:
        found = json.loads(file.read_text(encoding="utf-8"))
        assert Path(found["file"]).parent == site / "pytest_apimon"  # the copy, found on sys.path
        rewritten = sorted(name for name, loader in found["loaders"].items() if loader == "AssertionRewritingHook")
        assert rewritten == expected, file.name
        assert found["loaders"]["pytest_apimon.runstate"] == "SourceFileLoader"
        assert found["loaders"]["pytest_apimon.redact"] == "SourceFileLoader"


@pytest.mark.parametrize("xdist", [False, True], ids=["inprocess", "n2"])
def test_an_installed_copy_is_not_rewritten(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch,
                                            local_server: LocalServer, xdist: bool) -> None:
    site = installed_copy(pytester, monkeypatch, local_server)
    result = pytester.runpytest_subprocess(*ARGS, *(["-n", "2"] if xdist else []))
    assert result.ret == 0, result.stdout.str()
    assert local_server.count("/ok") == 2
    files = ["loaders-controller.json"] + (["loaders-gw0.json", "loaders-gw1.json"] if xdist else [])
    # Only what runs before the finder is in place: the package's __init__ and the module defining it.
    assert_rewritten(pytester, site, files, ["pytest_apimon", "pytest_apimon.plainimport"])


def test_not_rewritten_when_imported_before_pytest(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch,
                                                   local_server: LocalServer) -> None:
    # A custom runner imports the public API first, then starts pytest: the package's __init__ ran before pytest's
    # hook existed (no finder installed), and pytest then imports the plugin and the conftest's imports through its
    # hook. Found by the red team: plugin, stash, streams, redact were rewritten.
    site = installed_copy(pytester, monkeypatch, local_server)
    pytester.makeconftest(RECORDER + "\nfrom pytest_apimon import redact  # a conftest importing the package\n")
    code = "import sys, pytest_apimon, pytest; sys.exit(pytest.main(sys.argv[1:]))"
    result = pytester.run(sys.executable, "-c", code, *ARGS)
    assert result.ret == 0, result.stdout.str()
    assert local_server.count("/ok") == 2
    # Only the module pytest imports first, by its entry point: the finder is installed as its first statement.
    assert_rewritten(pytester, site, ["loaders-controller.json"], ["pytest_apimon.plugin"])
