"""pytest-apimon benchmark: one command, prints a table (Markdown) of wall time, memory, CPU and overhead.

    python bench/run.py                                  # N = 1000,10000 at 100 ms: in-process, -n 2, -n 4
    python bench/run.py --n 1000 --modes inprocess --concurrency 16,32,64
    python bench/run.py --n 1000 --modes inprocess --flaky --no-reference --collect 0

What it does (see docs/benchmarks.md):

1. starts bench/target.py (asyncio HTTP/1.1 keep-alive, fixed latency) as a separate process and proves it
   is not the bottleneck with a plain thread-pool client at --target-check concurrent connections;
   Before any timing it byte-compiles pytest_apimon, as `pip install` does (--no-compile: not; see
   compile_plugin);
2. per N, writes a temporary pool (10 services x N/10 interfaces, --per-file interfaces per YAML file)
   and a config.yaml pointing at the target (retries 0), then runs
   ``python -m pytest --apimon POOL -q -p no:cacheprovider --apimon-json out.json`` (+ ``-n K`` for xdistK)
   in a scratch rootdir (its own pytest.ini, so no repository conftest is loaded), with the pytest plugins of
   the test extra turned off (``-p no:hypothesispytest``: a monitoring install does not have them;
   --keep-test-plugins keeps them);
3. measures wall time, the peak of VmRSS summed over the pytest process and all its descendants (sampled
   from /proc every --sample-ms), CPU time (user+sys of reaped children, getrusage deltas), and the tool
   overhead per interface = ``elapsed_ms`` from out.json minus the server latency (P50/P95);
   Each plain row and each reference row is run --repeat times (default 3) and shows the medians (the flaky
   scenario: --repeat pairs, the one with the median difference);
4. runs the same N through bench/reference.py (32 `requests` threads in one process) for comparison;
5. times collection only (``--co -q``) of --collect documents, twice (cold, then warm: a parse cache shows);
6. with --flaky: 1000 interfaces of which 50 answer 503 twice then 200, retries 3 with 1 s / x2 backoff,
   against the same run with no failure.

Only the standard library plus what the plugin already needs (requests). Linux only (/proc).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
SERVICES = 10


# --- measuring a process tree -----------------------------------------------------------------


def _children(pid: int) -> list[int]:
    out: list[int] = []
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return out
    for tid in tasks:
        try:
            with open(f"/proc/{pid}/task/{tid}/children") as fh:
                out += [int(x) for x in fh.read().split()]
        except OSError:
            pass
    return out


def tree(pid: int) -> list[int]:
    pids, todo = [], [pid]
    while todo:
        p = todo.pop()
        pids.append(p)
        todo += _children(p)
    return pids


def rss_kb(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


class TreeSampler(threading.Thread):
    """Peak of the RSS summed over a process and all its descendants, sampled every `interval` s."""

    def __init__(self, pid: int, interval: float) -> None:
        super().__init__(daemon=True)
        self.pid, self.interval = pid, interval
        self.peak_kb = 0
        self.peak_procs = 0
        self.samples = 0
        self._halt = threading.Event()

    def run(self) -> None:
        while not self._halt.is_set():
            pids = tree(self.pid)
            total = sum(rss_kb(p) for p in pids)
            self.samples += 1
            if total > self.peak_kb:
                self.peak_kb = total
            self.peak_procs = max(self.peak_procs, len([p for p in pids if rss_kb(p)]))
            self._halt.wait(self.interval)

    def stop(self) -> None:
        self._halt.set()
        self.join()


@dataclass
class Measured:
    wall_s: float
    peak_mb: float
    procs: int
    cpu_s: float
    rc: int
    stdout: str
    started_epoch: float = 0.0
    last_wall_s: float | None = None  # the last run's own wall time (phases() pairs it with started_epoch)
    runs: int = 1


ENV: dict[str, str] | None = None  # environment of the measured subprocesses (set by --plugin-src)
# Where the helper processes that find the measured pytest_apimon run: `python -c` puts the current directory
# first on sys.path, so run from a checkout they found its pytest_apimon instead of --plugin-src's (the
# measured runs start in the scratch rootdir).
NEUTRAL_CWD = tempfile.gettempdir()


def measure(cmd: list[str], *, cwd: Path, log: Path, sample_s: float, timeout: float, repeat: int = 1,
            before_each: Callable[[], object] | None = None,
            after_each: Callable[[Measured], object] | None = None) -> Measured:
    """Run cmd `repeat` times (before_each() ahead of each run, after_each(that run's figures) after it) and
    return the median wall time, CPU time and peak memory, each its own median (single runs on a 2-core VM
    differ by ±0.15 CPU-s). stdout, the start time and `last_wall_s` are the last run's: the caller reads that
    run's output files, or each run's in after_each."""
    runs = []
    for _ in range(max(1, repeat)):
        if before_each is not None:
            before_each()
        runs.append(_measure_once(cmd, cwd=cwd, log=log, sample_s=sample_s, timeout=timeout))
        if after_each is not None:
            after_each(runs[-1])
    last = runs[-1]
    if len(runs) == 1:
        return last
    return Measured(statistics.median(r.wall_s for r in runs), statistics.median(r.peak_mb for r in runs),
                    max(r.procs for r in runs), statistics.median(r.cpu_s for r in runs),
                    next((r.rc for r in runs if r.rc), 0), last.stdout, last.started_epoch, last.wall_s,
                    len(runs))


def _measure_once(cmd: list[str], *, cwd: Path, log: Path, sample_s: float, timeout: float) -> Measured:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started_epoch = time.time()
    start = time.perf_counter()
    with open(log, "w", encoding="utf-8") as out:
        proc = subprocess.Popen(cmd, cwd=cwd, stdout=out, stderr=subprocess.STDOUT, env=ENV)
        sampler = TreeSampler(proc.pid, sample_s)
        sampler.start()
        try:
            rc = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            for p in reversed(tree(proc.pid)):  # only the tree we started
                try:
                    os.kill(p, 9)
                except OSError:
                    pass
            rc = proc.wait()
            print(f"  !! timed out after {timeout:.0f} s: {' '.join(cmd)}", file=sys.stderr)
        wall = time.perf_counter() - start
        sampler.stop()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return Measured(wall, sampler.peak_kb / 1024, sampler.peak_procs, cpu, rc, log.read_text(encoding="utf-8"),
                    started_epoch)


# --- the target service -----------------------------------------------------------------------


class Target:
    def __init__(self, latency: float) -> None:
        self.latency = latency
        self.proc = subprocess.Popen(
            [sys.executable, str(HERE / "target.py"), "--latency", str(latency), "--port", "0"],
            stdout=subprocess.PIPE, text=True,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().strip()
        if not line.startswith("READY "):
            self.proc.kill()
            raise SystemExit(f"target did not start: {line!r}")
        self.port = int(line.split()[1])
        self.url = f"http://127.0.0.1:{self.port}"

    def control(self, path: str, payload: dict | None = None) -> dict:
        data = None if payload is None else json.dumps(payload).encode()
        req = urllib.request.Request(self.url + path, data=data, method="POST" if data is not None else "GET")
        with urllib.request.urlopen(req, timeout=10) as resp:
            return json.loads(resp.read())

    def cpu_s(self) -> float:
        """user+sys CPU seconds the target has used so far (it serves every scenario: read deltas)."""
        try:
            with open(f"/proc/{self.proc.pid}/stat") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
            return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        except (OSError, IndexError, ValueError):
            return 0.0

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


# --- workspace generation ---------------------------------------------------------------------


def item_path(service: int, index: int) -> str:
    """Path below the service base URL; the target sees /svcNN + this."""
    return f"/items/{index}"


def write_pool(pool: Path, n: int, per_file: int, services: int = SERVICES) -> list[str]:
    """n interfaces over `services` services, `per_file` per YAML file; returns the full request paths."""
    if pool.exists():
        shutil.rmtree(pool)
    full: list[str] = []
    per_service = [n // services + (1 if s < n % services else 0) for s in range(services)]
    for s, count in enumerate(per_service):
        sdir = pool / f"svc{s:02d}"
        sdir.mkdir(parents=True, exist_ok=True)
        for start in range(0, count, per_file):
            lines = [
                "# generated by bench/run.py",
                "defaults:",
                "  expect: {status: 200}",
                "  tags: [bench]",
                "interfaces:",
            ]
            for i in range(start, min(start + per_file, count)):
                p = item_path(s, i)
                full.append(f"/svc{s:02d}{p}")
                lines += [
                    f"  - name: item {i}",
                    "    method: GET",
                    f"    path: {p}",
                    "    expect:",
                    "      body:",
                    "        - {path: ok, equals: true}",
                    "        - {path: n, type: integer}",
                ]
            (sdir / f"m{start // per_file:05d}.yaml").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return full


def write_config(path: Path, base: str, *, retries: int, delay: float = 1.0, factor: float = 2.0,
                 services: int = SERVICES) -> None:
    lines = [
        "env: bench",
        "defaults:",
        "  timeout: 10",
        "  connect_timeout: 5",
        f"  retries: {retries}",
        f"  retry_delay: {delay}",
        f"  backoff_factor: {factor}",
        "services:",
    ]
    for s in range(services):
        lines += [f"  svc{s:02d}:", f"    base_url: {base}/svc{s:02d}"]
    lines += ["logging:", "  file: apimon.log", "  level: INFO"]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


# --- results ----------------------------------------------------------------------------------


def pct(values: list[float], p: float) -> float | None:
    if not values:
        return None
    s = sorted(values)
    k = (len(s) - 1) * p / 100
    lo = int(k)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


@dataclass
class Row:
    kind: str  # "apimon" | "reference" | "reference-1cpu" | "pytest-floor" | "collect" | "flaky" | "target-check"
    mode: str
    n: int
    concurrency: int
    wall_s: float
    ideal_s: float | None
    peak_mb: float
    procs: int
    cpu_s: float
    ovh_p50: float | None = None
    ovh_p95: float | None = None
    passed: int | None = None
    failed: int | None = None
    flaky: int | None = None
    rc: int = 0
    server_cpu_s: float | None = None
    phases: tuple[float, float, float] | None = None  # process start → 1st request, 1st → last answer, → exit
    note: str = ""
    extra: dict = field(default_factory=dict)

    @property
    def ratio(self) -> float | None:
        return self.wall_s / self.ideal_s if self.ideal_s else None


def overhead(latencies_ms: list[float], latency_s: float) -> tuple[float | None, float | None]:
    ovh = [ms - latency_s * 1000 for ms in latencies_ms]
    return pct(ovh, 50), pct(ovh, 95)


def phases(results: list[dict], m: Measured) -> tuple[float, float, float] | None:
    """Where the wall time went: before the first request (start-up + collection), the request span (first
    request sent → last answer), and after it (reporting, teardown, interpreter exit)."""
    spans = [(r["started_at"], r["started_at"] + (r.get("elapsed_ms") or 0) / 1000)
             for r in results if r.get("started_at")]
    if not spans:
        return None
    first = min(a for a, _ in spans)
    last = max(b for _, b in spans)
    wall = m.wall_s if m.last_wall_s is None else m.last_wall_s
    return first - m.started_epoch, last - first, m.started_epoch + wall - last


def median_phases(per_run: list[tuple[tuple[float, float, float] | None, bool]]
                  ) -> tuple[float, float, float] | None:
    """Each phase's median over the runs that wrote results (one run's start-up varies by ±0.1 s here)."""
    known = [p for p, _ in per_run if p is not None]
    if not known:
        return None
    return (statistics.median(p[0] for p in known), statistics.median(p[1] for p in known),
            statistics.median(p[2] for p in known))


def read_results(path: Path) -> list[dict]:
    try:
        return json.loads(path.read_text(encoding="utf-8"))["results"]
    except (OSError, ValueError, KeyError):
        return []


# --- machine ----------------------------------------------------------------------------------


def plugin_source(src: Path | None) -> str:
    """Which pytest_apimon the runs import, and its git commit (the tree may be edited during a run)."""
    code = (
        "import pathlib, pytest_apimon; print(pathlib.Path(pytest_apimon.__file__).resolve().parent.parent)"
    )
    try:
        where = subprocess.run([sys.executable, "-c", code], env=ENV, cwd=NEUTRAL_CWD, capture_output=True, text=True,
                               check=True).stdout.strip()
    except subprocess.CalledProcessError:
        return "?"
    try:
        commit = subprocess.run(["git", "-C", where, "describe", "--always", "--dirty"], capture_output=True,
                                text=True, check=True).stdout.strip()
    except (subprocess.CalledProcessError, OSError):
        commit = "not a git checkout" + (" (--plugin-src)" if src else "")
    return f"{where} ({commit})"


def compile_plugin() -> str:
    """Byte-compile the measured pytest_apimon once, before any timing, as `pip install` does for an installed
    package (pip compiles every module to `__pycache__` at install time; pytest, requests and the standard
    library the reference imports are all compiled). An editable checkout is never compiled at install, and with
    PYTHONDONTWRITEBYTECODE=1 Python would then compile the plugin from source in every measured run (0.08-0.15
    CPU-s on the 2-core VM in docs/benchmarks.md) -- a cost of the checkout, not of the tool. --no-compile
    measures that case."""
    code = ("import compileall, pathlib, pytest_apimon; "
            "print(compileall.compile_dir(pathlib.Path(pytest_apimon.__file__).resolve().parent, quiet=1))")
    try:
        done = subprocess.run([sys.executable, "-c", code], env=ENV, cwd=NEUTRAL_CWD, capture_output=True, text=True,
                              check=True)
    except subprocess.CalledProcessError as exc:
        return f"compiling failed ({exc.stderr.strip()[-200:]}); measured from source"
    return "compiled before timing, as pip install does" if done.stdout.strip() == "True" else \
        "compiled with errors; measured partly from source"


def machine() -> dict[str, str]:
    cpu = "?"
    try:
        with open("/proc/cpuinfo") as fh:
            cpu = next((ln.split(":", 1)[1].strip() for ln in fh if ln.startswith("model name")), "?")
    except OSError:
        pass
    mem = "?"
    try:
        with open("/proc/meminfo") as fh:
            kb = int(next(ln for ln in fh if ln.startswith("MemTotal")).split()[1])
            mem = f"{kb / 1024 / 1024:.1f} GiB"
    except (OSError, StopIteration):
        pass
    versions = {}
    for mod in ("pytest", "xdist", "pytest_rerunfailures", "pytest_timeout", "requests", "urllib3", "yaml"):
        try:
            m = __import__(mod)
            versions[mod] = getattr(m, "__version__", "?")
        except Exception:
            versions[mod] = "-"
    try:
        from importlib.metadata import version

        versions["xdist"] = version("pytest-xdist")
        versions["pytest_rerunfailures"] = version("pytest-rerunfailures")
        versions["pytest_timeout"] = version("pytest-timeout")
    except Exception:  # noqa: S110 - informative only
        pass
    return {
        "date": dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z"),
        "nproc": str(len(os.sched_getaffinity(0))),
        "cpu": cpu,
        "ram": mem,
        "python": platform.python_version(),
        "kernel": platform.release(),
        "loadavg_at_start": " ".join(f"{x:.2f}" for x in os.getloadavg()),
        "PYTHONDONTWRITEBYTECODE": os.environ.get("PYTHONDONTWRITEBYTECODE", "") or "unset",
        "versions": ", ".join(f"{k} {v}" for k, v in versions.items()),
    }


# --- the scenarios ----------------------------------------------------------------------------


class Bench:
    def __init__(self, args: argparse.Namespace, work: Path) -> None:
        self.args = args
        self.work = work
        self.rows: list[Row] = []
        self.target = Target(args.latency)
        self.pools: dict[tuple[int, int], list[str]] = {}
        self.warm_pools: set[Path] = set()  # pools an apimon run has collected (its parse cache is warm)
        (work / "pytest.ini").write_text("[pytest]\n", encoding="utf-8")  # scratch rootdir, no repo conftest
        self.logs = work / "logs"
        self.logs.mkdir(exist_ok=True)

    def say(self, text: str) -> None:
        print(text, file=sys.stderr, flush=True)

    def pool(self, n: int, per_file: int | None = None) -> tuple[Path, list[str]]:
        per_file = per_file or self.args.per_file
        path = self.work / f"pool_{n}_{per_file}"
        if (n, per_file) not in self.pools:
            self.pools[(n, per_file)] = write_pool(path / "Interface-pool", n, per_file)
        return path / "Interface-pool", self.pools[(n, per_file)]

    def timeout_for(self, ideal: float) -> float:
        return max(180.0, 6 * ideal + 60)

    # 1. the target is not the bottleneck
    def target_check(self) -> None:
        workers = self.args.target_check
        if workers <= 0:
            return
        n = workers * 10
        paths = self.work / f"paths_check_{n}.txt"
        paths.write_text("\n".join(f"/svc00/items/{i}" for i in range(n)) + "\n", encoding="utf-8")
        self.say(f"target check: {n} requests, {workers} concurrent connections")
        self._reference(n, workers, paths, kind="target-check")

    def _reference(self, n: int, workers: int, paths_file: Path, kind: str = "reference") -> Row:
        out = self.logs / f"{kind}_{n}_{workers}.json"
        cmd = [sys.executable, str(HERE / "reference.py"), "--base", self.target.url,
               "--paths-file", str(paths_file), "--workers", str(workers)]
        if kind == "reference-1cpu":
            cmd.append("--one-cpu")
        ideal = n * self.args.latency / workers
        cpu0 = self.target.cpu_s()
        repeat = self.args.repeat if kind.startswith("reference") else 1
        m = measure(cmd, cwd=self.work, log=out, sample_s=self.args.sample_ms / 1000, timeout=self.timeout_for(ideal),
                    repeat=repeat, before_each=lambda: self.target.control("/__reset", {}))
        try:
            data = json.loads(m.stdout)
        except ValueError:
            data = {"latencies_ms": [], "ok": 0, "wall_s": None}
        p50, p95 = overhead(data["latencies_ms"], self.args.latency)
        row = Row(kind, f"threads{workers}", n, workers, m.wall_s, ideal, m.peak_mb, m.procs, m.cpu_s, p50, p95,
                  passed=data["ok"], failed=n - data["ok"], rc=m.rc, server_cpu_s=(self.target.cpu_s() - cpu0) / m.runs,
                  extra={"inner_wall_s": data.get("wall_s")})
        stats = self.target.control("/__stats")
        inner = data.get("wall_s")
        row.note = (f"client's own wall (no interpreter start) {inner:.2f} s; " if inner else "") + (
            f"server saw {stats['max_inflight']} requests in flight at once")
        self.rows.append(row)
        self.say(f"  {kind}: {fmt_row(row)}")
        return row

    def reference(self, n: int, *, one_cpu: bool = False) -> None:
        """The plain reference at `n`; with `one_cpu` also the same reference pinned to one CPU (measured only: how
        much of pytest-apimon's CPU saving from its pin (pytest_apimon/affinity.py) a plain client gets too)."""
        _, paths = self.pool(n)
        pf = self.work / f"paths_{n}.txt"
        pf.write_text("\n".join(paths) + "\n", encoding="utf-8")
        self._reference(n, self.args.reference_workers, pf)
        if one_cpu:
            self._reference(n, self.args.reference_workers, pf, kind="reference-1cpu")

    def apimon(self, n: int, mode: str, concurrency: int, *, retries: int = 0, kind: str = "apimon",
               tag: str = "") -> Row:
        pool, _ = self.pool(n)
        run_dir = pool.parent
        cfg = run_dir / f"config_r{retries}.yaml"
        write_config(cfg, self.target.url, retries=retries, delay=self.args.flaky_delay, factor=2.0)
        out = run_dir / f"out_{mode}_{concurrency}_{kind}.json"
        out.unlink(missing_ok=True)
        cmd = [sys.executable, "-m", "pytest", "--apimon", str(pool), "-q", "-p", "no:cacheprovider", *EXTRA_ARGS,
               "--apimon-config", str(cfg), "--apimon-json", str(out), "--apimon-concurrency", str(concurrency)]
        workers = 0
        if mode.startswith("xdist"):
            workers = int(mode[5:] or 4)
            cmd += ["-n", str(workers)]
        # Workers prefetch their share with concurrency // workers each (scheduling.py); --xdist-inflight K
        # measures the old way of counting (K per worker).
        per_worker = self.args.xdist_inflight or max(1, concurrency // workers) if workers else 0
        inflight = workers * per_worker if workers else concurrency
        ideal = n * self.args.latency / inflight
        log = self.logs / f"{kind}_{mode}_{n}_{concurrency}{tag}.log"
        cpu0 = self.target.cpu_s()
        # The flaky scenario is not repeated: its failures are used up by the first run (flaky()).
        repeat = self.args.repeat if kind == "apimon" else 1
        per_run: list[tuple[tuple[float, float, float] | None, bool]] = []  # (phases, parse cache warm)

        def after_each(run: Measured) -> None:
            per_run.append((phases(read_results(out), run), pool in self.warm_pools))
            self.warm_pools.add(pool)  # the first run of a new pool fills its parse cache

        m = measure(cmd, cwd=self.work, log=log, sample_s=self.args.sample_ms / 1000, timeout=self.timeout_for(ideal),
                    repeat=repeat, after_each=after_each)
        results = read_results(out)
        lat = [r["elapsed_ms"] for r in results if r.get("elapsed_ms") is not None and r.get("outcome") == "passed"]
        p50, p95 = overhead(lat, self.args.latency)
        passed = sum(r.get("outcome") == "passed" for r in results)
        failed = sum(r.get("outcome") == "failed" for r in results)
        flaky = sum(bool(r.get("flaky")) for r in results)
        note = "" if m.rc == 0 and passed == n else f"rc={m.rc}, {passed}/{n} passed — see {log}"
        row = Row(kind, mode, n, inflight, m.wall_s, ideal, m.peak_mb, m.procs, m.cpu_s, p50, p95,
                  passed, failed, flaky, m.rc, (self.target.cpu_s() - cpu0) / m.runs, median_phases(per_run), note)
        warm_firsts = [p[0] for p, warm in per_run if p is not None and warm]
        if warm_firsts:
            row.extra["first_request_warm_s"] = warm_firsts
        self.rows.append(row)
        self.say(f"  {kind}: {fmt_row(row)}")
        return row

    def floor(self, n: int) -> None:
        """pytest alone running `n` empty test functions (the same plugins, pytest-apimon off): the CPU that any
        tool making each of `n` checks a pytest item spends before it sends a request. With the reference's CPU
        (the requests themselves) it is the lowest CPU such a tool can reach."""
        folder = self.work / f"floor_{n}"
        folder.mkdir(exist_ok=True)
        (folder / "pytest.ini").write_text("[pytest]\n", encoding="utf-8")
        (folder / "test_empty.py").write_text("".join(f"def test_{i}():\n    pass\n\n\n" for i in range(n)),
                                             encoding="utf-8")
        cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:apimon", *EXTRA_ARGS,
               "test_empty.py"]
        m = measure(cmd, cwd=folder, log=self.logs / f"floor_{n}.log", sample_s=self.args.sample_ms / 1000,
                    timeout=600, repeat=self.args.repeat)
        found = re.search(r"(\d+) passed", m.stdout)
        row = Row("pytest-floor", "empty tests", n, 0, m.wall_s, None, m.peak_mb, m.procs, m.cpu_s,
                  passed=int(found.group(1)) if found else 0, rc=m.rc,
                  note="pytest alone, n empty test functions, pytest-apimon off")
        self.rows.append(row)
        self.say(f"  pytest floor: {fmt_row(row)}")

    def collect(self, n: int) -> None:
        per_file = self.args.collect_per_file
        pool, _ = self.pool(n, per_file)
        cfg = pool.parent / "config_r0.yaml"
        write_config(cfg, self.target.url, retries=0)
        for label in ("cold", "warm"):
            cmd = [sys.executable, "-m", "pytest", "--apimon", str(pool), "--co", "-q", "-p", "no:cacheprovider",
                   *EXTRA_ARGS,
                   "--apimon-config", str(cfg)]
            log = self.logs / f"collect_{n}_{per_file}_{label}.log"
            m = measure(cmd, cwd=self.work, log=log, sample_s=self.args.sample_ms / 1000, timeout=600)
            found = re.search(r"(\d+) tests? collected", m.stdout)
            count = int(found.group(1)) if found else 0
            files = -(-n // per_file)
            note = f"{files} files, {label}" + ("" if count == n else f"; collected {count} — see {log}")
            row = Row("collect", f"--co ({label})", n, 0, m.wall_s, None, m.peak_mb, m.procs, m.cpu_s,
                      passed=count, rc=m.rc, note=note)
            self.rows.append(row)
            self.say(f"  collect: {fmt_row(row)}")

    def flaky(self, mode: str, concurrency: int) -> None:
        """The clean run, then the same run with `--flaky-fail` interfaces failing twice; --repeat pairs, and the
        pair with the median difference is the one shown (each run's start-up varies by ±0.3 s under load,
        which a single pair carries into the difference whole)."""
        n, k = self.args.flaky_n, self.args.flaky_fail
        _, paths = self.pool(n)
        step = max(1, n // k)
        failing = paths[step - 1::step][:k]  # spread through the run, the last one near the end
        pairs: list[tuple[Row, Row, dict]] = []
        for _ in range(max(1, self.args.repeat)):
            self.target.control("/__flaky", {"paths": [], "fail_times": 0})
            clean = self.apimon(n, mode, concurrency, retries=3, kind="flaky", tag="_clean")
            self.target.control("/__flaky", {"paths": failing, "fail_times": 2, "status": 503})
            row = self.apimon(n, mode, concurrency, retries=3, kind="flaky", tag="_fail")
            stats = self.target.control("/__stats")
            self.target.control("/__flaky", {"paths": [], "fail_times": 0})
            pairs.append((clean, row, stats))
        deltas = [row.wall_s - clean.wall_s for clean, row, _ in pairs]
        clean, row, stats = sorted(pairs, key=lambda p: p[1].wall_s - p[0].wall_s)[len(pairs) // 2]
        for other_clean, other_row, _ in pairs:  # only the median pair stays in the table
            if other_row is not row:
                self.rows.remove(other_clean)
                self.rows.remove(other_row)
        clean.note = (clean.note + " " if clean.note else "") + "retries 3, no failures"
        each = f" (median of {len(pairs)} pairs: " + ", ".join(f"+{d:.2f}" for d in deltas) + ")" if len(pairs) > 1 \
            else ""
        row.note = (row.note + " " if row.note else "") + (
            f"{k} fail twice (503); server: {stats['requests']} requests, {stats['failed']} failed answers; "
            f"+{row.wall_s - clean.wall_s:.2f} s vs clean{each}")
        row.extra = {"delta_s": row.wall_s - clean.wall_s, "deltas_s": deltas,
                     "server": {k2: v for k2, v in stats.items() if k2 != "per_path_failed"}}


# --- output -----------------------------------------------------------------------------------


def f(x: float | None, spec: str = ".1f") -> str:
    return "–" if x is None else format(x, spec)


def fmt_row(r: Row) -> str:
    return (f"{r.mode} N={r.n} c={r.concurrency} wall={r.wall_s:.2f}s ideal={f(r.ideal_s, '.2f')}s "
            f"ratio={f(r.ratio, '.2f')} peak={r.peak_mb:.0f}MB procs={r.procs} cpu={r.cpu_s:.2f}s "
            f"server cpu={f(r.server_cpu_s, '.2f')}s ovh p50/p95={f(r.ovh_p50)}/{f(r.ovh_p95)}ms "
            f"phases={fmt_phases(r)} ok={r.passed} {r.note}")


def fmt_phases(r: Row) -> str:
    return "–" if r.phases is None else " / ".join(f"{x:.2f}" for x in r.phases)


HEADER = ("| what | mode | N | in flight | wall s | ideal s | wall/ideal | peak MB (tree) | procs | CPU s "
          "| target CPU s | overhead P50 ms | overhead P95 ms | before 1st req / requests / after s "
          "| passed (flaky) | notes |")


def table(rows: list[Row]) -> str:
    out = [HEADER, "|" + "---|" * (HEADER.count("|") - 1)]
    for r in rows:
        passed = "–" if r.passed is None else str(r.passed) + (f" ({r.flaky})" if r.flaky else "")
        out.append(
            f"| {r.kind} | {r.mode} | {r.n} | {r.concurrency or '–'} | {r.wall_s:.2f} | {f(r.ideal_s, '.2f')} "
            f"| {f(r.ratio, '.2f')} | {r.peak_mb:.0f} | {r.procs} | {r.cpu_s:.2f} | {f(r.server_cpu_s, '.2f')} "
            f"| {f(r.ovh_p50)} | {f(r.ovh_p95)} | {fmt_phases(r)} | {passed} | {r.note} |"
        )
    return "\n".join(out)


def targets(rows: list[Row], args: argparse.Namespace) -> list[str]:
    """Issue #5 requirement 7, checked on the rows of this run (only those that were measured)."""
    lines: list[str] = []

    def check(ok: bool, text: str) -> None:
        lines.append(f"- [{'x' if ok else ' '}] {'met' if ok else 'MISSED'}: {text}")

    def find(kind: str, mode: str, n: int, conc: int | None = None) -> Row | None:
        return next((r for r in rows if r.kind == kind and r.mode == mode and r.n == n
                     and (conc is None or r.concurrency == conc)), None)

    default_c = args.default_concurrency
    base = find("apimon", "inprocess", 1000, default_c)
    if base:
        check(base.wall_s <= 10, f"1000 in-process (c={default_c}) wall {base.wall_s:.2f} s ≤ 10 s")
        check(base.peak_mb <= 100, f"1000 in-process peak memory {base.peak_mb:.0f} MB ≤ 100 MB")
        if base.ovh_p95 is not None:
            check(base.ovh_p95 <= 30, f"1000 in-process overhead P95 {base.ovh_p95:.1f} ms ≤ 30 ms")
    for r in rows:
        if r.kind == "apimon" and r.mode == "inprocess" and r.n == 1000 and r.ideal_s:
            bound = 1.3 * r.ideal_s + 2
            check(r.wall_s <= bound, f"1000 in-process c={r.concurrency}: wall {r.wall_s:.2f} s ≤ 1.3 × ideal + 2 s "
                                     f"= {bound:.2f} s")
    big = find("apimon", "inprocess", 5000, default_c)
    if base and big:
        check(big.wall_s <= 5.5 * base.wall_s,
              f"5000 in-process wall {big.wall_s:.2f} s ≤ 5.5 × {base.wall_s:.2f} s = {5.5 * base.wall_s:.2f} s")
        check(big.peak_mb <= 150, f"5000 in-process peak memory {big.peak_mb:.0f} MB ≤ 150 MB")
    for r in rows:
        if r.kind == "collect" and r.n >= 10000:
            check(r.wall_s <= 5, f"collect {r.n} documents ({r.note}): {r.wall_s:.2f} s ≤ 5 s")
    for mode in {r.mode for r in rows if r.kind == "flaky"}:
        clean = next((r for r in rows if r.kind == "flaky" and r.mode == mode and "no failures" in r.note), None)
        fail = next((r for r in rows if r.kind == "flaky" and r.mode == mode and "fail twice" in r.note), None)
        if clean and fail:
            delta = fail.wall_s - clean.wall_s
            bound = args.flaky_delay * 3 + 3 * args.latency + 0.5
            text = (f"flaky ({mode}): +{delta:.2f} s over the clean run (bound 1 s + 2 s + 3 × latency + 0.5 s "
                    f"= {bound:.1f} s)")
            if mode == "inprocess":
                check(delta <= bound, text)
            else:
                lines.append(f"- (measured only) {text}")
    # Issue #15: ratios within one sitting.
    def ref(n: int, kind: str = "reference") -> Row | None:
        return next((r for r in rows if r.kind == kind and r.n == n), None)

    one, ref1 = find("apimon", "inprocess", 1000, default_c), ref(1000)
    if one and ref1:
        check(one.wall_s <= 1.2 * ref1.wall_s, f"#15 1000 in-process {one.wall_s:.2f} s ≤ 1.2 × reference "
                                               f"{ref1.wall_s:.2f} s (ratio {one.wall_s / ref1.wall_s:.2f})")
        check(one.cpu_s <= 2 * ref1.cpu_s, f"#15 1000 in-process CPU {one.cpu_s:.2f} s ≤ 2 × reference CPU "
                                           f"{ref1.cpu_s:.2f} s (ratio {one.cpu_s / max(ref1.cpu_s, 1e-9):.2f})")
        floor = next((r for r in rows if r.kind == "pytest-floor" and r.n == 1000), None)
        if floor:
            least = ref1.cpu_s + floor.cpu_s
            lines.append(f"- (measured only) CPU floor of one pytest item per check: the reference's "
                         f"{ref1.cpu_s:.2f} + pytest alone on 1000 empty tests {floor.cpu_s:.2f} = {least:.2f} "
                         f"CPU-s (ratio {least / max(ref1.cpu_s, 1e-9):.2f}); pytest-apimon is "
                         f"{one.cpu_s - least:+.2f} CPU-s above it")
        pinned = ref(1000, "reference-1cpu")
        if pinned:
            lines.append(f"- (measured only) the reference pinned to one CPU, as pytest-apimon pins its checking "
                         f"threads: {pinned.cpu_s:.2f} CPU-s; pytest-apimon's CPU is "
                         f"{one.cpu_s / max(pinned.cpu_s, 1e-9):.2f} × that")
    if one and one.extra.get("first_request_warm_s"):
        firsts = one.extra["first_request_warm_s"]
        first = statistics.median(firsts)
        check(first <= 0.5, f"#15 1000 in-process, warm parse cache: first request {first:.2f} s after the "
                            f"command started ≤ 0.5 s (median of {len(firsts)} run(s): "
                            f"{', '.join(f'{x:.2f}' for x in firsts)})")
    x2, x4 = find("apimon", "xdist2", 1000), find("apimon", "xdist4", 1000)
    if one and x2:
        check(x2.wall_s <= one.wall_s, f"#15 1000 -n 2 {x2.wall_s:.2f} s ≤ in-process {one.wall_s:.2f} s "
                                       f"(ratio {x2.wall_s / one.wall_s:.2f})")
    if one and x4:
        check(x4.wall_s <= 1.3 * one.wall_s, f"#15 1000 -n 4 {x4.wall_s:.2f} s ≤ 1.3 × in-process {one.wall_s:.2f} s "
                                             f"(ratio {x4.wall_s / one.wall_s:.2f})")
    ten, ref10 = find("apimon", "inprocess", 10000, default_c), ref(10000)
    if ten and ref10:
        check(ten.wall_s <= 1.5 * ref10.wall_s, f"#15 10000 in-process {ten.wall_s:.2f} s ≤ 1.5 × reference "
                                                f"{ref10.wall_s:.2f} s (ratio {ten.wall_s / ref10.wall_s:.2f})")
    if ten:
        check(ten.peak_mb <= 250, f"#15 10000 in-process peak tree RSS {ten.peak_mb:.0f} MB ≤ 250 MB")
    for mode in sorted({r.mode for r in rows if r.kind == "flaky"}):
        clean = next((r for r in rows if r.kind == "flaky" and r.mode == mode and "no failures" in r.note), None)
        fail = next((r for r in rows if r.kind == "flaky" and r.mode == mode and "fail twice" in r.note), None)
        if clean and fail:
            delta = fail.wall_s - clean.wall_s
            check(delta <= 3.5, f"#15 flaky ({mode}): +{delta:.2f} s over the clean run ≤ 3.5 s")
    for r in rows:
        if r.kind == "collect" and r.n >= 10000 and "warm" in r.note:
            check(r.wall_s <= 3, f"#15 collect {r.n} documents warm: {r.wall_s:.2f} s ≤ 3 s")
    return lines


# --- main -------------------------------------------------------------------------------------


def ints(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x.strip()]


# Plugins that come with the test extra (pyproject.toml), not with a monitoring install: hypothesis's pytest plugin
# imports the whole hypothesis package in every run's terminal summary (about 0.6 CPU-s here, docs/benchmarks.md).
TEST_EXTRA_PLUGINS = {"hypothesis": "hypothesispytest"}
EXTRA_ARGS: list[str] = []


def test_plugin_args() -> list[str]:
    """-p no:NAME for each test-extra pytest plugin installed in this interpreter."""
    import importlib.util

    out: list[str] = []
    for module, plugin in TEST_EXTRA_PLUGINS.items():
        if importlib.util.find_spec(module) is not None:
            out += ["-p", f"no:{plugin}"]
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="pytest-apimon benchmark (see docs/benchmarks.md)")
    ap.add_argument("--n", type=ints, default=[1000, 10000], help="interface counts (default 1000,10000)")
    ap.add_argument("--latency", type=float, default=0.1, help="server latency in seconds (default 0.1)")
    ap.add_argument("--modes", default="inprocess,xdist2,xdist4",
                    help="comma list of inprocess and xdistK (pytest -n K); default inprocess,xdist2,xdist4")
    ap.add_argument("--concurrency", type=ints, default=[32],
                    help="--apimon-concurrency values for in-process runs (default 32)")
    ap.add_argument("--default-concurrency", type=int, default=32,
                    help="the plugin's default concurrency: the row the targets are checked on")
    ap.add_argument("--xdist-inflight", type=int, default=0,
                    help="requests in flight per xdist worker, for its ideal time (default 0: concurrency / workers, "
                         "as workers prefetch)")
    ap.add_argument("--per-file", type=int, default=5, help="interfaces per generated YAML file (default 5)")
    ap.add_argument("--reference-workers", type=int, default=32)
    ap.add_argument("--no-reference", dest="reference", action="store_false", help="skip the thread-pool reference")
    ap.add_argument("--target-check", type=int, default=128, metavar="CONNS",
                    help="prove the target is not the bottleneck at CONNS concurrent connections (0: skip)")
    ap.add_argument("--no-floor", dest="floor", action="store_false",
                    help="skip pytest alone on N empty tests (the CPU floor of one pytest item per check) and the "
                         "reference pinned to one CPU")
    ap.add_argument("--collect", type=int, default=10000, help="documents for the --co timing (0: skip)")
    ap.add_argument("--collect-per-file", type=int, default=1, help="interfaces per file for --co (default 1)")
    ap.add_argument("--flaky", action="store_true", help="also run the retry scenario")
    ap.add_argument("--flaky-n", type=int, default=1000)
    ap.add_argument("--flaky-fail", type=int, default=50)
    ap.add_argument("--flaky-delay", type=float, default=1.0, help="retry_delay (factor 2)")
    ap.add_argument("--flaky-modes", default=None, help="modes for --flaky (default: --modes)")
    ap.add_argument("--sample-ms", type=float, default=50.0, help="memory sampling period (default 50 ms)")
    ap.add_argument("--workdir", type=Path, help="keep pools, configs, logs and out.json here (default: temp)")
    ap.add_argument("--json", type=Path, help="also write all rows and the machine facts as JSON")
    ap.add_argument("--keep-test-plugins", action="store_true",
                    help="measure with the pytest plugins of the test extra loaded (hypothesis's); by default they "
                         "are turned off with -p no:NAME, since a monitoring install does not have them")
    ap.add_argument("--repeat", type=int, default=3,
                    help="runs per reference and plain apimon row, each row showing the medians, and pairs of the "
                         "flaky scenario, showing the pair with the median difference (default 3; the target "
                         "check and collection run once)")
    ap.add_argument("--no-compile", dest="compile", action="store_false",
                    help="do not byte-compile pytest_apimon before timing (see compile_plugin): with "
                         "PYTHONDONTWRITEBYTECODE=1 every run then compiles the plugin from source")
    ap.add_argument("--plugin-src", type=Path,
                    help="import pytest_apimon from this folder (prepended to PYTHONPATH), e.g. a `git archive` "
                         "snapshot, so edits to the working tree during a long run do not change what is measured")
    args = ap.parse_args(argv)
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    for m in modes:
        if m != "inprocess" and not re.fullmatch(r"xdist\d*", m):
            ap.error(f"unknown mode {m!r} (inprocess, xdist4, ...)")

    global ENV
    if args.plugin_src:
        ENV = dict(os.environ)
        ENV["PYTHONPATH"] = os.pathsep.join([str(args.plugin_src.resolve()), *filter(None, [ENV.get("PYTHONPATH")])])
    facts = machine()
    facts["plugin"] = plugin_source(args.plugin_src)
    facts["plugin_bytecode"] = compile_plugin() if args.compile else "not compiled (--no-compile)"
    global EXTRA_ARGS
    EXTRA_ARGS = [] if args.keep_test_plugins else test_plugin_args()
    facts["test_plugins_off"] = ("no (--keep-test-plugins)" if args.keep_test_plugins
                                 else " ".join(EXTRA_ARGS) or "none installed")
    work = args.workdir or Path(tempfile.mkdtemp(prefix="apimon-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    bench = Bench(args, work)
    bench.say(f"workdir {work}; target {bench.target.url} latency {args.latency * 1000:.0f} ms")
    bench.say("machine: " + "; ".join(f"{k}={v}" for k, v in facts.items()))
    try:
        bench.target_check()
        for n in args.n:
            bench.say(f"N={n}")
            if args.reference:
                bench.reference(n, one_cpu=args.floor and n == args.n[0])
                if args.floor and n == args.n[0]:
                    bench.floor(n)
            for mode in modes:
                for c in (args.concurrency if mode == "inprocess" else [args.default_concurrency]):
                    bench.apimon(n, mode, c)
        if args.collect:
            bench.say(f"collect {args.collect}")
            bench.collect(args.collect)
        if args.flaky:
            for mode in [m.strip() for m in (args.flaky_modes or args.modes).split(",") if m.strip()]:
                bench.say(f"flaky {mode}")
                bench.flaky(mode, args.default_concurrency)
    finally:
        bench.target.stop()

    print()
    print(f"Machine: {facts['nproc']} CPUs ({facts['cpu']}), RAM {facts['ram']}, Python {facts['python']}, "
          f"kernel {facts['kernel']}, {facts['date']}, load at start {facts['loadavg_at_start']}, "
          f"PYTHONDONTWRITEBYTECODE={facts['PYTHONDONTWRITEBYTECODE']}, "
          f"test-extra plugins turned off: {facts['test_plugins_off']}")
    print(f"Versions: {facts['versions']}")
    print(f"Plugin measured: {facts['plugin']}; bytecode: {facts['plugin_bytecode']}")
    print(f"Each reference and plain apimon row: median of {args.repeat} run(s) (wall, CPU and peak memory each "
          f"its own median); flaky scenario: the pair with the median difference of {args.repeat}; target check "
          "and collection: one run.")
    print(f"Server latency {args.latency * 1000:.0f} ms; in flight = --apimon-concurrency (in-process), "
          f"workers × {args.xdist_inflight} (xdist), threads (reference). ideal = N × latency / in flight.")
    print()
    print(table(bench.rows))
    print()
    print("Targets (issue #5, req. 7):")
    for line in targets(bench.rows, args) or ["- (no row to check)"]:
        print(line)
    if args.json:
        args.json.write_text(json.dumps({"machine": facts, "args": {k: str(v) for k, v in vars(args).items()},
                                         "rows": [asdict(r) | {"ratio": r.ratio} for r in bench.rows]},
                                        indent=2, ensure_ascii=False), encoding="utf-8")
    if not args.workdir:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
