"""Retries, in one place: the policy, its merge with pytest-rerunfailures' options, the markers that carry it
to every item (rerun filter by exception type, per-attempt hang guard), attempt counting and the JUnit
de-duplication of reruns.

Who does what: in a single process `runner.Runner` fetches every attempt ahead of pytest and waits the
backoff itself; pytest-rerunfailures then reruns the item, which only picks up that attempt. Under xdist the
worker's rerunfailures reruns the item and sleeps the backoff (its `reruns_delay_backoff_factor`, since 16.4).
Either way only a `TransientFailure` (a failure of a `Category.transient` category) is rerun.

The policy half is plain Python; the pytest half imports pytest only inside its functions, so `runner.py`
(core, no pytest) can import `RetryPolicy` from here.
"""

from __future__ import annotations

import signal
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pluggy import HookimplMarker

from .categories import TRANSIENT, Category, Outcome
from .failures import HANG_SUB, TransientFailure
from .results import InterfaceResult

if TYPE_CHECKING:
    import pytest

    from .config import Defaults
    from .items import InterfaceItem
    from .runstate import ApimonRun

_hookimpl = HookimplMarker("pytest")  # = pytest.hookimpl, without importing pytest into the core
HANG_GUARD_SLACK = 5.0  # seconds on top of Engine.attempt_budget (and the longest backoff)


@dataclass
class RetryPolicy:
    """`retries` extra attempts after the first, for failures of a category in `on`.

    Waits `delay * factor ** (n - 1)` seconds after failed attempt n (1-based): 1 s, 2 s, 4 s by default;
    the same rule as pytest-rerunfailures' `--reruns-delay` with `--reruns-delay-backoff-factor`. A response's
    Retry-After (RFC 9110 §10.2.3) replaces the backoff, all of one interface's such waits capped together by
    `max_wait` seconds (see wait_after)."""

    retries: int = 3
    delay: float = 1.0  # seconds before the first retry
    factor: float = 2.0  # then 2 s, 4 s, ...
    on: frozenset[Category] = TRANSIENT
    # The run's deadline for Retry-After: all of one interface's Retry-After waits together stay within this
    # (a longer one is cut to it), so a server answering `Retry-After: 99999999` costs one bounded wait, not one
    # per retry. Once it is spent a retry still waits at least the normal backoff (Retry-After permitting).
    max_wait: float = 30.0
    # Runner schedules retries ahead of pytest; off when the user's --only-rerun/--rerun-except decides what
    # pytest-rerunfailures reruns (a regex over the failure text Runner cannot know in advance).
    ahead: bool = True

    def backoff(self, failed_attempt: int) -> float:
        """Seconds to wait after the failed `failed_attempt` (1-based) before the next one."""
        return self.delay * self.factor ** (failed_attempt - 1)

    def wait_after(self, result: InterfaceResult, failed_attempt: int, waited: float = 0.0) -> float:
        """Seconds before the next attempt: the response's Retry-After (RFC 9110 §10.2.3; delay-seconds and an
        HTTP date alike, classify.retry_after) within what is left of max_wait after `waited` (seconds this
        interface already waited on Retry-After), but at least the normal backoff; else the normal backoff."""
        backoff = self.backoff(failed_attempt)
        if result.retry_after is not None:
            left = max(0.0, self.max_wait - waited)
            return min(max(0.0, result.retry_after), max(left, min(backoff, self.max_wait)))
        return backoff

    def longest_wait(self) -> float:
        """The longest wait before any retry, in seconds (for the hang guard)."""
        return max(self.backoff(self.retries), self.max_wait) if self.retries else 0.0

    def wants_retry(self, result: InterfaceResult, attempt: int) -> bool:
        """Whether failed attempt `attempt` (1-based) of `result` gets another one, scheduled by Runner."""
        return self.ahead and result.outcome == Outcome.FAILED and result.category in self.on \
            and result.sub != HANG_SUB and attempt <= self.retries


