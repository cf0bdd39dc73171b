"""`apimon merge results-*.json`: one run out of the results of `--apimon-shard K/N` runs on several machines.

Plain Python (no pytest import). A shard run (plugin option `--apimon-shard K/N`) checks its share of the pool
and writes only its results file (`shard_document`): no notification, no state update, no report files, so the
alert policy sees the whole run once. This module reads the N shard files back and does the end of a run
once: remember the run (state folder), notify (WeCom…), write the Markdown/JSON/status page/Prometheus
files and one JUnit XML file.

A shard that is missing (its machine died, its job was cancelled) is never taken for "all passed": the merge
says which shards are missing, treats the selection as incomplete (interfaces it did not see are not
"removed" from the state), tells the robots (policy.shard_step: when the set of missing shards changes, then
as reminders, and when they are back) and exits 2 — also when no shard file arrived at all. A file that
arrived but cannot be used (corrupt JSON, not a shard file, another split) counts as its shard missing, is
named in the report and the message, and makes the merge exit 4.
"""

from __future__ import annotations

import glob
import json
import platform
import re
import sys
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

from .categories import Outcome
from .config import Config
from .errors import ApimonError
from .messages import localize, say
from .policy import ShardReport
from .redact import Redactor
from .report import headline, reason_text, render_json
from .results import EPOCH_MAX, InterfaceResult, RunResult, finite_number, record_problem
from .sharding import Shard, parse_shard

if TYPE_CHECKING:
    from .alerts import AlertOutcome


class MergeError(ApimonError):
    """A shard file the merge cannot use (unreadable, not a shard file, from another run layout)."""


PlanRow = tuple[str, str, str, str, int]  # nodeid, service, module, interface name, shard index (1-based)


def shard_document(run: RunResult, shard: Shard, *, selection_complete: bool, redactor: Redactor,
                   plan: Sequence[PlanRow] = ()) -> str:
    """A shard's results file: `report.render_json`'s document plus `shard` ("K/N"), `selection_complete` and
    `plan`, the whole split (every shard's interfaces), so a merge can name what a missing shard did not check."""
    doc = json.loads(render_json(run, redactor=redactor))
    doc["shard"] = str(shard)
    doc["selection_complete"] = selection_complete
    doc["plan"] = [list(row) for row in plan]
    return json.dumps(doc, ensure_ascii=False, indent=2)


@dataclass
class Merged:
    run: RunResult
    total: int  # N of K/N; 0: unknown (no usable file)
    seen: list[int] = field(default_factory=list)  # shard indexes read (1-based)
    complete: bool = True  # every shard ran on the whole pool (no -k / -m / --lf subset)
    problems: list[str] = field(default_factory=list)  # human lines: missing or repeated shards, absent files
    unusable: list[str] = field(default_factory=list)  # files that arrived and cannot be used (exit 4)
    planned: int | None = None  # interfaces in the split (from a plan), None: no plan seen

    @property
    def missing(self) -> list[int]:
        return [k for k in range(1, self.total + 1) if k not in self.seen]

    @property
    def selection_complete(self) -> bool:
        return self.complete and bool(self.seen) and not self.missing

    def shard_report(self) -> ShardReport:
        """What arrived, for the alert policy (policy.shard_step)."""
        unchecked = [r for r in self.run.results if r.nodeid in self.unchecked_ids]
        by_service: dict[str, int] = {}
        for r in unchecked:
            by_service[r.service] = by_service.get(r.service, 0) + 1
        return ShardReport(self.total, tuple(self.missing), len(self.seen),
                           len(unchecked) if self.planned is not None else None, by_service, self.planned,
                           tuple(self.unusable))

    unchecked_ids: set[str] = field(default_factory=set)  # node ids listed as skipped for a missing shard


class _Unusable(Exception):
    pass


