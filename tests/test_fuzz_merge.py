"""Property-based tests (hypothesis) for `apimon merge`: any shard results file — type-confused, truncated,
hand-edited, foreign JSON, any bytes — gives an exit code and every report file, never a crash; it never hides
the interfaces of the other, intact shard; and a file the merge cannot use is named with its field path.

Each example builds a real 2-way split: shard 1/2's file is what `--apimon-shard 1/2` writes
(merge.shard_document), shard 2/2's is mutated, and merge.finish does the end of the run in a temp folder
(state, Markdown, JSON, JUnit). The corpus of files that once crashed the merge is tests/crashers/shards/.
`APIMON_FUZZ_EXAMPLES=2000 pytest -p no:apimon tests/test_fuzz_merge.py` hunts longer.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pytest_apimon.config import load_config
from pytest_apimon.merge import Outputs, finish, shard_document
from pytest_apimon.redact import Redactor
from pytest_apimon.results import InterfaceResult, RunResult, record_problem
from pytest_apimon.sharding import Shard

CRASHERS = Path(__file__).parent / "crashers" / "shards"
FUZZ = settings(max_examples=int(os.environ.get("APIMON_FUZZ_EXAMPLES", "60")), deadline=None,
                suppress_health_check=[HealthCheck.too_slow])
T0 = 1_790_000_000.0
PLAN = [("pool/a/api.json::a-0", "a", "api", "a-0", 1), ("pool/a/api.json::a-1", "a", "api", "a-1", 1),
        ("pool/b/api.json::b-0", "b", "api", "b-0", 2), ("pool/b/api.json::b-1", "b", "api", "b-1", 2)]


def shard_text(k: int, *, failing: bool = False) -> str:
    results = [InterfaceResult(nodeid, svc, module, name, method="GET", url=f"http://127.0.0.1:9/{name}",
                               outcome="failed" if failing else "passed",
                               category="server_error" if failing else None, reason="HTTP 500" if failing else "",
                               status=500 if failing else 200, elapsed_ms=5.0, started_at=T0, tags=["smoke"],
                               certificates={"https://x.example": T0 + 86400})
               for nodeid, svc, module, name, index in PLAN if index == k]
    return shard_document(RunResult(T0, T0 + 1, "prod", results), Shard(k, 2), selection_complete=True,
                          redactor=Redactor(), plan=PLAN)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**64), 2**64) | st.floats(allow_nan=True)
    | st.sampled_from(["", "passed", "failed", "skipped", "server_error", "nope", "1/2", "2/2", "0/0", "3/2",
                       "prod", "\ud800", "x" * 200, "2026-01-01T00:00:00+00:00", "1e400"]) | st.text(max_size=8),
    lambda kids: st.lists(kids, max_size=3) | st.dictionaries(st.text(max_size=6), kids, max_size=3),
    max_leaves=10)
FIELDS = sorted(InterfaceResult.__dataclass_fields__)
TOP = ["shard", "env", "results", "plan", "selection_complete", "started_at_epoch", "finished_at_epoch", "stats"]


@st.composite
def mutated_shard(draw: st.DrawFn) -> bytes:
    """Shard 2/2's results file, mutated: fields of records or of the envelope replaced by any JSON value or
    removed, then maybe cut short or replaced by any bytes."""
    doc: dict[str, Any] = json.loads(shard_text(2, failing=draw(st.booleans())))
    for _ in range(draw(st.integers(0, 4))):
        where = draw(st.sampled_from(["record", "top", "plan"]))
        if where == "record" and isinstance(doc.get("results"), list) and doc["results"]:
            record = doc["results"][draw(st.integers(0, len(doc["results"]) - 1))]
            if isinstance(record, dict):
                key = draw(st.sampled_from(FIELDS))
                if draw(st.booleans()):
                    record[key] = draw(json_values)
                else:
                    record.pop(key, None)
            else:
                doc["results"].append(draw(json_values))
        elif where == "plan" and isinstance(doc.get("plan"), list) and doc["plan"]:
            row = doc["plan"][draw(st.integers(0, len(doc["plan"]) - 1))]
            if isinstance(row, list) and row:
                row[draw(st.integers(0, len(row) - 1))] = draw(json_values)
        else:
            key = draw(st.sampled_from(TOP))
            if draw(st.booleans()):
                doc[key] = draw(json_values)
            else:
                doc.pop(key, None)
    text = json.dumps(doc, ensure_ascii=draw(st.booleans()), allow_nan=True).encode("utf-8", "surrogatepass")
    how = draw(st.sampled_from(["whole", "whole", "whole", "cut", "bytes"]))
    if how == "cut":
        return text[:draw(st.integers(0, len(text)))]
    if how == "bytes":
        return draw(st.binary(max_size=200))
    return text


def run_merge(folder: Path, second: bytes) -> tuple[int, list[str], list[str]]:
    """merge.finish over shard 1/2 (intact) and `second` (as shard 2/2's file) in `folder`."""
    (folder / "config.yaml").write_text("env: prod\n", "utf-8")
    (folder / "results-1.json").write_text(shard_text(1), "utf-8")
    (folder / "results-2.json").write_bytes(second)
    out: list[str] = []
    err: list[str] = []
    code = finish([folder / "results-1.json", folder / "results-2.json"], load_config(folder / "config.yaml"),
                  lang="en", outputs=Outputs(report="report.md", json="out.json", junitxml="junit.xml"),
                  echo=out.append, echo_err=err.append, cwd=folder)
    return code, out, err


def check_merge(folder: Path, second: bytes) -> None:
    code, out, err = run_merge(folder, second)
    assert code in (0, 1, 2, 4)
    for name in ("report.md", "out.json", "junit.xml"):
        assert (folder / name).is_file(), name
    seen = {r["nodeid"] for r in json.loads((folder / "out.json").read_text("utf-8"))["results"]}
    # Shard 1's interfaces are never hidden by what happened to shard 2's file; shard 2's are either its
    # records or listed as not checked (from shard 1's plan).
    assert {row[0] for row in PLAN} <= seen
    if code == 4:
        assert err and all("results-2.json" in line for line in err)
    failed = [line for line in out if "remembering or notifying the run failed" in line]
    assert not failed, failed  # merge.finish_failed: the end of the run raised


@FUZZ
@given(second=mutated_shard())
def test_any_second_shard_file_gives_every_report_and_hides_nothing(second: bytes) -> None:
    with tempfile.TemporaryDirectory() as folder:
        check_merge(Path(folder), second)


@FUZZ
@given(record=st.dictionaries(st.sampled_from(FIELDS), json_values, max_size=8))
def test_a_record_that_passes_the_check_renders_everywhere(record: dict[str, Any]) -> None:
    """results.record_problem is exact enough: a record it accepts never crashes from_dict or a report."""
    from pytest_apimon.merge import render_junit
    from pytest_apimon.report import render_json, render_markdown, render_terminal

    record = {"nodeid": "n", "service": "s", "module": "m", "name": "x", **record}
    if record_problem(record) is not None:
        return
    run = RunResult(T0, T0 + 1, "prod", [InterfaceResult.from_dict(record)])
    for lang in ("zh", "en"):
        render_terminal(run, lang, redactor=Redactor())
        render_markdown(run, lang, "t", redactor=Redactor())
        render_junit(run, Redactor(), lang=lang)
    render_json(run, redactor=Redactor())


def _corpus() -> list[Path]:
    return sorted(CRASHERS.iterdir()) if CRASHERS.is_dir() else []


@pytest.mark.parametrize("path", _corpus(), ids=lambda p: p.name)
def test_shard_crashers(tmp_path: Path, path: Path) -> None:
    """Every file here once crashed `apimon merge` (no report written); each must now be named unusable."""
    check_merge(tmp_path, path.read_bytes())
    code, _, err = run_merge(tmp_path, path.read_bytes())
    assert code == 4 and err


@pytest.mark.parametrize("change", [{"env": "staging"}, {"shard": "2/3"}, {"env": None}],
                         ids=["other-env", "other-split", "no-env"])
def test_a_stray_file_does_not_hide_the_other_shards(tmp_path: Path, change: dict[str, Any]) -> None:
    """Found by test_any_second_shard_file_gives_every_report_and_hides_nothing: one file from another
    environment or split (or without `env`) made the merge drop every file, so the report listed no interface.
    Now the files that agree (the merge's own env on a tie) are merged and only the stray one is unusable."""
    doc = json.loads(shard_text(2))
    for key, value in change.items():
        if value is None:
            doc.pop(key)
        else:
            doc[key] = value
    code, _, err = run_merge(tmp_path, json.dumps(doc).encode())
    assert code == 4
    assert len(err) == 1 and "results-2.json" in err[0] and "not used" in err[0]
    records = {r["nodeid"]: r for r in json.loads((tmp_path / "out.json").read_text("utf-8"))["results"]}
    assert {records[row[0]]["outcome"] for row in PLAN if row[4] == 1} == {"passed"}
    assert all(records[row[0]]["outcome"] == "skipped" and "not checked" in records[row[0]]["reason"]
               for row in PLAN if row[4] == 2)


def test_a_shard_file_without_its_planned_records_does_not_hide_them(tmp_path: Path) -> None:
    """Found by the same property (2000 examples, a random seed): shard 2's file said `selection_complete`
    and had `"results": []`; the merge counted shard 2 as present, so its two interfaces were in no report.
    Now they are listed as not checked (skipped, `unchecked`), named, and the merge exits 2."""
    doc = json.loads(shard_text(2))
    doc["results"] = doc["results"][:1]
    code, out, err = run_merge(tmp_path, json.dumps(doc).encode())
    assert code == 2 and not err
    records = {r["nodeid"]: r for r in json.loads((tmp_path / "out.json").read_text("utf-8"))["results"]}
    assert records["pool/b/api.json::b-0"]["outcome"] == "passed"
    lost = records["pool/b/api.json::b-1"]
    assert lost["outcome"] == "skipped" and lost["unchecked"] and "has no record of it" in lost["reason"]
    assert any("lacks 1 interface(s) of its plan" in line for line in out)
    doc["selection_complete"] = False  # a -k subset: what it left out was not selected, not lost
    assert run_merge(tmp_path, json.dumps(doc).encode())[0] == 0


@pytest.mark.parametrize("order", ["owner-first", "owner-last"])
def test_a_shard_file_with_another_shards_records_never_hides_their_failure(tmp_path: Path, order: str) -> None:
    """Found by the red team (a hand-built shard file): shard 2's file also held shard 1's interfaces, as
    passed, while shard 1's own file had them failed. The file given last won, so the merge said 100 % passed
    and exited 0 while shard 1's interfaces were down. The plan names the shard that checked each interface:
    its record is used, whichever order the files come in, and the file holding the other shard's records is
    named."""
    (tmp_path / "config.yaml").write_text("env: prod\n", "utf-8")
    (tmp_path / "results-1.json").write_text(shard_text(1, failing=True), "utf-8")
    doc = json.loads(shard_text(2))
    foreign = json.loads(shard_text(1))["results"]  # the same interfaces, passed
    doc["results"] += foreign
    (tmp_path / "results-2.json").write_text(json.dumps(doc), "utf-8")
    paths = [tmp_path / "results-1.json", tmp_path / "results-2.json"]
    out: list[str] = []
    code = finish(paths if order == "owner-first" else paths[::-1], load_config(tmp_path / "config.yaml"),
                  lang="en", outputs=Outputs(json="out.json"), echo=out.append, echo_err=out.append, cwd=tmp_path)
    records = {r["nodeid"]: r for r in json.loads((tmp_path / "out.json").read_text("utf-8"))["results"]}
    assert [records[row[0]]["outcome"] for row in PLAN if row[4] == 1] == ["failed", "failed"]
    assert code == 1
    assert any("results-2.json" in line and "shard 1/2" in line for line in out), out


@pytest.mark.parametrize("shard", ["0/2", "1/0", "3/2"])
def test_a_bad_shard_field_is_named_in_chinese(tmp_path: Path, shard: str) -> None:
    """Found by the red team: in a zh merge the reason for a bad `shard` field stayed English
    ("字段 'shard'：expected K/N with 1 ≤ K ≤ N (e.g. 2/3), got '0/2'")."""
    doc = json.loads(shard_text(2))
    doc["shard"] = shard
    (tmp_path / "config.yaml").write_text("env: prod\n", "utf-8")
    (tmp_path / "results-1.json").write_text(shard_text(1), "utf-8")
    (tmp_path / "results-2.json").write_text(json.dumps(doc), "utf-8")
    err: list[str] = []
    code = finish([tmp_path / "results-1.json", tmp_path / "results-2.json"], load_config(tmp_path / "config.yaml"),
                  lang="zh", outputs=Outputs(), echo=lambda _: None, echo_err=err.append, cwd=tmp_path)
    assert code == 4
    assert err and all("results-2.json" in line and "expected" not in line and "应为 K/N" in line for line in err)
