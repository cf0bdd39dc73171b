"""History budget benchmark (issue 18): a synthetic year of 15-minute runs, then what it costs.

    python bench/history.py                         # 1000 interfaces, 365 days, 15-minute runs
    python bench/history.py --n 5000 --repeats 2
    python bench/history.py --n 1000 --no-pytest    # only the end-of-run harness (faster, less noisy)

What it does (figures go to docs/benchmarks.md):

1. builds `state.db` for --n interfaces (10 services, named like bench/run.py's pool so a real run matches
   them): daily rollups for the days before the last 90, hourly rollups for the last 90 days, synthesised
   with rollup.encode from random but plausible figures (1 % failed checks, 2 % retried, a per-interface
   latency level with hourly jitter: random latencies compress worse than real ones, so this errs large);
   then the last two days go through the real path, StateStore.record_run + policy.evaluate, one run per
   15 minutes, so the raw tier, the hour/day rollups in the run's transaction and the pruning are the real
   ones. record_run is timed per run (max, and the runs that rolled a day up);
2. reports the file size (after a WAL checkpoint), rows per tier, and the free list;
3. one more simulated day of runs: the file size before/after (free pages are reused; incremental_vacuum
   gives back what a shrinking history freed);
3b. the worst case of pruning: a copy whose raw window is lowered to 24 h, so each of 8 runs meets a backlog
   and spends its whole per-run budget (rows or time): _prune and incremental-vacuum times, rows, statements;
4. the end-of-run harness, in a fresh process each time, alternating empty / year so both see the same
   load: open the store, evaluate, record the run, render the status page + Prometheus file + report trends
   (alerts.build_extras): wall time and peak RSS (VmHWM), with the year of history vs an empty database;
5. unless --no-pytest: the same comparison with real `pytest --apimon POOL --apimon-html … --apimon-prometheus
   …` runs against bench/target.py (bench/run.py's helpers): wall time and peak RSS of the process tree.

Standard library + the plugin. Linux (/proc) for the pytest mode.
"""
# ruff: noqa: S311 - synthetic data, not cryptography

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
SERVICES = 10
EVERY = 900.0
ENV = "bench"