# -- pytest shell ------------------------------------------------------------------------------------------
def policy_from_options(config: pytest.Config, defaults: Defaults) -> RetryPolicy:
    """The run's policy: `--reruns`, `--reruns-delay`, `--reruns-delay-backoff-factor` (pytest-rerunfailures)
    when given, else the config's `defaults.retries`, `retry_delay`, `backoff_factor`. No rerunfailures
    plugin (`-p no:rerunfailures`): no retries. A user's rerun filter turns off retries ahead of pytest."""
    reruns = config.getoption("reruns", None) if config.pluginmanager.hasplugin("rerunfailures") else 0
    delay = config.getoption("reruns_delay", None)
    factor = config.getoption("reruns_delay_backoff_factor", None)
    return RetryPolicy(
        retries=defaults.retries if reruns is None else reruns,
        delay=defaults.retry_delay if delay is None else delay,
        factor=defaults.backoff_factor if factor is None else factor,
        max_wait=defaults.max_retry_after,
        ahead=not (_user_filter(config, "only_rerun") or _user_filter(config, "rerun_except")),
    )


def _user_filter(config: pytest.Config, name: str) -> bool:
    """The user gave --only-rerun / --rerun-except (`name` with underscores), on the CLI or as an ini key."""
    if not config.pluginmanager.hasplugin("rerunfailures"):
        return False
    return bool(config.getoption(name, None) or _ini(config, name))


def _ini(config: pytest.Config, name: str) -> object:
    try:
        return config.getini(name)
    except ValueError:  # not registered (an older pytest-rerunfailures)
        return None


class RerunDriver:
    """Retries of interface items through pytest-rerunfailures, without its `flaky` marker.

    The `flaky` package (a common test dependency) claims the same marker name: with it installed, a
    `flaky(reruns=…)` marker on our items failed every interface with "_make_test_flaky() got an unexpected
    keyword argument 'reruns'", and whichever of the two plugins' pytest_runtest_protocol runs first takes every
    item (pluggy calls plain hookimpls in reverse registration order, and entry points load in no fixed order), so
    retries could also silently not happen. So for our items only, this tryfirst hook calls rerunfailures' own
    protocol with our settings put in place of its global options (`--reruns`, `--reruns-delay`,
    `--reruns-delay-backoff-factor`, `--only-rerun`) for the duration of that one item; rerunfailures reads them
    only inside its protocol (the count, the delay, the filter in makereport and teardown). Users' own test
    functions in the pool and their `flaky` markers are left to whichever plugin they use.

    The filter is `only_rerun=[TransientFailure]`: rerunfailures (>= 16.2) matches exception classes with
    isinstance, so only failures of a transient category are rerun, whatever the failure text says. A user's
    `--only-rerun` (CLI or ini) replaces it; a user's `--rerun-except` applies on top of it.
    """

    def __init__(self, run: ApimonRun, config: pytest.Config, protocol: Callable[..., object]) -> None:
        self.protocol = protocol
        retry = run.retry
        # No retries: pytest's own protocol, as for any other item; except where xdist itself runs a crashed
        # item again (CrashRerun): rerunfailures' protocol then skips the item whose crash was its last attempt.
        self.active = retry.retries > 0 or requeues_crashed_items(config)
        settings: dict[str, object] = {
            "reruns": retry.retries,
            # In-process the Runner already waited the backoff before the next attempt.
            "reruns_delay": 0 if run.inprocess and retry.ahead else retry.delay,
            "reruns_delay_backoff_factor": 1.0 if run.inprocess and retry.ahead else retry.factor,
        }
        if not _user_filter(config, "only_rerun"):
            settings["only_rerun"] = [TransientFailure]
        missing = object()
        self.settings = {k: v for k, v in settings.items() if getattr(config.option, k, missing) is not missing}

    @_hookimpl(tryfirst=True)
    def pytest_runtest_protocol(self, item: pytest.Item, nextitem: pytest.Item | None) -> object:
        """rerunfailures' protocol for an interface item (True: done); None for every other item."""
        if not self.active or getattr(item, "interface", None) is None:  # not an InterfaceItem
            return None
        option = item.config.option
        saved = {name: getattr(option, name) for name in self.settings}
        for name, value in self.settings.items():
            setattr(option, name, value)
        try:
            return self.protocol(item, nextitem)
        finally:
            for name, value in saved.items():
                setattr(option, name, value)