def _read(path: Path) -> tuple[Shard, dict]:
    """One shard file: (its shard, its document). Raises FileNotFoundError, or _Unusable with the reason."""
    try:
        doc = json.loads(Path(path).read_text("utf-8"))
    except FileNotFoundError:
        raise
    except (OSError, ValueError) as exc:
        raise _Unusable(f"{path}: cannot read shard results: {exc}") from None
    if not isinstance(doc, dict) or "shard" not in doc or not isinstance(doc.get("results"), list):
        raise _Unusable(f"{path}: not a shard results file (expected the JSON a run with --apimon-shard K/N "
                        f"writes, with the fields 'shard' and 'results')")
    try:
        shard = parse_shard(str(doc["shard"]))
    except ValueError as exc:
        raise _Unusable(f"{path}: field 'shard': {exc}") from None
    # Every field the merge reads is checked here, where the file enters: a hand-edited, truncated or foreign
    # file is named with its field path, never a crash of the merge that leaves no report (tests/test_fuzz_merge.py).
    for key in ("started_at_epoch", "finished_at_epoch"):
        if doc.get(key) is not None and not finite_number(doc[key], 0, EPOCH_MAX):
            raise _Unusable(f"{path}: field '{key}': expected epoch seconds between 0 and {EPOCH_MAX:.0f}")
    if not isinstance(doc.get("env", ""), str):
        raise _Unusable(f"{path}: field 'env': expected a string")
    if not isinstance(doc.get("plan") or [], list):
        raise _Unusable(f"{path}: field 'plan': expected a list of [node id, service, module, name, shard index]")
    for n, row in enumerate(doc.get("plan") or ()):
        if not (isinstance(row, list) and len(row) == 5 and all(isinstance(v, str) for v in row[:4])
                and isinstance(row[4], int) and not isinstance(row[4], bool) and 1 <= row[4] <= shard.total):
            raise _Unusable(f"{path}: plan[{n}]: expected "
                            f"[node id, service, module, name, shard index 1..{shard.total}]")
    for n, record in enumerate(doc["results"]):
        problem = record_problem(record)
        if problem is not None:
            raise _Unusable(f"{path}: results[{n}].{problem}" if isinstance(record, dict)
                            else f"{path}: results[{n}]: {problem}")
    return shard, doc


def _agreeing(docs: list[tuple[Path, Shard, dict]], env: str | None,
              unusable: list[str]) -> list[tuple[Path, Shard, dict]]:
    """The files that belong to one split. Files that disagree on N or on the environment cannot all be from
    one split: the most files that agree are kept (on a tie: those of the merge's own environment `env`, then
    those given first) and only the others are named in `unusable`, so one foreign or hand-edited file never
    hides the interfaces of every other shard (docs/scaling.md "A file that arrived but cannot be used";
    tests/test_fuzz_merge.py)."""
    groups: dict[tuple[int, str], list[tuple[Path, Shard, dict]]] = {}
    for item in docs:
        groups.setdefault((item[1].total, str(item[2].get("env", ""))), []).append(item)
    if len(groups) <= 1:
        return docs
    order = list(groups)
    keep = max(order, key=lambda key: (len(groups[key]), env is not None and key[1] == env, -order.index(key)))
    for key in order:
        if key != keep:
            unusable.extend(f"{path}: shard {shard} of environment '{key[1]}' does not belong with the other "
                            f"files (shards of {keep[0]} of environment '{keep[1]}'): not used"
                            for path, shard, _ in groups[key])
    return groups[keep]


def _list_lost(merged: Merged, plan: list[list], whole: set[int], results: dict[str, InterfaceResult]) -> None:
    """A shard file that says it reported its whole share (`whole`) yet has no record of an interface its plan
    gives it (cut short, hand-edited) must not hide that interface: it is listed as not checked, as an interface
    an xdist worker took down with it is (collector.py), so the merge exits 2 and its state is kept."""
    lost = [row for row in plan if row[4] in whole and row[0] not in results]
    _not_checked(merged, lost, "'s results file has no record of it", unchecked=True)
    for index in sorted({row[4] for row in lost}):
        merged.problems.append(f"shard {index}/{merged.total}: its results file lacks "
                               f"{sum(row[4] == index for row in lost)} interface(s) of its plan "
                               "(listed as not checked)")