def keys_for(n: int) -> list[tuple[str, str, str]]:
    """(service, module, name) like bench/run.write_pool: svcNN / item i (i counts within the service)."""
    out = []
    per_service = [n // SERVICES + (1 if s < n % SERVICES else 0) for s in range(SERVICES)]
    for s, count in enumerate(per_service):
        out += [(f"svc{s:02d}", f"m{i // 5:05d}", f"item {i}") for i in range(count)]
    return out


def synth(rng: random.Random, base: float, checks: int):  # -> rollup.Stats
    from pytest_apimon.rollup import Stats

    failed = sum(rng.random() < 0.01 for _ in range(checks)) if checks <= 8 else int(rng.random() * 3)
    retried = int(rng.random() < 0.02 * checks)
    p50 = base * rng.uniform(0.9, 1.1)
    p95 = p50 * rng.uniform(1.0, 1.5)
    failures = {}
    if failed:
        failures[rng.choice(("timeout", "server_error", "network"))] = failed
    return Stats(checks, checks - failed, checks + retried, retried, p50, p95, p95 * rng.uniform(1.0, 1.3), failures)


def results_at(rng: random.Random, pool: list[tuple[str, str, str]], base: list[float], ts: float):
    from pytest_apimon.results import InterfaceResult

    out = []
    for (service, module, name), b in zip(pool, base, strict=True):
        bad = rng.random() < 0.01
        out.append(InterfaceResult(
            nodeid=f"pool/{service}/{module}.yaml::{name}", service=service, module=module, name=name,
            method="GET", url=f"http://127.0.0.1:9/{service}/items", outcome="failed" if bad else "passed",
            category="timeout" if bad else None, status=None if bad else 200, elapsed_ms=b * rng.uniform(0.7, 1.6),
            attempts=2 if rng.random() < 0.02 else 1, started_at=ts))
    return out


def build(db: Path, n: int, days: int, now: float, seed: int = 1) -> dict:
    from pytest_apimon import rollup
    from pytest_apimon.policy import evaluate
    from pytest_apimon.policy_settings import parse_policy
    from pytest_apimon.results import RunResult
    from pytest_apimon.state import StateStore

    rng = random.Random(seed)
    pool = keys_for(n)
    base = [rng.lognormvariate(4.3, 0.6) for _ in pool]  # ~75 ms median, some slow ones
    raw_start = rollup.day_floor(now - 2 * 86400)
    first_day = rollup.day_floor(now - days * 86400)
    hourly_from = rollup.hour_floor(max(now - 90 * 86400, first_day))
    t0 = time.perf_counter()
    with StateStore(db) as store:
        conn = store.conn
        conn.execute("BEGIN")
        ids = [store._key_id(f"{s}/{name}", s) for s, _, name in pool]
        day = first_day
        while day < raw_start:
            nxt = rollup.next_day(day)
            per_day = round((nxt - day) / EVERY)
            data, fails = rollup.encode({i: synth(rng, b, per_day) for i, b in zip(ids, base, strict=True)})
            conn.execute("INSERT INTO rollups VALUES (?, 'day', ?, ?, ?)", (ENV, day, data, fails))
            day = nxt
        hour = hourly_from
        while hour < raw_start:
            data, fails = rollup.encode({i: synth(rng, b, 4) for i, b in zip(ids, base, strict=True)})
            conn.execute("INSERT INTO rollups VALUES (?, 'hour', ?, ?, ?)", (ENV, hour, data, fails))
            hour += 3600
        for name, value in (("rolled_hour", raw_start), ("rolled_day", raw_start), ("raw_from", raw_start)):
            store._set_meta(ENV, name, value)
        conn.execute("COMMIT")
        synth_s = time.perf_counter() - t0
        settings = parse_policy(None)
        phase_ms: dict[str, list[float]] = {"_roll": [], "_prune": [], "_incremental_vacuum": []}
        for name, bucket in phase_ms.items():  # time the tier steps inside record_run
            setattr(store, name, _timed(getattr(store, name), bucket))
        record_ms: list[float] = []
        rollover_ms: list[float] = []
        ts = raw_start
        while ts < now - EVERY:
            results = results_at(rng, pool, base, ts)
            run = RunResult(ts, ts + 20, ENV, results)
            verdict = evaluate(store.load_states(ENV), results, settings, ts + 20, store.load_memory(ENV))
            t = time.perf_counter()
            store.record_run(run, verdict.states, verdict.memory, removed=verdict.removed, now=ts + 20)
            ms = (time.perf_counter() - t) * 1000
            (rollover_ms if rollup.day_floor(ts) != rollup.day_floor(ts - EVERY) else record_ms).append(ms)
            ts += EVERY
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        tiers = {tier: conn.execute("SELECT COUNT(*), COALESCE(SUM(LENGTH(data)), 0) FROM rollups WHERE tier = ?",
                                    (tier,)).fetchone() for tier in ("hour", "day")}
        info = {
            "synth_s": round(synth_s, 1),
            "raw_runs": conn.execute("SELECT COUNT(*) FROM runs").fetchone()[0],
            "raw_results": conn.execute("SELECT COUNT(*) FROM results").fetchone()[0],
            "hourly_rows": tiers["hour"][0], "hourly_blob_mb": round(tiers["hour"][1] / 1e6, 1),
            "daily_rows": tiers["day"][0], "daily_blob_mb": round(tiers["day"][1] / 1e6, 1),
            "load1": round(os.getloadavg()[0], 1),
            "record_ms_p50": round(statistics.median(record_ms), 1),
            "record_ms_max": round(max(record_ms), 1),
            "record_ms_day_rollover_max": round(max(rollover_ms), 1) if rollover_ms else None,
            **{f"{name.strip('_')}_ms_p50": round(statistics.median(v), 1) for name, v in phase_ms.items()},
            **{f"{name.strip('_')}_ms_max": round(max(v), 1) for name, v in phase_ms.items()},
            "next_ts": ts,
        }
    info["db_mb"] = round(db.stat().st_size / 1e6, 1)
    return info


def _timed(func, bucket: list[float]):  # type: ignore[no-untyped-def]
    def timed(*args):  # type: ignore[no-untyped-def]
        t = time.perf_counter()
        try:
            return func(*args)
        finally:
            bucket.append((time.perf_counter() - t) * 1000)
    return timed


def churn(db: Path, n: int, start: float, runs: int) -> dict:
    """More runs on the built history: does the file keep growing?"""
    from pytest_apimon.policy import evaluate
    from pytest_apimon.policy_settings import parse_policy
    from pytest_apimon.results import RunResult
    from pytest_apimon.state import StateStore

    rng = random.Random(9)
    pool = keys_for(n)
    base = [rng.lognormvariate(4.3, 0.6) for _ in pool]
    before = db.stat().st_size
    with StateStore(db) as store:
        ts = start
        for _ in range(runs):
            results = results_at(rng, pool, base, ts)
            verdict = evaluate(store.load_states(ENV), results, parse_policy(None), ts + 20, store.load_memory(ENV))
            store.record_run(RunResult(ts, ts + 20, ENV, results), verdict.states, verdict.memory, now=ts + 20)
            ts += EVERY
        store.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        free = store.conn.execute("PRAGMA freelist_count").fetchone()[0]
    return {"runs": runs, "before_mb": round(before / 1e6, 1), "after_mb": round(db.stat().st_size / 1e6, 1),
            "free_pages": free, "next_ts": ts}


def end_of_run(db: str, n: int, ts: float, out: str) -> None:
    """Child process: one run's end against `db`, as collector.py does it (no HTTP)."""
    t0 = time.perf_counter()
    from pytest_apimon import alerts, metrics, statuspage
    from pytest_apimon.policy import evaluate
    from pytest_apimon.policy_settings import parse_policy
    from pytest_apimon.results import RunResult
    from pytest_apimon.state import StateStore

    imported = time.perf_counter()
    rng = random.Random(3)
    pool = keys_for(n)
    base = [rng.lognormvariate(4.3, 0.6) for _ in pool]
    results = results_at(rng, pool, base, ts)
    run = RunResult(ts, ts + 20, ENV, results)
    rss_start = _vm_hwm_mb()
    t1 = time.perf_counter()
    cpu1 = time.process_time()
    with StateStore(db) as store:
        verdict = evaluate(store.load_states(ENV), results, parse_policy(None), ts + 20, store.load_memory(ENV))
        store.record_run(run, verdict.states, verdict.memory, removed=verdict.removed, now=ts + 20)
        t2 = time.perf_counter()
        page = statuspage.render_status_page(store, ENV, run, verdict, now=ts + 20)
        t3 = time.perf_counter()
        prom = metrics.render_prometheus(run, store, verdict)
        t4 = time.perf_counter()
        alerts.build_extras(run, verdict, store, "zh")
        t5 = time.perf_counter()
    statuspage.write_status_page(Path(out) / "status.html", page)
    metrics.atomic_write_text(Path(out) / "apimon.prom", prom)
    end = time.perf_counter()
    cpu = time.process_time() - cpu1
    print(json.dumps({"end_of_run_cpu_s": cpu,
        "import_s": imported - t0, "end_of_run_s": end - t1, "record_s": t2 - t1, "page_s": t3 - t2,
        "prom_s": t4 - t3, "extras_s": t5 - t4,
        "peak_rss_mb": _vm_hwm_mb(), "rss_before_mb": rss_start,
        "page_bytes": len(page.encode()), "prom_bytes": len(prom.encode())}))


def end_of_run_once(db: Path, n: int, ts: float, work: Path) -> dict:
    copy = work / "copy.db"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{copy}{suffix}").unlink(missing_ok=True)
    if db.exists():
        shutil.copyfile(db, copy)
    load = os.getloadavg()[0]
    got = subprocess.run([sys.executable, __file__, "--end-of-run", str(copy), "--n", str(n), "--ts", str(ts),
                          "--out", str(work)], capture_output=True, text=True, check=True)
    return {**json.loads(got.stdout.strip().splitlines()[-1]), "load1": load}


def _vm_hwm_mb() -> float:
    """Peak RSS of this process in MB (VmHWM). Not ru_maxrss: Linux carries that over an exec from the
    parent, so a child of a big parent reports the parent's peak (the ~77 MB both sides showed before)."""
    for line in Path("/proc/self/status").read_text(encoding="ascii").splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def harness(dbs: dict[str, Path], n: int, ts: float, repeats: int, work: Path) -> dict[str, dict]:
    """The end of a run against each database, ALTERNATING (empty, year, empty, year, …) so both see the same
    machine load; medians per database, with every repetition's end_of_run_s and load average kept."""
    rows: dict[str, list[dict]] = {name: [] for name in dbs}
    for _ in range(repeats):
        for name, db in dbs.items():
            rows[name].append(end_of_run_once(db, n, ts, work))
    out = {}
    for name, got in rows.items():
        out[name] = {k: round(statistics.median(r[k] for r in got), 3) for k in got[0]}
        out[name]["runs_s"] = [round(r["end_of_run_s"], 3) for r in got]
        out[name]["loads"] = [round(r["load1"], 1) for r in got]
    return out


def prune_backlog(db: Path, n: int, start: float, runs: int, raw_hours: float) -> dict:
    """Worst case of pruning: a copy of the history whose raw window is lowered to `raw_hours`, so every run
    finds a backlog and spends its whole budget (rows or time). Times _prune and the incremental vacuum."""
    from pytest_apimon.policy import evaluate
    from pytest_apimon.policy_settings import parse_policy
    from pytest_apimon.results import RunResult
    from pytest_apimon.state import StateStore

    rng = random.Random(5)
    pool = keys_for(n)
    base = [rng.lognormvariate(4.3, 0.6) for _ in pool]
    prune_ms: list[float] = []
    vacuum_ms: list[float] = []
    done = []
    with StateStore(db, raw_hours=raw_hours) as store:
        setattr(store, "_prune", _timed(store._prune, prune_ms))  # noqa: B010 - instance attribute on purpose
        setattr(store, "_incremental_vacuum", _timed(store._incremental_vacuum, vacuum_ms))  # noqa: B010
        ts = start
        for _ in range(runs):
            results = results_at(rng, pool, base, ts)
            verdict = evaluate(store.load_states(ENV), results, parse_policy(None), ts + 20, store.load_memory(ENV))
            store.record_run(RunResult(ts, ts + 20, ENV, results), verdict.states, verdict.memory, now=ts + 20)
            done.append(store.last_maintenance)
            ts += EVERY
        # The incremental vacuum's worst case: a history that shrank by a lot at once (setup, not timed: the
        # oldest half of the raw tier deleted in one statement), then what each run's bounded step costs.
        conn = store.conn
        conn.execute("DELETE FROM results WHERE run_id IN (SELECT id FROM runs ORDER BY id LIMIT"
                     " (SELECT COUNT(*) / 2 FROM runs))")
        free_before = conn.execute("PRAGMA freelist_count").fetchone()[0]
        steps: list[int] = []
        for _ in range(5):
            steps.append(store._incremental_vacuum())  # timed: wrapped above
    return {"runs": runs, "raw_hours": raw_hours, "load1": round(os.getloadavg()[0], 1),
            "vacuum_free_pages_before": free_before, "vacuum_step_pages": steps,
            "vacuum_step_ms": [round(x, 1) for x in vacuum_ms[-5:]],
            "prune_ms_max": round(max(prune_ms), 1), "prune_ms_p50": round(statistics.median(prune_ms), 1),
            "prune_ms": [round(x, 1) for x in prune_ms],
            "rows_per_run_max": max(d.results_deleted for d in done),
            "statements_per_run_max": max(d.statements for d in done),
            "out_of_budget_runs": sum(d.out_of_budget for d in done),
            "vacuum_ms_max": round(max(vacuum_ms), 1), "pages_vacuumed_max": max(d.pages_vacuumed for d in done)}


def pytest_runs(dbs: dict[str, Path | None], n: int, repeats: int, work: Path) -> dict[str, dict]:
    """Real pytest runs against each database (None: an empty state folder), alternating like harness()."""
    import run as bench_run

    target = bench_run.Target(0.005)
    try:
        pool = work / "pool"
        bench_run.write_pool(pool, n, 5)
        (work / "pytest.ini").write_text("[pytest]\n", encoding="utf-8")
        bench_run.write_config(work / "config.yaml", target.url, retries=0)
        walls: dict[str, list[float]] = {name: [] for name in dbs}
        peaks: dict[str, list[float]] = {name: [] for name in dbs}
        loads: dict[str, list[float]] = {name: [] for name in dbs}
        cpus: dict[str, list[float]] = {name: [] for name in dbs}
        for _, (name, db) in ((r, item) for r in range(repeats) for item in dbs.items()):
            state = work / ".apimon"
            shutil.rmtree(state, ignore_errors=True)
            state.mkdir()
            if db is not None:
                shutil.copyfile(db, state / "state.db")
            loads[name].append(round(os.getloadavg()[0], 1))
            cmd = [sys.executable, "-m", "pytest", "--apimon", str(pool), "-q", "-p", "no:cacheprovider",
                   "--apimon-config", str(work / "config.yaml"), "--apimon-html", str(work / "status.html"),
                   "--apimon-prometheus", str(work / "apimon.prom")]
            m = bench_run.measure(cmd, cwd=work, log=work / "pytest.log", sample_s=0.05, timeout=600)
            if m.rc not in (0, 1):
                raise SystemExit(f"pytest failed ({m.rc}): {m.stdout[-2000:]}")
            walls[name].append(m.wall_s)
            peaks[name].append(m.peak_mb)
            cpus[name].append(round(m.cpu_s, 2))
        return {name: {"wall_s": round(statistics.median(walls[name]), 2), "walls": [round(w, 2) for w in walls[name]],
                       "peak_mb": round(statistics.median(peaks[name]), 1), "peaks": peaks[name], "loads": loads[name],
                       "cpu_s": statistics.median(cpus[name]), "cpus": cpus[name]}
                for name in dbs}
    finally:
        target.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=1000)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-pytest", action="store_true")
    parser.add_argument("--reuse", action="store_true", help="reuse --workdir's year.db from an earlier build")
    parser.add_argument("--workdir", type=Path)
    parser.add_argument("--json", type=Path, help="write all figures here")
    parser.add_argument("--end-of-run", metavar="DB", help=argparse.SUPPRESS)
    parser.add_argument("--ts", type=float, help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.end_of_run:
        end_of_run(args.end_of_run, args.n, args.ts, args.out)
        return 0
    work = args.workdir or Path(tempfile.mkdtemp(prefix="apimon-history-"))
    work.mkdir(parents=True, exist_ok=True)
    db = work / "year.db"
    built = work / "year.json"
    report: dict = {"n": args.n, "days": args.days, "every_s": EVERY}
    if args.reuse and db.exists() and built.exists():
        report["build"] = json.loads(built.read_text(encoding="utf-8"))
    else:
        db.unlink(missing_ok=True)
        print(f"building {args.days} days x {args.n} interfaces in {db} …", flush=True)
        report["build"] = build(db, args.n, args.days, time.time())
        built.write_text(json.dumps(report["build"]), encoding="utf-8")
    print(json.dumps(report["build"]), flush=True)
    ts = report["build"]["next_ts"]
    churn_db = work / "churn.db"
    shutil.copyfile(db, churn_db)
    report["churn_one_day"] = churn(churn_db, args.n, ts, 96)
    print(json.dumps(report["churn_one_day"]), flush=True)
    churn_db.unlink()
    empty = work / "empty.db"
    empty.unlink(missing_ok=True)
    backlog_db = work / "backlog.db"
    shutil.copyfile(db, backlog_db)
    report["prune_backlog"] = prune_backlog(backlog_db, args.n, ts, 8, 24.0)
    print(json.dumps(report["prune_backlog"]), flush=True)
    for suffix in ("", "-wal", "-shm"):
        Path(f"{backlog_db}{suffix}").unlink(missing_ok=True)
    got = harness({"empty": empty, "year": db}, args.n, ts, args.repeats, work)
    report["harness_empty"], report["harness_year"] = got["empty"], got["year"]
    print(json.dumps({"empty": report["harness_empty"], "year": report["harness_year"]}), flush=True)
    if not args.no_pytest:
        got_runs = pytest_runs({"empty": None, "year": db}, args.n, args.repeats, work)
        report["pytest_empty"], report["pytest_year"] = got_runs["empty"], got_runs["year"]
        print(json.dumps({"empty": report["pytest_empty"], "year": report["pytest_year"]}), flush=True)
    if args.json:
        args.json.write_text(json.dumps(report, indent=2), encoding="utf-8")
    h0, h1 = report["harness_empty"], report["harness_year"]
    lines = [
        f"| state.db, {args.days} days, {args.n} interfaces | {report['build']['db_mb']} MB |",
        f"| end of run (record + page + metrics + trends), empty → year | {h0['end_of_run_s']:.2f} s → "
        f"{h1['end_of_run_s']:.2f} s (+{h1['end_of_run_s'] - h0['end_of_run_s']:.2f} s); "
        f"CPU {h0['end_of_run_cpu_s']:.2f} s → {h1['end_of_run_cpu_s']:.2f} s "
        f"(+{h1['end_of_run_cpu_s'] - h0['end_of_run_cpu_s']:.2f} s); load {h1['load1']} |",
        f"| peak RSS of that process, empty → year | {h0['peak_rss_mb']:.0f} MB → {h1['peak_rss_mb']:.0f} MB "
        f"(+{h1['peak_rss_mb'] - h0['peak_rss_mb']:.0f} MB) |",
        f"| status page | {h1['page_bytes'] / 1e6:.2f} MB |",
    ]
    if not args.no_pytest:
        p0, p1 = report["pytest_empty"], report["pytest_year"]
        lines += [f"| pytest run wall, empty → year | {p0['wall_s']} s → {p1['wall_s']} s "
                  f"(+{p1['wall_s'] - p0['wall_s']:.2f} s); CPU {p0['cpu_s']} s → {p1['cpu_s']} s "
                  f"(+{p1['cpu_s'] - p0['cpu_s']:.2f} s) |",
                  f"| pytest run peak RSS, empty → year | {p0['peak_mb']} MB → {p1['peak_mb']} MB "
                  f"(+{p1['peak_mb'] - p0['peak_mb']:.1f} MB) |"]
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