def register_rerun_driver(config: pytest.Config, run: ApimonRun) -> None:
    """Register the RerunDriver when pytest-rerunfailures is installed (else there are no retries), and on an
    xdist controller the CrashRerun hooks."""
    rerunfailures = config.pluginmanager.getplugin("rerunfailures")
    if rerunfailures is not None and hasattr(rerunfailures, "pytest_runtest_protocol"):
        driver = RerunDriver(run, config, rerunfailures.pytest_runtest_protocol)
        config.pluginmanager.register(driver, "apimon-reruns")
    if run.is_worker:
        # Also when the driver is idle: with `--reruns 0` rerunfailures' own protocol still asks its status DB for
        # every item (a red team measured 1000 interfaces under -n 2: 23-25 s, against 2.7 s with retries).
        no_delayed_status_db(config)
    if not run.is_worker and config.pluginmanager.hasplugin("xdist"):
        config.pluginmanager.register(CrashRerun(run, config), "apimon-crash-reruns")


# xdist's schedulers that put a crashed worker's unfinished work unit back in the queue whole, the item that
# was running when the worker died included (LoadScopeScheduling.remove_node; loadfile and loadgroup subclass
# it): that item runs again whatever pytest-rerunfailures decides, since they do not implement
# mark_test_pending.
_REQUEUEING_DIST_MODES = ("loadscope", "loadfile", "loadgroup")


def requeues_crashed_items(config: pytest.Config) -> bool:
    """Whether this xdist run's scheduler runs a crashed item again by itself (`--dist loadscope`, `loadfile`,
    `loadgroup`; see CrashRerun). A worker is told by the controller (xdist sets a worker's `dist` to "no")."""
    workerinput = getattr(config, "workerinput", None)
    if workerinput is not None:
        return bool(workerinput.get("apimon_requeues_crashes"))
    # xdist's own test for distribution (its _is_distribution_mode): workers to start (`-n`, `--tx`) and a mode.
    return bool(getattr(config.option, "tx", None)) and config.getvalue("dist") in _REQUEUEING_DIST_MODES


