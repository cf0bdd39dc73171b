"""The incident ledger (incidents.py) kept in the state database (state.py, schema v5): round trip per
environment, the one-off import of the incidents.json of earlier versions, and incident ids that survive
from one run to the next."""

from __future__ import annotations

import json
import logging
import re
import sqlite3
from pathlib import Path

import pytest
from fake_wecom import KEY, FakeWeCom

from pytest_apimon import state as state_mod
from pytest_apimon.incidents import LEGACY_FILE, Incident, Ledger, incident_id
from pytest_apimon.state import SCHEMA_VERSION, StateStore

LEGACY = {
    "prod": {"order/下单": {"id": "a3f9c2", "opened_at": 1_790_000_000.0, "told": ["wecom/all", "feishu/ops"]},
             "member/登录": {"id": "0b1c2d", "opened_at": 1_790_000_900.5, "told": []}},
    "staging": {"order/支付": {"id": "ffee01", "opened_at": 1_790_001_800.0, "told": ["wecom/all"]}},
}


def test_ledger_round_trip_per_environment(tmp_path: Path) -> None:
    with StateStore.in_dir(tmp_path) as store:
        ledger = Ledger("prod")
        first = ledger.opened("order/下单", 100.0)
        ledger.tell("order/下单", "wecom/all")
        ledger.opened("member/登录", 200.0)
        store.save_incidents("prod", ledger.open.values())
        store.save_incidents("staging", [Incident("abc123", "x/y", 5.0, ["dingtalk/ops"])])
    with StateStore.in_dir(tmp_path) as store:
        again = Ledger("prod", store.load_incidents("prod"))
        assert again.open["order/下单"] == first and again.told("order/下单", "wecom/all")
        assert again.opened("order/下单", 999.0).id == first.id == incident_id("prod", "order/下单", 100.0)
        again.close("member/登录")
        store.save_incidents("prod", again.open.values())  # replaces prod only
        assert [i.key for i in store.load_incidents("prod")] == ["order/下单"]
        assert store.load_incidents("staging") == [Incident("abc123", "x/y", 5.0, ["dingtalk/ops"])]
    assert not (tmp_path / LEGACY_FILE).exists()  # no ledger file besides state.db