def _take_records(docs: list[tuple[Path, Shard, dict]], plan: list[list], seen: list[int],
                  results: dict[str, InterfaceResult], problems: list[str]) -> None:
    """Every file's records into `results` (a shard given twice: its later file wins). A record of an interface
    the plan gives to another shard whose own file arrived is not used: that shard checked it, and a stray or
    hand-merged copy (say, passed) given last must not hide its failure; the file holding it is named."""
    owner = {str(row[0]): row[4] for row in plan}
    for path, shard, doc in docs:
        foreign: dict[int, int] = {}
        for record in doc["results"]:
            nodeid = str(record["nodeid"])
            index = owner.get(nodeid, shard.index)
            if index != shard.index and index in seen:
                foreign[index] = foreign.get(index, 0) + 1
                continue
            results[nodeid] = InterfaceResult.from_dict(record)
        problems.extend(f"{path}: holds {count} interface(s) of shard {index}/{shard.total}, whose own results "
                        "file is used for them" for index, count in sorted(foreign.items()))


def read_shards(paths: Sequence[Path], env: str | None = None) -> Merged:
    """Read shard files. A path that does not exist (a shard job that wrote nothing; an unexpanded shell glob)
    is a shard that did not report; a file that cannot be used (unreadable, not a shard's results, a field of
    the wrong type, or a file whose N or environment differs from the most files that agree — on a tie, from
    those of `env`, the merge's environment, then from the first given) is listed in `Merged.unusable` and its
    results are not used. Raises MergeError only when no path is given."""
    if not paths:
        raise MergeError("no shard results files given")
    docs: list[tuple[Path, Shard, dict]] = []
    problems: list[str] = []
    unusable: list[str] = []
    for path in paths:
        try:
            docs.append((path, *_read(path)))
        except FileNotFoundError:
            problems.append(f"{path}: no file matches this pattern (no shard results arrived)"
                            if glob.has_magic(str(path)) else f"{path}: no such file (no results arrived there)")
        except _Unusable as exc:
            unusable.append(str(exc))
    docs = _agreeing(docs, env, unusable)  # one N and one environment from here on
    results: dict[str, InterfaceResult] = {}
    seen: list[int] = []
    started, finished = [], []
    complete = True
    plan: list[list] = []
    whole: set[int] = set()  # shards whose file says it reported every interface of its share
    for path, shard, doc in docs:
        if shard.index in seen:
            problems.append(f"shard {shard} given twice ({path}): its later file wins")
        seen.append(shard.index)
        whole.discard(shard.index)
        if doc.get("selection_complete") is True:
            whole.add(shard.index)
        started.append(float(doc.get("started_at_epoch") or time.time()))
        finished.append(float(doc.get("finished_at_epoch") or time.time()))
        complete = complete and bool(doc.get("selection_complete", False))
        plan = plan or list(doc.get("plan") or ())  # rows checked by _read
    _take_records(docs, plan, seen, results, problems)
    now = time.time()
    merged = Merged(RunResult(min(started, default=now), max(finished, default=now),
                              str(docs[0][2].get("env", "")) if docs else "", list(results.values())),
                    docs[0][1].total if docs else 0,
                    sorted(set(seen)), complete, problems, unusable, len(plan) if plan else None)
    if merged.missing:
        merged.problems.append(
            "missing shard(s) " + ", ".join(f"{k}/{merged.total}" for k in merged.missing)
            + ": their interfaces were not checked (listed as skipped)")
        # Not checked is not healthy and not down: skipped, with the reason, and the selection is incomplete
        # so the state keeps what it knew about them.
        _not_checked(merged, [row for row in plan if row[4] in merged.missing and row[0] not in results],
                     " reported no results", unchecked=False)
    _list_lost(merged, plan, whole, results)
    return merged


def _not_checked(merged: Merged, rows: list[list], why: str, *, unchecked: bool) -> None:
    """Each plan row ([node id, service, module, name, shard index]) as a skipped result "not checked: shard
    K/N" + `why`, its node id in `merged.unchecked_ids`. `unchecked` also marks the result itself
    (InterfaceResult.unchecked), as the interfaces an xdist worker took down with it are (collector.py)."""
    for nodeid, service, module, name, index in rows:
        merged.run.results.append(InterfaceResult(
            nodeid=nodeid, service=service, module=module, name=name, outcome=Outcome.SKIPPED, unchecked=unchecked,
            reason=f"not checked: shard {index}/{merged.total}{why}"))
        merged.unchecked_ids.add(nodeid)


