"""Keeping a run's checking threads on one CPU while they check (Linux CPU affinity, sched_setaffinity(2)).

Why: CPython runs one thread's bytecode at a time (the GIL). While a run checks, pytest's thread (the item
protocol) and the Runner's threads (the requests) hand the GIL to one another thousands of times; when they sit on
different CPUs, every hand-over wakes the other CPU and moves the interpreter's shared data between the two CPUs'
caches. On one CPU a hand-over is a plain context switch. Measured on the 2-core benchmark machine
(docs/benchmarks.md, "sixth pass"): 1000 interfaces in-process took 1.71-1.85 CPU-s spread over both CPUs and
1.39-1.53 on one, with the same wall time; the same CPU-bound run without latency was faster on one CPU too.

The price: a kernel cannot move pinned threads to an idle CPU later. So the CPU is chosen when the checks start
(choose_cpu): an in-process run stays on the CPU the scheduler runs it on then, and an xdist worker takes its
share's place in the allowed CPUs (so `-n 2` on 2 CPUs uses both). pytest's thread is
pinned for the item loop only (the Runner's threads, started from it, inherit the pin) and gets its affinity back
after the loop: the report, the state and the notification run where the kernel puts them.

Everything here is best effort: on a platform without sched_setaffinity (macOS, Windows), in a cpuset of one CPU,
or when the kernel refuses, nothing is pinned and the run is unchanged.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path

MODES = ("auto", "off")  # apimon_cpu_affinity: auto pins the checking threads (this module), off never does


def allowed_cpus() -> frozenset[int]:
    """The CPUs the calling thread may run on (os.sched_getaffinity); empty where the platform has no such call."""
    getter = getattr(os, "sched_getaffinity", None)
    if getter is None:
        return frozenset()
    try:
        return frozenset(getter(0))
    except OSError:
        return frozenset()


def current_cpu(path: str | Path = "/proc/thread-self/stat") -> int | None:
    """The CPU the calling thread last ran on: field 39 ("processor") of proc(5)'s stat file, counted after the
    parenthesised command name (which may itself hold spaces and parentheses). None when unknown."""
    try:
        text = Path(path).read_text(encoding="ascii", errors="replace")
    except OSError:
        return None
    fields = text.rpartition(")")[2].split()
    # Fields 1 (pid) and 2 (comm) are before the last ')': field 39 is the 37th after it.
    if len(fields) < 37 or not fields[36].isdigit():
        return None
    return int(fields[36])


def choose_cpu(allowed: Collection[int], *, share: int | None = None, current: int | None = None) -> int | None:
    """Where the checking threads go, or None when there is no choice to make (fewer than 2 allowed CPUs).
    `share`: an xdist worker's share index (sharding.share_index): worker k takes the k-th allowed CPU, modulo
    their number, so the workers spread over the CPUs whatever the load when they start. Otherwise `current`
    (current_cpu), the CPU the kernel's scheduler runs pytest's thread on when the checks start (its caches are
    warm, and the scheduler has balanced the machine's load up to then), when it is allowed; else the lowest."""
    if len(allowed) < 2:
        return None
    if share is not None:
        return sorted(allowed)[share % len(allowed)]
    return current if current in allowed else min(allowed)


@dataclass
class Pin:
    """A thread's CPU affinity as it was before pin_thread narrowed it; release() gives it back."""

    previous: frozenset[int]
    cpu: int
    threads_before: frozenset[int]  # kernel ids of the process's threads when it was pinned (thread_ids)
    children_before: frozenset[int] = frozenset()  # its child processes then (child_ids)

    def release(self) -> None:
        """Restore the calling thread's affinity (call it from the thread that was pinned), and that of every
        thread started since the pin that still runs (thread_ids: also threads the threading module does not
        know): they inherited the pin, and some live as long as the process (probe.py's deadline watchdog), so
        they would otherwise keep it for later runs in the same process. Likewise every child process started
        since the pin that still has exactly the pinned CPU (child_ids; not grandchildren). Never raises."""
        for tid in thread_ids() - self.threads_before:
            _set_affinity(tid, self.previous)
        for pid in child_ids() - self.children_before:
            # A process started during the pin (a helper a user's test or fixture starts) inherited it; one that
            # narrowed its own affinity meanwhile is left as it chose.
            try:
                pinned = os.sched_getaffinity(pid) == {self.cpu}
            except OSError:
                continue
            if pinned:
                _set_affinity(pid, self.previous)
        _set_affinity(0, self.previous)


def thread_ids() -> frozenset[int]:
    """The kernel ids of this process's threads: /proc/self/task (proc(5)), which also lists threads the threading
    module does not know (`_thread.start_new_thread`, a C extension's own threads); where it cannot be read, the
    threading module's threads."""
    try:
        return frozenset(int(name) for name in os.listdir("/proc/self/task") if name.isdigit())
    except OSError:
        return frozenset(t.native_id for t in threading.enumerate() if t.native_id is not None)


def child_ids() -> frozenset[int]:
    """The pids of this process's running children: /proc/self/task/<tid>/children (proc(5), a kernel with
    CONFIG_PROC_CHILDREN); empty where it cannot be read."""
    found: set[int] = set()
    for tid in thread_ids():
        try:
            with open(f"/proc/self/task/{tid}/children", encoding="ascii") as fh:
                found.update(int(pid) for pid in fh.read().split() if pid.isdigit())
        except OSError:
            continue
    return frozenset(found)


def _set_affinity(tid: int, cpus: Collection[int]) -> bool:
    try:
        os.sched_setaffinity(tid, cpus)
    except (OSError, ValueError, AttributeError):  # ended meanwhile; refused; no such call
        return False
    return True


def pin_thread(cpu: int) -> Pin | None:
    """Narrow the calling thread's CPU affinity to `cpu`. On Linux, sched_setaffinity(2) with pid 0 applies to the
    calling thread only; threads and processes it starts afterwards inherit the affinity. Returns the Pin to
    release, or None when the platform has no affinity call or the kernel refused (a cpuset without that CPU,
    a seccomp profile): then nothing changed."""
    previous = allowed_cpus()
    if not previous:
        return None
    threads, children = thread_ids(), child_ids()
    if not _set_affinity(0, {cpu}):
        return None
    return Pin(previous, cpu, threads, children)
