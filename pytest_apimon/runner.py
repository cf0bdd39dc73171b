"""In-process concurrency: check interfaces ahead of pytest's item loop, bounded and per-host capped.

pytest still runs items one after the other (so reporting order, -x, --lf and the progress line
keep their meaning); each item only *waits* for the result this runner already fetched. Retries of
transient failures are scheduled here, in the background, after their backoff, so the retries of
different interfaces overlap instead of queueing behind each other; the pytest-rerunfailures rerun
of an item then waits for that attempt instead of sleeping.

Rate limiting: a retry waits what the response's Retry-After asked for (all of one interface's such waits capped
together by RetryPolicy.max_wait), and a
429 lowers this run's concurrency to that host (halved per wave of 429s, at least 1) and holds new requests to it
until its Retry-After has passed, so the monitor stops adding to the rate limiter's count for the rest of the run.
"""

from __future__ import annotations

import heapq
import itertools
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from .categories import Category, Outcome
from .documents import Interface
from .failures import HANG_SUB
from .results import InterfaceResult
from .retries import RetryPolicy

if TYPE_CHECKING:
    from .hostslots import HostSlots
    from .inflight import Ledger


@dataclass
class _Attempt:
    done: threading.Event = field(default_factory=threading.Event)
    result: InterfaceResult | None = None
    started: bool = False
    started_at: float | None = None  # runner clock
    abandoned: bool = False  # the hang guard answered for it: its slot was given to the next attempt
    host_slot: Any = None  # its slot of the cross-worker per-host cap (hostslots.HostSlots), while it runs


@dataclass
class _Job:
    key: str
    seq: int
    interface: Interface
    host: str
    attempts: dict[int, _Attempt] = field(default_factory=dict)
    waited: float = 0.0  # seconds waited on Retry-After before its retries (RetryPolicy.wait_after)


def host_of(url_or_path: str, fallback: str) -> str:
    netloc = urlsplit(url_or_path).netloc
    return netloc.lower() if netloc else fallback