class CrashRerun:
    """xdist controller: one final outcome per interface whose check killed its worker (xdist's public
    `pytest_handlecrashitem` hook, which may change the report it is given).

    xdist reports such an item failed, from the controller, with `when="???"`; pytest-rerunfailures (its own
    implementation of the hook, run before this trylast one) turns it into a rerun and queues the item again
    while retries are left, through `sched.mark_test_pending`. Two things remained wrong:

    - `--dist loadscope` / `loadfile` / `loadgroup`: their scheduler does not implement mark_test_pending, so
      rerunfailures leaves the crash failed ("could not be rescheduled") — yet the scheduler itself had already
      queued the item again with the rest of its work unit, and it ran: pytest counted the crash failed *and*
      the rerun passed (one interface, two outcomes), while the report and JSON showed the rerun. Here the
      crash is a rerun while retries are left, as under the default scheduler; after the last one it stays
      failed, and RerunDriver's protocol on the worker skips the item xdist queued again (rerunfailures'
      protocol returns at once for an item that already failed more often than its retries allow).
    - A crash right after the item started (its setup) could reach this side before the retries the worker
      announced for it over rerunfailures' status connection: rerunfailures then saw none and left the crash
      failed, at random (once in a CI run). The run's own retry setting decides for an interface.
    - A final crash's `when="???"` made junitxml write an <error> where pytest's terminal and the report say
      failed; it is the check (the call phase) that died, so it is reported as a call failure: <failure>.
    - A prefetching worker runs many checks at once in its Runner's threads, and xdist blames its death on the
      item the main thread was on, often a healthy interface waiting for its result (a red team: a false
      `crash` alert in 4 of 4 runs). When the worker's in-flight ledger (inflight.py) shows other checks were
      running, the blame is not certain: with `retries: 0` the named item is checked once more on its own
      (_verify), and the suspects go back to the queue with the dead worker's other items, so a killer is
      blamed where nothing else was in flight; a second uncertain death on its last attempt is "not checked"
      (skipped, `apimon_unchecked`, the suspects named): its alert state is left alone and the run is
      incomplete (exit 2).

    Only interface items (a document under an --apimon pool); a user's own tests are left to xdist and
    rerunfailures."""

    def __init__(self, run: ApimonRun, config: pytest.Config) -> None:
        self.run = run
        self.config = config
        self._verified: set[str] = set()  # queued once more after an uncertain blame (_verify)

    def pytest_configure_node(self, node: object) -> None:
        node.workerinput["apimon_requeues_crashes"] = requeues_crashed_items(self.config)  # type: ignore[attr-defined]

    @_hookimpl(trylast=True)
    def pytest_handlecrashitem(self, crashitem: str, report: pytest.TestReport, sched: object) -> None:
        if self.run.interface_document(crashitem, self.config.rootpath) is None:
            return
        # Its failed attempts so far (run.reruns; xdist logs this crash's report after the hook).
        if report.outcome == "failed" and self.run.reruns.get(crashitem, 0) < self.run.retry.retries:
            if requeues_crashed_items(self.config):
                report.outcome = "rerun"  # type: ignore[assignment]
            elif callable(getattr(sched, "mark_test_pending", None)):
                # rerunfailures decides from the retries the worker announced over its status connection when
                # the item started; a worker that dies right after (in setup) may die before that message is
                # read on this side, and rerunfailures then sees 0 retries and leaves the crash failed. For an
                # interface the run's own retry setting is the number (RerunDriver), so queue it again here.
                try:
                    sched.mark_test_pending(crashitem)  # type: ignore[attr-defined]
                except NotImplementedError:
                    pass
                else:
                    report.outcome = "rerun"  # type: ignore[assignment]
        if report.outcome == "failed":
            report.when = "call"
            worker, suspects = self._other_suspects(crashitem, report)
            if suspects and self._verify(crashitem, sched):
                # No retries: the item xdist named is checked once more, on its own; if it was the one that kills
                # workers, it is then blamed where the blame is certain (a red team: a killer named by xdist was
                # otherwise "not checked" run after run, never reported).
                report.outcome = "rerun"  # type: ignore[assignment]
            elif suspects:
                names = ", ".join(key.rpartition("::")[2] for key in sorted(suspects)[:5])
                more = f" and {len(suspects) - 5} more" if len(suspects) > 5 else ""
                reason = (f"not checked: xdist worker {worker} died while it was checking {len(suspects) + 1} "
                          f"interfaces at once (also {names}{more}); which check killed it is not known, so it is "
                          "not blamed on this one")
                report.outcome = "skipped"  # type: ignore[assignment]
                report.longrepr = (crashitem.split("::")[0], 0, reason)
                report.apimon_unchecked = reason  # type: ignore[attr-defined]

    def _verify(self, crashitem: str, sched: object) -> bool:
        """Queue `crashitem` once more after an uncertain blame, when nothing else will: with `retries: 0` (the
        item then runs under pytest's own protocol, which rerunfailures leaves alone without --reruns) and a
        scheduler that can (`mark_test_pending`). Once per interface: a second uncertain death is final."""
        if self.run.retry.retries or crashitem in self._verified or requeues_crashed_items(self.config):
            return False
        mark = getattr(sched, "mark_test_pending", None)
        if not callable(mark):
            return False
        try:
            mark(crashitem)
        except NotImplementedError:
            return False
        self._verified.add(crashitem)
        return True

    def _other_suspects(self, crashitem: str, report: pytest.TestReport) -> tuple[str, set[str]]:
        """The dead worker's id ("gw1", from xdist's `report.node`) and the other checks it had in flight (its
        ledger, inflight.py); empty when it had none, or nothing is known (no ledger: it did not prefetch)."""
        from .inflight import in_flight, ledger_path

        workerinput = getattr(getattr(report, "node", None), "workerinput", None) or {}
        worker = str(workerinput.get("workerid") or "")
        if self.run.worker_dir is None or not worker:
            return worker, set()
        running = in_flight(ledger_path(self.run.worker_dir, worker))
        return worker, (running or set()) - {crashitem}


