"""Physical reference: a plain thread pool of `requests` workers in one process, no pytest.

    python bench/reference.py --base http://127.0.0.1:PORT --paths-file paths.txt --workers 32

With --one-cpu the process first pins itself to one CPU, as pytest-apimon pins its checking threads.

Sends one GET per line of the paths file, --workers at a time (one keep-alive Session per thread), and
prints one JSON object: {"wall_s", "n", "ok", "latencies_ms": [...]} (per-request time around
`session.get`, the same span as the plugin's `elapsed_ms`). bench/run.py runs it as a subprocess so its
memory and CPU are measured exactly like the plugin's.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import requests
from requests.adapters import HTTPAdapter


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--base", required=True)
    ap.add_argument("--paths-file", required=True)
    ap.add_argument("--workers", type=int, default=32)
    ap.add_argument("--timeout", type=float, default=10.0)
    ap.add_argument("--one-cpu", action="store_true",
                    help="first pin the process to the CPU it runs on (what pytest-apimon does while it checks, "
                         "pytest_apimon/affinity.py): the reference's own CPU on one CPU, for comparison")
    args = ap.parse_args(argv)
    if args.one_cpu and hasattr(os, "sched_setaffinity"):
        with open("/proc/thread-self/stat", encoding="ascii") as fh:
            os.sched_setaffinity(0, {int(fh.read().rpartition(")")[2].split()[36])})
    with open(args.paths_file, encoding="utf-8") as fh:
        paths = [line.strip() for line in fh if line.strip()]

    local = threading.local()

    def session() -> requests.Session:
        sess = getattr(local, "session", None)
        if sess is None:
            sess = requests.Session()
            sess.mount("http://", HTTPAdapter(pool_connections=1, pool_maxsize=1, max_retries=0))
            local.session = sess
        return sess

    def one(path: str) -> tuple[bool, float]:
        start = time.perf_counter()
        try:
            resp = session().get(args.base + path, timeout=args.timeout)
            ok = resp.status_code == 200 and resp.json().get("ok") is True
        except requests.RequestException:
            ok = False
        return ok, (time.perf_counter() - start) * 1000

    start = time.perf_counter()
    with ThreadPoolExecutor(args.workers) as pool:
        results = list(pool.map(one, paths))
    wall = time.perf_counter() - start
    json.dump(
        {"wall_s": wall, "n": len(paths), "ok": sum(ok for ok, _ in results),
         "latencies_ms": [round(ms, 2) for _, ms in results]},
        sys.stdout,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