def _junit_names(nodeid: str) -> tuple[str, str]:
    # As pytest's junitxml names a test (mangle_test_address): file path with "/" → ".", then the item name.
    path, bracket, params = nodeid.partition("[")
    names = path.split("::")
    names[0] = re.sub(r"\.py$", "", names[0].replace("/", "."))
    names[-1] += bracket + params
    return ".".join(names[:-1]), names[-1]


def render_junit(run: RunResult, redactor: Redactor, suite: str = "pytest", *, lang: str = "en") -> str:
    """One JUnit XML file (the shape pytest's junitxml writes, one <testcase> per interface, the same
    properties as items.InterfaceItem puts on item.user_properties), as one str with an XML declaration.
    Times in seconds; failure messages and reasons masked with `redactor`. No I/O; raises no error of its
    own."""
    results = sorted(run.results, key=lambda r: r.nodeid)
    failures = sum(r.outcome == "failed" for r in results)
    skipped = sum(r.outcome == "skipped" for r in results)
    root = ET.Element("testsuites", name="pytest tests")
    ts = ET.SubElement(root, "testsuite", {
        "name": suite, "errors": "0", "failures": str(failures), "skipped": str(skipped), "tests": str(len(results)),
        "time": f"{run.duration:.3f}", "hostname": platform.node(),
        "timestamp": datetime.fromtimestamp(run.started_at, timezone.utc).astimezone().isoformat(),
    })
    for r in results:
        classname, name = _junit_names(r.nodeid)
        case = ET.SubElement(ts, "testcase", classname=classname, name=name,
                             time=f"{(r.elapsed_ms or 0) / 1000:.3f}")
        props = ET.SubElement(case, "properties")
        for key, value in (
            ("service", r.service), ("module", r.module), ("method", r.method), ("url", r.url),
            ("category", r.category or ""), ("status", "" if r.status is None else str(r.status)),
            ("latency_ms", "" if r.elapsed_ms is None else f"{r.elapsed_ms:.0f}"), ("attempts", str(r.attempts)),
            ("flaky", "true" if r.outcome == "passed" and r.attempts > 1 else "false"),
        ):
            ET.SubElement(props, "property", name=key, value=redactor.text(value))
        if r.outcome == "failed":
            # The human text in the report language (as pytest's own JUnit file); properties stay machine values.
            failure = ET.SubElement(case, "failure", message=redactor.text(headline(r, lang)))
            failure.text = redactor.text(reason_text(r, lang))
        elif r.outcome == "skipped":
            ET.SubElement(case, "skipped", type="pytest.skip", message=redactor.text(localize(r.reason, lang)))
    return ET.tostring(root, encoding="unicode", xml_declaration=True)


def exit_code(merged: Merged) -> int:
    """0: every shard present and nothing failed; 1: some check failed (as pytest); 2: a shard is missing (or
    none arrived), or a shard's run left interfaces unchecked; 4: a file arrived that cannot be used."""
    if merged.unusable:
        return 4
    if merged.missing or not merged.seen or any(r.unchecked for r in merged.run.results):
        return 2  # a shard that lost an xdist worker left interfaces unchecked too (collector.py)
    return 1 if any(r.outcome == "failed" for r in merged.run.results) else 0


@dataclass
class Outputs:
    """Where merge writes; None: the config's report.* path (relative to the config file), else nothing."""

    report: str | None = None
    json: str | None = None
    html: str | None = None
    prometheus: str | None = None
    junitxml: str | None = None