def no_delayed_status_db(config: pytest.Config) -> bool:
    """Turn Nagle's algorithm off on pytest-rerunfailures' status-DB connection of an xdist worker. Returns
    whether it did.

    Under xdist, rerunfailures' protocol asks the controller over a TCP connection, for every item, how often it
    failed (a request with an answer) and tells it the rerun count (a message without one). The next item's
    request then waits for the acknowledgement of that message, which the controller's kernel delays (delayed
    ACK, ~40 ms on Linux): measured, 1000 interfaces with retries under -n 2 took 23 s instead of 4 s
    (docs/benchmarks.md; pytest-rerunfailures issue #242). TCP_NODELAY (RFC 896's algorithm off) sends each
    message at once. rerunfailures exposes the connection only as `config.failures_db.sock`, so this is the one
    place that reads that attribute; if it is absent or not a TCP socket, nothing is changed."""
    import socket

    sock = getattr(getattr(config, "failures_db", None), "sock", None)
    if not isinstance(sock, socket.socket) or sock.type != socket.SOCK_STREAM \
            or sock.family not in (socket.AF_INET, socket.AF_INET6):
        return False
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    except OSError:
        return False
    return True


def refuse_thread_timeout(config: pytest.Config) -> None:
    """pytest-timeout's thread method ends a hang with os._exit: no summary, no report, no WeCom message, and
    the results already gathered are lost. Raises pytest.UsageError; every request has its own total deadline
    anyway."""
    import pytest

    if not config.pluginmanager.hasplugin("timeout"):
        return
    method = config.getoption("timeout_method", None) or config.getini("timeout_method")
    if str(method).strip() == "thread":
        raise pytest.UsageError(
            "pytest-apimon: --timeout-method thread (or timeout_method = thread) kills the whole run when an "
            "interface hangs (os._exit): no report and no notification would be written. Use the signal method "
            "(the default on Linux and macOS) or leave --timeout out: every request already has a total deadline "
            "(defaults.timeout) and pytest-apimon guards every item itself."
        )


def hang_guard(config: pytest.Config, retry: RetryPolicy) -> float | None:
    """Extra seconds of the per-attempt pytest-timeout guard, or None when the user set a timeout (CLI or
    ini), pytest-timeout is absent, or there is no SIGALRM (the thread method would end the whole run with
    os._exit, see refuse_thread_timeout). The guard of an item is `Engine.attempt_budget` (its requests' and
    logins' deadlines) + this."""
    if not config.pluginmanager.hasplugin("timeout") or config.getoption("timeout", None) is not None \
            or config.getini("timeout") or not hasattr(signal, "SIGALRM"):
        return None
    return HANG_GUARD_SLACK + retry.longest_wait()  # an attempt may first wait out its backoff or Retry-After


