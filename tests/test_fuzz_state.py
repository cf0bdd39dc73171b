"""Property-based test (hypothesis): a state folder left by an earlier run whose files are damaged — cut short,
bytes flipped, replaced by other bytes, emptied, or turned into a folder — never crashes the next run, never
leaves it without its report, and never hides an interface: every interface is still checked and reported.

The first run (a real pytest run of the plugin, a local service with a login, a fake WeCom robot) leaves a
state folder with the SQLite history (and its WAL), the parse cache pickle, the token cache and the robot
outbox; each example damages one of its files and runs again. The runs are real pytest runs (pytester), so the
CI default is a handful of examples; `APIMON_FUZZ_EXAMPLES=200 pytest -p no:apimon tests/test_fuzz_state.py`
hunts longer.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from fake_wecom import KEY, FakeWeCom
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from localserver import LocalServer, Response
from test_plugin import write

pytestmark = pytest.mark.integration

FUZZ = settings(max_examples=int(os.environ.get("APIMON_FUZZ_EXAMPLES", "6")), deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])


def workspace(pytester: pytest.Pytester, srv: LocalServer, wecom_url: str) -> None:
    srv.route("POST", "/svc/login", lambda r: {"token": "tok-" + "s3cr3t" * 3, "expires_in": 3600})
    srv.route("GET", "/svc/orders", lambda r: {"ok": True})
    srv.route("GET", "/svc/health", lambda r: Response(500, {}, "down"))
    write(pytester.path, "config.yaml", f"""
        defaults:
          retries: 0
        services:
          svc:
            base_url: {srv.url}/svc
            auth: {{type: login, path: /login, json: {{username: u, password: p}}, token_path: token,
                    expires_in_path: expires_in}}
        notify:
          send_on: always
          wecom:
            - name: ops
              webhook: {KEY}
              base_url: {wecom_url}
    """)
    write(pytester.path, "pool/svc/api.yaml", """
        - {name: 订单查询, path: /orders}
        - {name: health, path: /health}
    """)


def state_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and not p.name.endswith(".lock"))


damage = st.sampled_from(["cut", "flip", "replace", "empty", "folder", "json"])


def check_run(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest("--apimon", "pool", "--apimon-json", "r.json", "--apimon-report", "r.md")
    result.assert_outcomes(passed=1, failed=1)
    records = json.loads((pytester.path / "r.json").read_text("utf-8"))["results"]
    assert sorted(r["name"] for r in records) == ["health", "订单查询"]
    assert "health" in (pytester.path / "r.md").read_text("utf-8")
    assert "INTERNALERROR" not in result.stdout.str() + result.stderr.str()


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("pristine")


# The state folder's files (statedir.py, state.py, parsecache.py, tokencache.py, runlock.py, notify/outbox.py);
# those a healthy run does not leave (the WAL, an outbox entry, the dropped counter) are created damaged.
TARGETS = ["state.db", "parse-cache.pickle", "tokens.json", "apimon.log", ".gitignore", "run.lock",
           "state.db-wal", "state.db-shm", "outbox/00000000000000000001-0001-wecom-ops-abcdef.json",
           "outbox/_dropped.json"]


@FUZZ
@given(which=st.sampled_from(TARGETS), how=damage, where=st.floats(0, 1), noise=st.binary(min_size=1, max_size=64))
# Found by the first hunt (30 examples): a folder where state.db should be made sqlite3.connect raise outside
# StateStore's error handling: INTERNALERROR, no interface checked, no report.
@example(which="state.db", how="folder", where=0.0, noise=b"\x00")
def test_a_damaged_state_folder_still_checks_and_reports_everything(
        pytester: pytest.Pytester, local_server: LocalServer, pristine: Path,
        which: str, how: str, where: float, noise: bytes) -> None:
    with FakeWeCom() as fake:
        state = pytester.path / ".apimon"
        if not (pristine / "state").is_dir():  # the first example: one healthy run leaves the folder
            workspace(pytester, local_server, fake.base_url)
            check_run(pytester)
            shutil.copytree(state, pristine / "state")
        workspace(pytester, local_server, fake.base_url)
        shutil.rmtree(state, ignore_errors=True)
        shutil.copytree(pristine / "state", state)
        assert {p.name for p in state_files(state)} >= {"state.db", "parse-cache.pickle", "tokens.json"}
        target = state / which
        target.parent.mkdir(parents=True, exist_ok=True)
        data = target.read_bytes() if target.is_file() else noise
        at = int(where * len(data))
        if how == "cut":
            target.write_bytes(data[:at])
        elif how == "flip":
            target.write_bytes(data[:at] + bytes(b ^ 0xFF for b in noise) + data[at + len(noise):])
        elif how == "replace":
            target.write_bytes(noise)
        elif how == "empty":
            target.write_bytes(b"")
        elif how == "json":
            target.write_text(json.dumps([None, {"x": 1}, "x"][len(noise) % 3]), "utf-8")
        else:
            target.unlink(missing_ok=True)
            target.mkdir()
        check_run(pytester)