def finish(paths: Sequence[Path], config: Config, *, lang: str | None = None, outputs: Outputs | None = None,
           dry_run: bool = False, breaker: bool = True, echo: Callable[[str], None] = print,
           cwd: Path | None = None, echo_err: Callable[[str], None] | None = None) -> int:
    """The end of a sharded run, once: state update, notification, report files, JUnit. Returns the exit code
    (exit_code): also a merge that received no usable file records the run, notifies and writes its reports.

    Unusable files are named on `echo_err` (default: standard error). Raises MergeError when no path is given
    and runlock.LockTimeout when another run holds the state folder (as a run does: never two runs notifying
    from one workspace at once)."""
    from . import alerts, metrics, statuspage
    from .report import render_markdown, render_terminal
    from .state import StateError
    from .statedir import file_mode

    merged = read_shards(paths, config.env)
    outputs = outputs or Outputs()
    cwd = cwd or Path.cwd()
    lang = lang or config.report.language
    red = Redactor.with_environment(config.secrets)
    run = merged.run
    if not merged.seen:  # no usable file: the merge job's environment, and the time of the merge itself
        run.env = config.env
        run.started_at = run.finished_at = alerts.Memory.clock()
    memory = None
    try:
        memory = alerts.Memory.open(config, breaker=breaker)
    except (StateError, OSError) as exc:
        echo(say("term.warning", lang, text=say("merge.state_unusable", lang, path=config.state_path, error=exc)))
    if memory is not None:  # a missing shard's interfaces: what was down stays down as far as anyone knows
        alerts.mark_known_down(run, memory.states, merged.unchecked_ids)
    try:
        outcome: alerts.AlertOutcome | None = None
        extras = None
        try:
            outcome, extras = alerts.finish(run, config, lang, red, memory, dry_run=dry_run,
                                            selection_complete=merged.selection_complete,
                                            shards=merged.shard_report())
        except Exception as exc:  # the report files below must still be written (as collector.py does)
            echo(say("merge.finish_failed", lang, error=red.text(f"{type(exc).__name__}: {exc}")))
        files: list[tuple[str | None, str | None, Callable[[], str]]] = [
            (outputs.report, config.report.markdown,
             lambda: render_markdown(run, lang, config.report.title, redactor=red, extras=extras)),
            (outputs.json, config.report.json, lambda: render_json(run, redactor=red, extras=extras)),
            (outputs.junitxml, None, lambda: render_junit(run, red, lang=lang)),
        ]
        if memory is not None:
            store, verdict = memory.store, memory.verdict
            files += [
                (outputs.html, config.report.html, lambda: statuspage.render_status_page(
                    store, config.env, run, verdict, lang=lang, title=config.report.title, redactor=red,
                    certificates=extras.certificates if extras else None)),
                (outputs.prometheus, config.report.prometheus,
                 lambda: metrics.render_prometheus(run, store, verdict)),
            ]
        for cli, from_config, render in files:
            target = cli or from_config
            if not target:
                continue
            path = Path(target)
            if not path.is_absolute():
                path = (cwd if cli else config.base_dir) / path
            metrics.atomic_write_text(path, render(), mode=file_mode(config.report.publish))
            echo(say("merge.wrote", lang, path=path))
    finally:
        if memory is not None:
            memory.close()
    echo(render_terminal(run, lang, redactor=red, extras=extras).rstrip("\n"))
    for problem in merged.problems:
        echo(say("term.warning", lang, text=localize(problem, lang)))
    for problem in merged.unusable:
        (echo_err or (lambda line: print(line, file=sys.stderr)))(
            say("cli.error", lang, cmd="merge", text=localize(red.text(problem), lang)))
    if outcome is None:
        return max(exit_code(merged), 1)
    _echo_outcome(outcome, lang, red, echo, dry_run=dry_run)
    return exit_code(merged)


def _echo_outcome(outcome: AlertOutcome, lang: str, red: Redactor, echo: Callable[[str], None], *,
                  dry_run: bool) -> None:
    """The notification's lines on the terminal: the dry run's messages, or why nothing was sent and what
    each robot answered."""
    if dry_run:
        echo(red.text(outcome.reason))
        return
    if not outcome.sent and outcome.reason:  # why nothing was sent (e.g. a shard still missing, announced)
        echo(say("term.notify_reason", lang, text=red.text(outcome.reason)))
    for res in outcome.results:
        echo(res.describe(lang))
        for error in res.errors:
            echo(f"  {localize(red.text(error), lang)}")
