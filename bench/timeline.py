"""Where a run's wall time goes, per process (controller and xdist workers): a pytest plugin and a merge step.

    export APIMON_TIMELINE_DIR=/tmp/tl; rm -rf $APIMON_TIMELINE_DIR
    PYTHONPATH=bench python -m pytest -p timeline --apimon POOL --apimon-json out.json -n 2 …
    python bench/timeline.py /tmp/tl --results out.json

As a plugin (`-p timeline`, loaded by every process: xdist passes `-p` on to the workers) it writes one file per
process to $APIMON_TIMELINE_DIR: the process start (from /proc), then a mark at each phase — configure,
sessionstart, collection, runtestloop, the first and every 250th call report, xdist's node events on the
controller, sessionfinish (first and last hook), unconfigure — with the wall time (epoch seconds) and the
process's CPU time. Workers write theirs at the last cleanup of their config; the controller at exit, after
xdist has waited for the worker processes.

As a script it merges the files into one timeline, in seconds since the controller process started, with the
first request and the last answer taken from the run's `--apimon-json` (each result's `started_at` and
`elapsed_ms`). Linux only (/proc). Not part of the plugin: nothing in pytest_apimon imports it.
"""

from __future__ import annotations

import atexit
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

try:  # the merge step runs without pytest
    import pytest
except ImportError:  # pragma: no cover
    pytest = None  # type: ignore[assignment]

_MARKS: list[tuple[str, float, float]] = []
_WHO = ["controller"]
_DONE = [False]
_CALLS = [0]


def _process_start() -> float:
    """Epoch seconds at which this process started (/proc/self/stat field 22, in clock ticks since boot)."""
    with open("/proc/self/stat", encoding="ascii") as f:
        ticks = int(f.read().rsplit(")", 1)[1].split()[19])
    with open("/proc/uptime", encoding="ascii") as f:
        uptime = float(f.read().split()[0])
    return time.time() - (uptime - ticks / os.sysconf("SC_CLK_TCK"))


_START = _process_start()


def mark(name: str) -> None:
    _MARKS.append((name, time.time(), time.process_time()))


mark("plugin imported")


def _dump() -> None:
    if _DONE[0] or not os.environ.get("APIMON_TIMELINE_DIR"):
        return
    _DONE[0] = True
    mark("exit" if _WHO[0] == "controller" else "last cleanup")
    folder = Path(os.environ["APIMON_TIMELINE_DIR"])
    folder.mkdir(parents=True, exist_ok=True)
    doc = {"who": _WHO[0], "start": _START, "marks": _MARKS}
    (folder / f"{_WHO[0]}.json").write_text(json.dumps(doc), encoding="utf-8")


if pytest is not None:

    class _First:
        @pytest.hookimpl(tryfirst=True)
        def pytest_sessionstart(self) -> None:
            mark("sessionstart (first)")

        @pytest.hookimpl(tryfirst=True)
        def pytest_collection(self) -> None:
            mark("collection")

        def pytest_collection_finish(self) -> None:
            mark("collection finished")

        @pytest.hookimpl(tryfirst=True)
        def pytest_runtestloop(self) -> None:
            mark("runtestloop")

        def pytest_runtest_logreport(self, report: Any) -> None:
            if report.when == "call":
                _CALLS[0] += 1
                if _CALLS[0] == 1 or _CALLS[0] % 250 == 0:
                    mark(f"call report #{_CALLS[0]}")

        @pytest.hookimpl(optionalhook=True)
        def pytest_testnodeready(self, node: Any) -> None:
            mark(f"{node.workerinput['workerid']} ready")

        @pytest.hookimpl(optionalhook=True)
        def pytest_xdist_node_collection_finished(self, node: Any) -> None:
            mark(f"{node.workerinput['workerid']} collected")

        @pytest.hookimpl(optionalhook=True)
        def pytest_testnodedown(self, node: Any) -> None:
            mark(f"{node.workerinput['workerid']} finished")

        @pytest.hookimpl(tryfirst=True)
        def pytest_sessionfinish(self) -> None:
            mark(f"sessionfinish (first), {_CALLS[0]} call reports")

        @pytest.hookimpl(trylast=True)
        def pytest_terminal_summary(self) -> None:
            mark("terminal summary written")

        @pytest.hookimpl(tryfirst=True)
        def pytest_unconfigure(self) -> None:
            mark("unconfigure")

    class _Last:
        @pytest.hookimpl(trylast=True)
        def pytest_sessionstart(self) -> None:
            mark("sessionstart (last)")

        @pytest.hookimpl(trylast=True)
        def pytest_sessionfinish(self) -> None:
            mark("sessionfinish (last)")

    @pytest.hookimpl(tryfirst=True)
    def pytest_configure(config: Any) -> None:
        mark("configure")
        workerinput = getattr(config, "workerinput", None)
        if workerinput is not None:
            _WHO[0] = workerinput["workerid"]
            config.add_cleanup(_dump)
        # Registered here, after the other plugins: among hooks of one kind (tryfirst / trylast), the last
        # registered is called first, so _First's marks come before the others' and _Last's after them.
        config.pluginmanager.register(_First(), "timeline-first")
        config.pluginmanager.register(_Last(), "timeline-last")

    atexit.register(_dump)


def merge(folder: Path, results: Path | None) -> list[str]:
    docs = [json.loads(p.read_text("utf-8")) for p in sorted(folder.glob("*.json"))]
    base = next((d["start"] for d in docs if d["who"] == "controller"), min(d["start"] for d in docs))
    rows = []
    for doc in docs:
        rows.append((doc["start"], doc["who"], "process started", None))
        rows += [(wall, doc["who"], name, cpu) for name, wall, cpu in doc["marks"]]
    if results is not None and results.is_file():
        found = [r for r in json.loads(results.read_text("utf-8"))["results"] if r.get("started_at")]
        if found:
            rows.append((min(r["started_at"] for r in found), "", "first request", None))
            rows.append((max(r["started_at"] + (r.get("elapsed_ms") or 0) / 1000 for r in found), "",
                         "last answer", None))
    lines = []
    for wall, who, name, cpu in sorted(rows, key=lambda r: r[0]):
        cpu_text = f"cpu {cpu:6.3f}" if cpu is not None else " " * 10
        lines.append(f"{wall - base:7.3f}  {who:10s} {cpu_text}  {name}")
    return lines


if __name__ == "__main__":
    args = sys.argv[1:]
    if not args or args[0] in ("-h", "--help"):
        print(__doc__)
        sys.exit(0)
    res = Path(args[args.index("--results") + 1]) if "--results" in args else None
    print("\n".join(merge(Path(args[0]), res)))
