"""owner: and severity: at interface, file and service level (issue 20 req 2)."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from pytest_apimon import alerts
from pytest_apimon.config import ConfigError, load_config
from pytest_apimon.load import load_document
from pytest_apimon.ownership import Severity, parse_owners, parse_severity
from pytest_apimon.results import InterfaceResult, RunResult


def test_parsing() -> None:
    assert parse_severity("p0") is Severity.P0 and parse_severity(2) is Severity.P2
    assert parse_owners(["zhangsan", 13800001111, "138 0000 2222"]) == ("zhangsan", "13800001111", "13800002222")
    with pytest.raises(ValueError, match="P0, P1, P2"):
        parse_severity("high")
    with pytest.raises(ValueError, match="without '@'"):
        parse_owners("@zhangsan")


def test_document_levels(tmp_path: Path) -> None:
    path = tmp_path / "order" / "api.yaml"
    path.parent.mkdir()
    path.write_text(textwrap.dedent("""
        defaults: {owner: zhangsan, severity: P1}
        interfaces:
          - {name: 下单, path: /a, owner: [lisi, "13800001111"], severity: P0}
          - {name: 查询, path: /b}
          - {name: 坏的, path: /c, severity: P5}
    """), encoding="utf-8")
    doc = load_document(path, tmp_path)
    by_name = {i.name: i for i in doc.interfaces}
    assert by_name["下单"].owner == ("lisi", "13800001111") and by_name["下单"].severity == "P0"
    assert by_name["查询"].owner == ("zhangsan",) and by_name["查询"].severity == "P1"
    (error,) = doc.errors
    assert error.field == "interfaces[2].severity" and "P0, P1, P2" in error.message


def test_service_level_and_default(tmp_path: Path) -> None:
    cfg_path = tmp_path / "config.yaml"
    cfg_path.write_text("services:\n  order: {owner: wangwu, severity: P2}\nnotify: {severity: {default: P0}}\n",
                        encoding="utf-8")
    cfg = load_config(cfg_path)
    run = RunResult(0, 1, "prod", [
        InterfaceResult(nodeid="a", service="order", module="m", name="a"),
        InterfaceResult(nodeid="b", service="order", module="m", name="b", owners=["lisi"], severity="P1"),
        InterfaceResult(nodeid="c", service="member", module="m", name="c")])
    alerts.apply_ownership(run, cfg)
    assert [(r.owners, r.severity) for r in run.results] == [(["wangwu"], "P2"), (["lisi"], "P1"), ([], "P0")]
    cfg_path.write_text("services:\n  order: {severity: urgent}\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"services\.order\.severity"):
        load_config(cfg_path)


def test_shown_masks_mobiles_only() -> None:
    from pytest_apimon.ownership import shown

    assert shown("13800001111") == "138****1111"
    assert shown("+8613800001111") == "+861****1111"
    assert shown("zhangsan") == "zhangsan" and shown("1234") == "1234"
