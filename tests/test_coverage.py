"""Coverage per service: documented, monitored, skipped with reason, data-changing, documents with errors."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from pytest_apimon.coverage import coverage, render_coverage, scan, to_dict
from pytest_apimon.documents import DocumentError, DocumentFile, Interface

SPECS = Path(__file__).parent / "specs"


def itf(name: str, skip: str | None = None, kind: str | None = None, service: str = "svc") -> Interface:
    return Interface(name=name, service=service, module="m", method="POST" if kind == "write" else "GET",
                     path=f"/{name}", skip=skip, skip_kind=kind, file="pool/svc/a.json")


def test_counts_per_service() -> None:
    files = [
        DocumentFile("pool/svc/a.json", [
            itf("ok"), itf("ok2"), itf("w", "data-changing operation (POST) not monitored", "write"),
            itf("n", "path parameter id has no example — set it in apimon overrides", "no_example"),
            itf("native", "维护中"),  # a native document's skip: kind "document"
        ], [DocumentError("pool/svc/a.json", 3, "#/paths/~1x/get/parameters/0/$ref", "broken $ref", "x", 5),
            DocumentError("pool/svc/a.json", 9, "#/components", "broken $ref")]),
        DocumentFile("pool/other/b.yaml", [], [DocumentError("pool/other/b.yaml", 1, "", "invalid YAML")]),
    ]
    report = coverage(files, {"pool/svc/a.json": "svc", "pool/other/b.yaml": "other"})
    assert list(report) == ["other", "svc"]
    svc = report["svc"]
    assert (svc.documented, svc.monitored, svc.invalid, svc.write_excluded) == (6, 2, 1, 1)
    assert [(s.name, s.kind) for s in svc.skipped] == [("w", "write"), ("n", "no_example"), ("native", "document")]
    assert svc.error_files == {"pool/svc/a.json": 2}
    assert list(svc.by_kind()) == ["no_example", "write", "document"]
    other = report["other"]
    assert (other.documented, other.monitored, other.error_files) == (0, 0, {"pool/other/b.yaml": 1})
    assert json.loads(json.dumps(to_dict(report)))["svc"]["write_excluded"] == 1


def test_service_of_an_unreadable_file_without_mapping() -> None:
    report = coverage([DocumentFile("pool/billing/x.json", [], [DocumentError("pool/billing/x.json", 1, "", "bad")])])
    assert list(report) == ["billing"]


def test_render_text_and_markdown() -> None:
    files = [DocumentFile("pool/svc/a.json", [itf("get_it"), itf("w", "data-changing", "write"),
                                              itf("n", "path parameter id has no example", "no_example")])]
    report = coverage(files)
    zh = render_coverage(report)
    assert "接口覆盖率（监控盲区）" in zh
    assert "svc: 文档中 3 个接口：监控 1 个（33%），跳过 2 个，其中数据变更 1 个" in zh
    assert "缺少示例值 (1):" in zh and "    - n (GET /n): path parameter id has no example" in zh
    assert "    - w (POST /w)" in zh  # data-changing: listed without repeating the long reason
    en = render_coverage(report, "en")
    assert "svc: 3 documented: 1 monitored (33%), 2 skipped of which 1 data-changing" in en
    md = render_coverage(report, "en", markdown=True)
    assert md.startswith("## Monitoring coverage (blind spots)\n")
    assert "| svc | 3 | 1 (33%) | 2 | 1 | 0 |" in md and "### svc" in md
    assert render_coverage({}, "en").endswith("no interface documents")


def test_long_lists_are_cut() -> None:
    files = [DocumentFile("a", [itf(f"n{i}", "no example", "no_example") for i in range(40)])]
    assert "……另有 10 个" in render_coverage(coverage(files))


def test_scan_pools(tmp_path: Path) -> None:
    pool = tmp_path / "pool"
    (pool / "pets").mkdir(parents=True)
    (pool / "lib").mkdir()
    (pool / ".hidden").mkdir()
    shutil.copy(SPECS / "petstore-swagger2.json", pool / "pets" / "petstore.json")
    (pool / "pets" / "petstore.apimon.yaml").write_text("operations:\n  getOrderById: {params: {orderId: 1}}\n")
    shutil.copy(SPECS / "library-openapi31.json", pool / "lib" / "library.json")
    (pool / "lib" / "health.yaml").write_text("name: health\npath: /health\n")
    (pool / ".hidden" / "x.yaml").write_text("name: x\npath: /x\n")
    (pool / "broken.json").write_text("{")
    found = scan([pool], rootdir=tmp_path, environ={})
    assert sorted(found.services.items()) == [("pool/broken.json", "broken"), ("pool/lib/health.yaml", "lib"),
                                              ("pool/lib/library.json", "lib"), ("pool/pets/petstore.json", "pets")]
    report = coverage(found.files, found.services)
    pets = report["pets"]
    assert (pets.documented, pets.monitored, pets.write_excluded) == (8, 4, 3)
    assert [s.name for s in pets.skipped if s.kind == "no_example"] == ["loginUser"]
    lib = report["lib"]
    assert (lib.documented, lib.monitored, lib.invalid) == (7, 5, 1)
    assert lib.error_files == {"pool/lib/library.json": 2}
    assert report["broken"].error_files == {"pool/broken.json": 1}


def test_scan_skips_spec_fragments_and_environment_files(tmp_path: Path) -> None:
    pool = tmp_path / "pool"
    shutil.copytree(SPECS / "vendor-split", pool / "billing")
    (pool / "nm").mkdir()
    (pool / "nm" / "c.json").write_text('{"info": {"_postman_id": "1", "name": "c"}, "item": []}')
    (pool / "nm" / "c.apimon.yaml").write_text("environment: env/staging.json\n")
    (pool / "nm" / "env").mkdir()
    (pool / "nm" / "env" / "staging.json").write_text('{"name": "staging", "values": [{"key": "a", "value": "1"}]}')
    found = scan([pool], rootdir=tmp_path, environ={})
    report = coverage(found.files, found.services)
    assert report["billing"].error_files == {"pool/billing/billing-openapi.yaml": 2}  # remote + escaping $ref
    assert report["billing"].documented == 8
    assert "nm" not in report or report["nm"].error_files == {}