def add_markers(config: pytest.Config, run: ApimonRun, items: Sequence[InterfaceItem]) -> None:
    """Give each interface item a per-attempt pytest-timeout `timeout` marker (unless it has one, or the user
    set a timeout). One Mark object per distinct setting, not one per item."""
    import pytest

    guard = hang_guard(config, run.retry)
    if guard is None:
        return
    timeouts: dict[float, pytest.MarkDecorator] = {}
    for item in items:
        if item.get_closest_marker("timeout") is None:
            # func_only: re-armed for every rerun (pytest-timeout otherwise cancels it on the first failure).
            seconds = run.engine().attempt_budget(item.interface) + guard
            if seconds not in timeouts:
                timeouts[seconds] = pytest.mark.timeout(seconds, method="signal", func_only=True)
            item.add_marker(timeouts[seconds])


def attempt_of(item: pytest.Item) -> int:
    """1 for the first run of `item`, n for its (n-1)th rerun: pytest-rerunfailures' `execution_count`."""
    return int(getattr(item, "execution_count", 1))


def is_rerun_report(report: pytest.TestReport) -> bool:
    """A report of an attempt that pytest-rerunfailures will repeat (not the item's final outcome)."""
    return report.outcome == "rerun"


def dedupe_junit_reruns(config: pytest.Config) -> None:
    """One <testcase> per interface: drop the entries pytest's junitxml opened for earlier attempts.

    pytest-rerunfailures reports every attempt; junitxml then writes each as its own testcase and the
    failed attempts look like passes (a known pytest-rerunfailures behaviour with junitxml). The last entry per
    nodeid is the final outcome. An entry without a name (what a rerun worker crash leaves) is dropped too.
    Uses junitxml's internals (xml_key, node_reporters_ordered); does nothing if they ever change.
    """
    try:
        from _pytest.junitxml import xml_key
    except ImportError:  # pragma: no cover
        return
    xml = config.stash.get(xml_key, None)
    ordered = getattr(xml, "node_reporters_ordered", None)
    if not isinstance(ordered, list):
        return

    def key(rep: object) -> tuple[str | None, str | None] | int:
        # A finalized reporter keeps only its XML element (its __dict__ is cleared).
        try:
            element = rep.to_xml()  # type: ignore[attr-defined]
            return element.get("classname"), element.get("name")
        except Exception:  # unknown shape: keep it
            return id(rep)

    keys = [key(rep) for rep in ordered]
    last = {k: i for i, k in enumerate(keys)}
    # A worker crash that rerunfailures reruns leaves an entry without a name (xdist's crash report, marked
    # "rerun", is opened as a testcase but never described): it is no test, and the rerun has its own entry.
    nameless = {i for i, k in enumerate(keys) if isinstance(k, tuple) and k[1] is None}
    ordered[:] = [rep for i, rep in enumerate(ordered) if last[keys[i]] == i and i not in nameless]
    _recount_junit_header(xml, ordered)


def _recount_junit_header(xml: object, kept: list) -> None:
    """Make the <testsuite tests= failures= errors= skipped=> header count the testcases that are written.

    junitxml counts every report as it arrives (its `stats`, less `cnt_double_fail_tests`), so an attempt that
    was dropped above still counted: measured, `tests=19` over 18 testcases after a worker crash. Recounted
    from the kept elements: each testcase's <failure>, <error> and <skipped> children; a testcase with none of
    them passed. junitxml writes `tests` as the sum of the four counts less `cnt_double_fail_tests`, which here
    is the number of testcases with more than one of them (a failure and a teardown error)."""
    stats = getattr(xml, "stats", None)
    if not isinstance(stats, dict) or not hasattr(xml, "cnt_double_fail_tests"):
        return
    counts = dict.fromkeys(("passed", "failure", "error", "skipped"), 0)
    marks = 0
    for rep in kept:
        try:
            children = [child.tag for child in rep.to_xml()]
        except Exception:  # unknown shape: leave junitxml's own counts
            return
        found = [tag for tag in ("failure", "error", "skipped") for child in children if child == tag] or ["passed"]
        for tag in found:
            counts[tag] += 1
        marks += len(found)
    stats.update(counts)
    xml.cnt_double_fail_tests = marks - len(kept)  # type: ignore[attr-defined]