class Runner:
    """Runs `check` for a run's interfaces ahead of pytest's item loop, with bounded concurrency, and hands each
    item its result.

    Threads: one dispatcher thread (`apimon-dispatch`, daemon) picks the next ready attempt in job order and
    submits it to a ThreadPoolExecutor of `concurrency` worker threads (`apimon_N`); pytest's thread only waits
    in result(). All shared state is guarded by one Condition. At most `max_per_host` attempts to one host run
    at once (lowered for the rest of the run after 429 answers). A transient failure (a category in
    `retry.on`) is retried in the background after `retry.wait_after` seconds (backoff `delay * factor ** (n -
    1)` or the response's Retry-After), up to `retry.retries` extra attempts, so pytest-rerunfailures' rerun
    finds it ready. Times: seconds throughout, measured on `clock` (monotonic by default).

    Lifecycle: start(jobs) once, result(key, attempt) per item and attempt (any thread), stop() on -x/--maxfail,
    close() at the end (always; it does not wait for a check the hang guard gave up on).
    """

    def __init__(
        self,
        check: Callable[[Interface], InterfaceResult],
        *,
        concurrency: int,
        max_per_host: int,
        retry: RetryPolicy,
        host: Callable[[Interface], str],
        clock: Callable[[], float] = time.monotonic,
        deadline: Callable[[Interface], float] | None = None,
        poll: float = 1.0,
        wait: Callable[[threading.Condition, float | None], object] | None = None,
        slots: HostSlots | None = None,
        ledger: Ledger | None = None,
    ) -> None:
        """`check(interface)`: one attempt (engine.Engine.check), called on a worker thread; an exception it
        raises becomes an `unexpected`/`error` result for that attempt, never a dead thread. `concurrency`:
        worker threads (at least 1); `max_per_host`: attempts in flight to one host (at least 1); `retry`: which
        categories are retried, how often and after how many seconds (retries.RetryPolicy); `host(interface)`:
        the key of the per-host cap (host_of: the URL's netloc, lower case).
        `deadline(interface)`: seconds one attempt may run before its waiter gives up with a `timeout`/`hang`
        result (a check stuck outside the request's own deadline, e.g. in name resolution, must not block the
        run); None waits without bound. `poll`: seconds between deadline checks while waiting.
        `clock` (seconds, monotonic) dates backoffs and Retry-After holds; `wait(cond, seconds)` is how the
        dispatcher waits for the next due retry while holding `cond` (default `cond.wait(seconds)`; None: until
        notified). Tests inject a fake clock and a wait that returns when that clock is advanced.
        `slots`: the per-host cap across the run's processes (hostslots.HostSlots; xdist workers when the cap
        is smaller than their number): an attempt also holds one of its host's slots while it runs; a host whose
        slots are all held elsewhere is tried again every `slots.poll` seconds. `ledger`: where an xdist worker
        notes each attempt's start and end (inflight.Ledger), so that its death is blamed only where it can be."""
        self._check = check
        self._concurrency = max(1, concurrency)
        self._max_per_host = max(1, max_per_host)
        self._retry = retry
        self._host = host
        self._clock = clock
        self._wait = wait or (lambda cond, seconds: cond.wait(seconds))
        self._deadline = deadline
        self._poll = poll
        self._slots = slots
        self._ledger = ledger
        self._hung = False
        self._cond = threading.Condition()
        self._jobs: dict[str, _Job] = {}
        self._queues: dict[str, deque[tuple[_Job, int]]] = {}  # per host, ready to run, in order
        self._delayed: list[tuple[float, int, str, int]] = []  # (ready_at, seq, key, attempt): backoff
        self._active = 0
        self._active_per_host: dict[str, int] = {}
        self._host_cap: dict[str, int] = {}  # per-host caps lowered after 429s, for the rest of the run
        # host -> clock() before which nothing new is sent (Retry-After; or all its cross-worker slots were held)
        self._host_hold: dict[str, float] = {}
        self._rate_limited: dict[str, int] = {}  # host -> 429 answers seen
        self._sent = 0  # requests dispatched so far (orders requests against the caps' cuts)
        self._cut_after: dict[str, int] = {}  # host -> self._sent when its cap was last lowered
        self._stopped = False
        self._tie = itertools.count()
        self._pool = ThreadPoolExecutor(self._concurrency, thread_name_prefix="apimon")
        self._dispatcher = threading.Thread(target=self._dispatch_loop, name="apimon-dispatch", daemon=True)

    # -- public API -------------------------------------------------------------------------------
    def start(self, jobs: list[tuple[str, Interface]]) -> None:
        """Queue attempt 1 of every (key, interface) in `jobs`, in that order (keys unique: the item's nodeid),
        and start the dispatcher thread. Call once; a second call raises RuntimeError (threads start once)."""
        with self._cond:
            for seq, (key, itf) in enumerate(jobs):
                job = _Job(key, seq, itf, self._host(itf))
                self._jobs[key] = job
                self._enqueue(job, 1)
        self._dispatcher.start()

    def result(self, key: str, attempt: int = 1) -> InterfaceResult | None:
        """Wait for attempt `attempt` (1-based) of `key`; schedules it now, ahead of the queue, if nothing
        scheduled it (e.g. --reruns for a non-transient failure). Blocks the calling thread; with a `deadline`
        it gives up after that many seconds of the attempt running and returns a `timeout` result with sub
        'hang' (the hang guard).

        Returns the attempt's InterfaceResult, or None: `key` is not prefetched here (the caller checks it
        itself), or the run was stopped before the attempt started. Raises nothing."""
        with self._cond:
            job = self._jobs.get(key)
            if job is None:
                return None
            att = job.attempts.get(attempt)
            if att is None:
                if self._stopped:
                    return None
                self._enqueue(job, attempt, urgent=True)  # e.g. --reruns for a non-transient failure
                att = job.attempts[attempt]
        if self._deadline is None:
            att.done.wait()
            return self._hand_over(att)
        limit = self._deadline(job.interface)
        while not att.done.wait(self._poll):
            with self._cond:
                started_at = att.started_at
                if att.done.is_set() or started_at is None or self._clock() - started_at <= limit:
                    continue
                hung = self._failure(job, f"no result within {limit:g} s: the check hung (hang guard)",
                                     category=Category.TIMEOUT, sub=HANG_SUB)
                self._hung = True
                self._abandon(job, att)
                self._finish(job, attempt, hung)
        return self._hand_over(att)

    def busy(self) -> bool:
        """Whether any attempt is running or waiting to run (queued, or due after its backoff)."""
        with self._cond:
            return self._active > 0 or bool(self._delayed) or any(self._queues.values())

    def answers(self, key: str) -> bool:
        """Whether result(key, …) will hand over a result fetched here (the item need not check itself)."""
        with self._cond:
            return key in self._jobs and not self._stopped

    def _abandon(self, job: _Job, att: _Attempt) -> None:
        """The hang guard gave up on `att` (self._cond held): its thread may never come back, so its slot goes to
        the next attempt, run by a fresh pool (the stuck thread keeps the old one). Otherwise checks hung in every
        slot of the run, or of a host whose cap a 429 lowered, leave the attempts behind them never started,
        and their waiters (the deadline counts from the start) wait for ever: a prefetched item has no
        pytest-timeout marker (plugin.pytest_runtestloop)."""
        att.abandoned = True
        self._active -= 1
        self._active_per_host[job.host] -= 1
        self._release_slot(att)
        stuck, self._pool = self._pool, ThreadPoolExecutor(self._concurrency, thread_name_prefix="apimon")
        stuck.shutdown(wait=False)  # its other threads finish what they run and end
        self._cond.notify_all()

    def _hand_over(self, att: _Attempt) -> InterfaceResult | None:
        """The attempt's result, given away: the item keeps it, the Runner no longer holds it (a 10 000-interface
        run would otherwise keep every result twice until the end). Each attempt is asked for once."""
        with self._cond:
            result, att.result = att.result, None
        return result

    def stop(self) -> None:
        """Issue no new requests (-x / --maxfail reached); running ones finish."""
        with self._cond:
            self._stopped = True
            for att in (a for job in self._jobs.values() for a in job.attempts.values()):
                if not att.started:
                    att.done.set()  # never going to run: release any waiter (it gets None)
            self._cond.notify_all()

    def close(self) -> None:
        """stop(), then shut the worker pool down: waits for running checks unless the hang guard gave up on one
        (such a check may never return and must not hold back the report). Idempotent."""
        self.stop()
        # A check the hang guard gave up on may never return: do not let it hold the end of the run (the report).
        self._pool.shutdown(wait=not self._hung, cancel_futures=True)
        if self._ledger is not None:
            self._ledger.close()  # (a stuck check that returns later reopens it to note its end)

    def rate_limited_hosts(self) -> dict[str, tuple[int, int]]:
        """host -> (429 answers seen, concurrency to it now) for every host that rate-limited this run."""
        with self._cond:
            return {h: (n, self._host_cap.get(h, self._max_per_host)) for h, n in self._rate_limited.items()}

    # -- internals (self._cond held) -----------------------------------------------------------
    def _enqueue(self, job: _Job, attempt: int, delay: float = 0.0, urgent: bool = False) -> None:
        job.attempts.setdefault(attempt, _Attempt())
        if delay > 0:
            heapq.heappush(self._delayed, (self._clock() + delay, next(self._tie), job.key, attempt))
        else:
            queue = self._queues.setdefault(job.host, deque())
            (queue.appendleft if urgent else queue.append)((job, attempt))
        self._cond.notify_all()

    def _next_ready(self) -> tuple[_Job, int] | None:
        now = self._clock()
        while self._delayed and self._delayed[0][0] <= now:
            _, _, key, attempt = heapq.heappop(self._delayed)
            job = self._jobs[key]
            # A due retry is more urgent than first attempts: pytest is (or soon will be) waiting for it.
            self._queues.setdefault(job.host, deque()).appendleft((job, attempt))
        if self._active >= self._concurrency:
            return None
        best: tuple[int, str] | None = None
        for host, queue in self._queues.items():
            if self._host_hold.get(host, 0.0) > now:
                continue
            if queue and self._active_per_host.get(host, 0) < self._host_cap.get(host, self._max_per_host):
                job, attempt = queue[0]
                rank = -1 if attempt > 1 else job.seq
                if best is None or rank < best[0]:
                    best = (rank, host)
        if best is None:
            return None
        _, host = best
        slot = None
        if self._slots is not None:
            slot = self._slots.try_acquire(host)
            if slot is None:  # all its slots are held by other workers: try again after a poll
                self._host_hold[host] = max(self._host_hold.get(host, 0.0), now + self._slots.poll)
                return self._next_ready()
        job, attempt = self._queues[host].popleft()
        job.attempts[attempt].host_slot = slot
        return job, attempt

    def _release_slot(self, att: _Attempt) -> None:
        if att.host_slot is not None and self._slots is not None:
            slot, att.host_slot = att.host_slot, None
            self._slots.release(slot)

    def _back_off(self, host: str, hold: float, sent: int) -> None:
        """A 429 from `host` for the request dispatched `sent`-th: halve the host's concurrency for the rest of the
        run, once per wave (429s of requests already in flight at the last cut do not cut again, as TCP's
        congestion control cuts once per window); hold new requests to it for `hold` s."""
        self._rate_limited[host] = self._rate_limited.get(host, 0) + 1
        if sent > self._cut_after.get(host, 0):
            self._host_cap[host] = max(1, self._host_cap.get(host, self._max_per_host) // 2)
            self._cut_after[host] = self._sent
        if hold > 0:
            self._host_hold[host] = max(self._host_hold.get(host, 0.0), self._clock() + hold)

    def _dispatch_loop(self) -> None:
        with self._cond:
            while True:
                if self._stopped:
                    return
                picked = self._next_ready()
                if picked is None:
                    # Woken by every enqueue, completion and stop; otherwise when the next backoff or hold ends.
                    now = self._clock()
                    due = [t for t in self._host_hold.values() if t > now]
                    if self._delayed:
                        due.append(self._delayed[0][0])
                    # huge waits overflow the OS timer
                    self._wait(self._cond, min(max(0.0, min(due) - now), 3600.0) if due else None)
                    continue
                job, attempt = picked
                job.attempts[attempt].started = True
                job.attempts[attempt].started_at = self._clock()
                self._active += 1
                self._active_per_host[job.host] = self._active_per_host.get(job.host, 0) + 1
                self._sent += 1
                if self._ledger is not None:
                    self._ledger.started(job.key)
                self._pool.submit(self._run, job, attempt, self._sent)

    def _run(self, job: _Job, attempt: int, sent: int = 0) -> None:
        try:
            result = self._check(job.interface)
        except BaseException as exc:  # a bug must surface on the item, not kill the thread silently
            result = self._failure(job, f"internal error: {type(exc).__name__}: {exc}",
                                   category=Category.UNEXPECTED, sub="error")
        if self._ledger is not None:
            self._ledger.finished(job.key)
        with self._cond:
            if not job.attempts[attempt].abandoned:  # else its slot was already given away (_abandon)
                self._active -= 1
                self._active_per_host[job.host] -= 1
                self._release_slot(job.attempts[attempt])
            if not job.attempts[attempt].done.is_set():  # else the hang guard already answered for it
                self._finish(job, attempt, result, sent)

    @staticmethod
    def _failure(job: _Job, reason: str, *, category: Category, sub: str) -> InterfaceResult:
        itf = job.interface
        return InterfaceResult(
            nodeid=job.key, service=itf.service, module=itf.module, name=itf.name, method=itf.method,
            url=itf.url or itf.path or "", file=itf.file, line=itf.line, tags=list(itf.tags),
            outcome=Outcome.FAILED, category=category, sub=sub, reason=reason,
        )

    def _finish(self, job: _Job, attempt: int, result: InterfaceResult, sent: int = 0) -> None:
        """Record an attempt's result (self._cond held) and schedule its retry, after its backoff or the
        response's Retry-After; a 429 also backs the run off its host (`sent`: the request's dispatch number)."""
        result.attempts = attempt
        att = job.attempts[attempt]
        att.result = result
        wait = self._retry.wait_after(result, attempt, job.waited)
        if result.outcome == Outcome.FAILED and result.category == Category.RATE_LIMITED:
            self._back_off(job.host, wait if result.retry_after is not None else 0.0, sent)
        if self._retry.wants_retry(result, attempt) and not self._stopped:
            if result.retry_after is not None:
                job.waited += wait
            self._enqueue(job, attempt + 1, delay=wait)
        self._cond.notify_all()
        att.done.set()