def _v3_database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A state.db as the version before the ledger moved (schema v3), with one run in it."""
    monkeypatch.setattr(state_mod, "MIGRATIONS", state_mod.MIGRATIONS[:3])
    monkeypatch.setattr(state_mod, "SCHEMA_VERSION", 3)
    with StateStore.in_dir(tmp_path) as store:
        assert store.version == 3
        store.conn.execute("INSERT INTO meta VALUES ('prod', 'x', '1')")
    monkeypatch.undo()


def test_v3_database_imports_incidents_json_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _v3_database(tmp_path, monkeypatch)
    (tmp_path / LEGACY_FILE).write_text(json.dumps(LEGACY, ensure_ascii=False), encoding="utf-8")
    with StateStore.in_dir(tmp_path) as store:
        assert store.version == SCHEMA_VERSION
        prod = {i.key: i for i in store.load_incidents("prod")}
        assert prod == {"order/下单": Incident("a3f9c2", "order/下单", 1_790_000_000.0, ["wecom/all", "feishu/ops"]),
                        "member/登录": Incident("0b1c2d", "member/登录", 1_790_000_900.5, [])}
        assert store.load_incidents("staging") == [Incident("ffee01", "order/支付", 1_790_001_800.0, ["wecom/all"])]
    # renamed after the import: never read again, kept for the curious
    assert not (tmp_path / LEGACY_FILE).exists() and (tmp_path / (LEGACY_FILE + ".imported")).is_file()
    with StateStore.in_dir(tmp_path) as store:
        store.save_incidents("prod", [])
    # a file that reappears (an old version ran meanwhile) is not imported a second time
    (tmp_path / LEGACY_FILE).write_text(json.dumps(LEGACY), encoding="utf-8")
    with StateStore.in_dir(tmp_path) as store:
        assert store.load_incidents("prod") == []
    assert (tmp_path / LEGACY_FILE).exists()


def test_new_database_next_to_an_old_ledger_imports_it(tmp_path: Path) -> None:
    (tmp_path / LEGACY_FILE).write_text(json.dumps(LEGACY), encoding="utf-8")
    with StateStore.in_dir(tmp_path) as store:
        assert {i.id for i in store.load_incidents("prod")} == {"a3f9c2", "0b1c2d"}


@pytest.mark.parametrize("text", ["{not json", "[1, 2]", '"text"', "null"])
def test_unreadable_ledger_is_skipped_with_a_warning(tmp_path: Path, text: str,
                                                     caplog: pytest.LogCaptureFixture) -> None:
    (tmp_path / LEGACY_FILE).write_text(text, encoding="utf-8")
    caplog.set_level(logging.WARNING, logger="pytest_apimon")
    with StateStore.in_dir(tmp_path) as store:
        assert store.version == SCHEMA_VERSION and store.load_incidents("prod") == []
    if text.startswith("{"):
        assert "unreadable" in caplog.text


def test_malformed_entries_are_skipped_and_the_rest_kept(tmp_path: Path) -> None:
    data = {"prod": {"a/1": {"id": "111111", "opened_at": 1.0, "told": ["wecom/all"]},
                     "a/2": {"id": "222222"},  # no opened_at
                     "a/3": "not an object",
                     "a/4": {"id": "444444", "opened_at": "soon"},
                     "a/5": {"id": "555555", "opened_at": 5, "told": "wecom/all"}},  # told not a list
            "staging": ["not", "a", "mapping"]}
    (tmp_path / LEGACY_FILE).write_text(json.dumps(data), encoding="utf-8")
    with StateStore.in_dir(tmp_path) as store:
        assert store.load_incidents("prod") == [Incident("111111", "a/1", 1.0, ["wecom/all"]),
                                                Incident("555555", "a/5", 5.0, [])]


def test_a_failed_migration_keeps_the_json_ledger(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / LEGACY_FILE).write_text(json.dumps(LEGACY), encoding="utf-8")
    broken = [*state_mod.MIGRATIONS, ["THIS IS NOT SQL"]]
    monkeypatch.setattr(state_mod, "MIGRATIONS", broken)
    monkeypatch.setattr(state_mod, "SCHEMA_VERSION", len(broken))
    with pytest.raises(state_mod.StateError):
        StateStore.in_dir(tmp_path)
    monkeypatch.undo()
    assert (tmp_path / LEGACY_FILE).is_file()  # rolled back: imported by the next successful migration
    with StateStore.in_dir(tmp_path) as store:
        assert len(store.load_incidents("prod")) == 2
    with sqlite3.connect(tmp_path / "state.db") as conn:
        assert conn.execute("SELECT COUNT(*) FROM incidents").fetchone()[0] == 3


def test_incident_id_survives_across_runs_in_the_database(tmp_path: Path) -> None:
    """One outage over several runs (each its own process-like Memory.open) keeps one id; the ledger is in
    state.db, no incidents.json is written; after the recovery the next outage has a new id."""
    import textwrap

    from test_alert_messages import record, run_at

    from pytest_apimon.config import load_config

    with FakeWeCom(keys=[KEY]) as fake:
        path = tmp_path / "config.yaml"
        path.write_text(textwrap.dedent(f"""
            env: prod
            state: {{dir: {tmp_path / 'state'}}}
            notify:
              wecom:
                - {{name: all, webhook: {KEY}, base_url: "{fake.base_url}"}}
        """), encoding="utf-8")
        script = {0: {"order/下单"}, 6: set(), 8: {"order/下单"}, 10: set()}
        down: set[str] = set()
        for i in range(12):
            down = script.get(i, down)
            record(load_config(path), run_at(i, down))
        ids = [re.findall(r"#([0-9a-f]{6})", m.content) for m in fake.for_key(KEY) if m.msgtype == "markdown"]
        seen = [i[0] for i in ids if i]  # the first screens: NEW, reminder, RECOVERED; NEW, RECOVERED
        a, b = seen[0], seen[-1]
        assert seen == [a, a, a, b, b] and a != b  # one id per outage, across runs; the next outage is another
    assert not (tmp_path / "state" / LEGACY_FILE).exists()
    with StateStore.in_dir(tmp_path / "state") as store:
        assert store.load_incidents("prod") == []  # both outages are over
