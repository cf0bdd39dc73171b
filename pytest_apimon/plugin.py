"""pytest hooks and options: wires the core modules into a run. Inert unless --apimon is given."""

from __future__ import annotations

import atexit
import gc
import logging
import os
import shutil
import sys
import uuid
from collections.abc import Callable, Generator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import pytest

if TYPE_CHECKING:  # the core is imported only once --apimon is given: this plugin loads in every pytest run
    from .config import Config
    from .runstate import ApimonRun
    from .streams import StandardStreams  # noqa: F401  (named in a StashKey subscript below)

from . import plainimport

# Before this module's own imports and the conftests' (plainimport.py): where the package was imported before pytest
# started (a custom runner: `import pytest_apimon; pytest.main(...)`), its __init__ found no rewriting hook, and
# pytest imports this module, the first one of the package it asks for, through its hook.
plainimport.install(__package__ or "pytest_apimon")
# pylint: disable-next=wrong-import-position
from .stash import MEMORY_KEY, RESTORE_LOGGING_KEY, RUN_KEY, TEMP_TOKENS_KEY, apimon_option  # noqa: E402

T = TypeVar("T")

log = logging.getLogger("pytest_apimon")



def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("apimon", "API monitoring (pytest-apimon)")
    add = group.addoption
    add("--apimon", nargs="+", action="extend", default=[], metavar="PATH",
        help="monitor the interface documents under PATH (an Interface-pool folder); enables the plugin")
    add("--apimon-config", metavar="FILE", help="config file (default: config.yaml in the rootdir)")
    add("--apimon-env", metavar="NAME", help="environment whose base URLs to use")
    add("--apimon-report", metavar="PATH", help="write the report as Markdown to PATH")
    add("--apimon-json", metavar="PATH", help="write one JSON record per interface to PATH")
    add("--apimon-html", metavar="PATH", help="write the static status page (history, availability) to PATH")
    add("--apimon-prometheus", metavar="PATH", help="write a node_exporter textfile-collector file to PATH")
    add("--apimon-lang", choices=("zh", "en"), help="report language (default: config or zh)")
    add("--apimon-concurrency", type=int, metavar="N",
        help="requests in flight at once in the whole run, divided among xdist workers (default: config or 32)")
    add("--apimon-dry-run", action="store_true",
        help="render and print every notification message instead of sending it (state is not updated)")
    add("--apimon-test-webhook", action="store_true",
        help="send one short test message to each configured robot, print the answer, and exit")
    add("--apimon-no-token-cache", action="store_true",
        help="do not reuse tokens from earlier runs (workers of this run still share one login)")
    add("--apimon-no-breaker", action="store_true", help="check interfaces whose circuit is open, this run only")
    add("--apimon-shard", metavar="K/N",
        help="check only shard K of N (by service, then interface) and write only its results file "
             "(--apimon-json, default apimon-shard-K-of-N.json); `apimon merge` reports, notifies and records")
    add("--apimon-cpu-affinity", choices=("auto", "off"),
        help="auto (default): keep the checking threads on one CPU while they check, which costs less CPU; "
             "off: leave them where the kernel puts them")
    add("--apimon-coverage", action="store_true",
        help="print (and add to the report) per-service monitoring coverage: the blind spots")
    for name, text in (("config", "config file"), ("env", "environment"), ("report", "Markdown report path"),
                       ("json", "JSON results path"), ("html", "status page path"),
                       ("prometheus", "Prometheus textfile path"), ("lang", "report language (zh|en)"),
                       ("concurrency", "in-process concurrency"), ("cpu_affinity", "auto|off")):
        parser.addini(f"apimon_{name}", f"pytest-apimon {text}", default="")


STREAMS_KEY = pytest.StashKey["StandardStreams"]()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_load_initial_conftests(early_config: pytest.Config) -> Generator[None, None, None]:
    """Mask sys.stdout and sys.stderr (streams.py) before pytest's capture starts (in its own
    pytest_load_initial_conftests, inside this wrapper), so capture saves and restores the masked streams.
    The cleanup is registered before capture's, so it runs after capture has stopped and written out what
    it still held."""
    ns = early_config.known_args_namespace
    if getattr(ns, "apimon", None) or getattr(ns, "apimon_test_webhook", False):
        from .redact import Redactor
        from .streams import mask_standard_streams

        # The config's secrets are known from pytest_configure on; the environment's already: a conftest that
        # prints os.environ["LOGIN_PASSWORD"] when it is imported, or in its own pytest_configure, is masked.
        streams = mask_standard_streams(Redactor.with_environment().text)
        early_config.stash[STREAMS_KEY] = streams
        early_config.add_cleanup(streams.restore)
    return (yield)


def _mask_output(config: pytest.Config, mask: Callable[[str], str]) -> None:
    """From now on mask, with `mask`, every log record made (logs.mask_all_records; restored in
    pytest_unconfigure) and every write to the standard streams (streams.py)."""
    from . import logs

    config.stash[RESTORE_LOGGING_KEY] = logs.mask_all_records(mask)
    streams = config.stash.get(STREAMS_KEY, None)
    if streams is not None:
        streams.mask_with(mask)


def _config_path(config: pytest.Config) -> Path | None:
    cfg_path = apimon_option(config, "config")
    path: Path | None
    if cfg_path:
        path = Path(cfg_path)
        if not path.is_absolute():
            path = Path(config.invocation_params.dir) / path
    else:
        default = config.rootpath / "config.yaml"
        path = default if default.is_file() else None
    return path


def _load(config: pytest.Config) -> Config:
    from .config import load_config

    return _read_config(config, lambda path: load_config(path, env=apimon_option(config, "env")))


def _read_config(config: pytest.Config, loader: Callable[[Path | None], T]) -> T:
    """What `loader` reads of the config; a ConfigError becomes a usage error in the reader's language."""
    from .config import ConfigError

    path = _config_path(config)
    from .messages import localize_problem, say

    # The config names the report language; when it cannot be read, the option's (or the default, zh).
    lang = apimon_option(config, "lang") or "zh"
    try:
        return loader(path)
    except ConfigError as exc:
        raise pytest.UsageError(say("usage.config", lang, text=localize_problem(str(exc), lang))) from None
    except Exception as exc:  # an input nobody foresaw: still a usage error naming the file, never INTERNALERROR
        log.exception("reading the config %s failed", path)
        raise pytest.UsageError(say("usage.config_unreadable", lang, path=path,
                                    error=f"{type(exc).__name__}: {exc}")) from None


def _resolve_roots(config: pytest.Config, cfg: Config, paths: list[str]) -> tuple[list[Path], bool]:
    """Pool roots for the PATHs, and whether the PATHs are the whole pools (for the run's memory)."""
    roots, whole = [], True
    for raw in paths:
        path = Path(raw)
        # Absolute and normalised, but symlinks kept: pytest collects (and names node ids after) the path as
        # written, so `pool/shop -> ../shared/shop` must stay `pool/shop` here too (runstate.pool_root_for).
        path = Path(os.path.abspath(path if path.is_absolute() else Path(config.invocation_params.dir) / path))
        if not path.exists():
            from .messages import say

            raise pytest.UsageError(say("usage.path", apimon_option(config, "lang") or cfg.report.language, path=raw))
        root = pool_root(path, tuple(cfg.services), cfg.base_dir)
        whole = whole and root == path
        roots.append(root)
    return roots, whole


def pool_root(path: Path, services: tuple[str, ...], base_dir: Path) -> Path:
    """The pool a `--apimon PATH` belongs to, so that a service keeps its name (and its interfaces their keys
    and history) however the run is started: `pool/`, `pool/urlsvc/` and `pool/urlsvc/a.yaml` all name the
    service `urlsvc`. The first rule that applies (README "Choosing what to run", docs/document-format.md):

    1. a folder named like a configured service, PATH itself or one above it: the pool is its parent;
    2. a folder above PATH, up to the config's folder `base_dir`, holding the folder of a configured service:
       that folder is the pool (`pool/urlsvc` next to a configured `pool/api`);
    3. PATH under the config's folder: the first folder below the config's folder on the way to PATH
       (`config.yaml` next to `Interface-pool/`);
    4. else a folder is a pool itself, and a document lies in a service folder of its pool.
    """
    for candidate in [path, *path.parents]:
        if candidate.name in services and candidate.is_dir():
            return candidate.parent
    base = Path(os.path.abspath(base_dir))
    inside = base in path.parents
    for above in path.parents:
        if not inside and above != path.parent:
            break  # outside the workspace only the folder holding PATH is looked at
        if any((above / name).is_dir() for name in services):
            return above
        if above == base:
            break
    if inside:
        first = base / path.relative_to(base).parts[0]
        return first if first.is_dir() else base
    return path.parent.parent if path.is_file() else path


def pytest_cmdline_main(config: pytest.Config) -> int | None:
    if config.getoption("apimon"):
        # Paused from here to the end of collection (pytest_collection): configuring imports modules and builds
        # the config and state objects, and the collector's full passes over them found nothing to free
        # (20-40 ms of start-up CPU). Only a collector that is on and has nothing frozen is ours to pause.
        gc_state = _GcState(paused=gc.isenabled() and not gc.get_freeze_count())
        if gc_state.paused:
            gc.disable()
        config.stash[GC_KEY] = gc_state
        config.add_cleanup(lambda: _gc_after_run(gc_state))  # see pytest_collection
        # At interpreter exit, freeze whatever is still alive: the interpreter's last full collection
        # (Py_FinalizeEx) skips the permanent generation. Walking a 10 000-item run's graph there took about
        # 1 s of a 3 s `--co` (docs/benchmarks.md); a process exits faster without it. Python does not promise
        # __del__ for objects alive at exit anyway (reference manual, "object.__del__"). Registered once.
        atexit.unregister(gc.freeze)
        atexit.register(gc.freeze)
    if not config.getoption("apimon_test_webhook"):
        return None
    from .config import load_robots
    from .messages import say
    from .notify import check_webhooks, webhook_line

    # Only the robot settings: an unset ${VAR} elsewhere in the config does not stop the test (issue 20).
    notify, language = _read_config(config, load_robots)
    from .redact import Redactor

    # The test message goes to the webhook URL with the robot's key in it: http.client's debug lines and
    # urllib3's DEBUG records show it.
    _mask_output(config, Redactor.with_environment(notify.secrets).text)
    config.add_cleanup(config.stash[RESTORE_LOGGING_KEY])
    lang = apimon_option(config, "lang") or language
    if not notify.enabled:
        print(say("hook.none", lang))
        return pytest.ExitCode.USAGE_ERROR
    checks = check_webhooks(notify, lang=notify.language or language)
    for check in checks:
        print(webhook_line(check, lang))
    return 0 if all(c.ok for c in checks) else 1


@pytest.hookimpl(trylast=True)
def pytest_configure(config: pytest.Config) -> None:
    # Ahead of this session's assertion-rewriting hook, which a second pytest.main in one process puts in front
    # of the one the package's first import found (plainimport.py).
    plainimport.install(__package__ or "pytest_apimon")
    paths = config.getoption("apimon")
    if not paths:
        return
    from .redact import Redactor
    from .retries import refuse_thread_timeout
    from .runstate import ApimonRun

    refuse_thread_timeout(config)
    # urllib3 warns only when verification is off, which a document or config turned off on purpose
    # (verify_tls: false, strictSSL: false). probe.py's disable_warnings does not survive pytest's per-test
    # warning filters (the requests run on the Runner's threads), so the filter is given to pytest itself.
    config.addinivalue_line("filterwarnings", "ignore::urllib3.exceptions.InsecureRequestWarning")
    cfg = _load(config)
    from . import times

    config.add_cleanup(times.use_zone(cfg.report.timezone))
    lang = apimon_option(config, "lang") or cfg.report.language
    if lang not in ("zh", "en"):
        raise pytest.UsageError(f"pytest-apimon: apimon_lang must be zh or en, got {lang!r}")
    workerinput = getattr(config, "workerinput", None)
    roots, whole_pools = _resolve_roots(config, cfg, paths)
    run = ApimonRun(config=cfg, roots=roots, lang=lang, redactor=Redactor.with_environment(cfg.secrets),
                    is_worker=workerinput is not None)
    if config.getoption("apimon_shard"):
        from .sharding import parse_shard

        try:
            run.shard = parse_shard(config.getoption("apimon_shard"))
        except ValueError as exc:
            raise pytest.UsageError(f"pytest-apimon: --apimon-shard: {exc}") from None
    _configure_concurrency(config, run)
    if config.args_source != pytest.Config.ArgsSource.ARGS:
        # The PATHs were consumed by --apimon: collect exactly them, not testpaths or the cwd. They are the run's
        # arguments, so the header must not say "testpaths: …" (pytest prints it for ArgsSource.TESTPATHS).
        config.args[:] = [str(p) for p in paths]
        config.args_source = pytest.Config.ArgsSource.ARGS
    config.addinivalue_line("markers", "apimon: an interface checked by pytest-apimon")
    if workerinput is not None:
        run.run_id = workerinput["apimon_run_id"]
        run.token_dir = Path(workerinput["apimon_token_dir"])
        run.token_dir_is_temp = bool(workerinput.get("apimon_token_dir_is_temp"))
        run.skips = dict(workerinput["apimon_skips"])
    else:
        _configure_controller(config, run, whole_pools)
    config.stash[RUN_KEY] = run
    from . import fixtures

    _mask_output(config, run.redactor.text)
    config.pluginmanager.register(ReportMasker(config), "apimon-mask")

    config.pluginmanager.register(fixtures, "apimon-fixtures")
    if config.pluginmanager.hasplugin("xdist"):
        config.pluginmanager.register(XdistHooks(run, config), "apimon-xdist")
    if run.is_worker:  # only xdist workers may share a per-host cap; a single process never pays for the hook
        config.pluginmanager.register(HostSlotHold(run), "apimon-host-slots")
    _configure_affinity(config, run)
    from .retries import register_rerun_driver

    register_rerun_driver(config, run)


def _configure_controller(config: pytest.Config, run: ApimonRun, whole_pools: bool) -> None:
    from . import logs
    from .alerts import Memory
    from .runlock import LockTimeout
    from .state import StateError
    from .statedir import ensure_state_dir, file_mode

    cfg = run.config
    run.run_id = uuid.uuid4().hex
    if config.getoption("apimon_no_token_cache"):
        from . import runfolders

        runfolders.sweep()  # the token folders of such runs killed before their end (SIGTERM, kill -9)
        if run.inprocess:
            run.token_dir = None  # one process: its tokens stay in memory, nothing is written
        else:
            # Still one login per run across workers: a per-run folder, removed at the end.
            run.token_dir = runfolders.make(runfolders.TOKENS_PREFIX)
            run.token_dir_is_temp = True
            config.stash[TEMP_TOKENS_KEY] = run.token_dir
    else:
        run.token_dir = cfg.state_path
    try:
        ensure_state_dir(cfg.state_path, cfg.base_dir)
    except OSError as exc:
        run.warnings.append(f"state folder {cfg.state_path} unusable ({exc})")
    try:
        logs.setup_logging(cfg.logging, cfg.base_dir, mask=run.redactor.text, file_mode=file_mode(cfg.report.publish))
    except OSError as exc:  # an unwritable log folder must not stop the checks
        run.warnings.append(f"log file {cfg.logging.file} unusable ({exc}): logging to the terminal only")
    log.info("run started: env=%s config=%s pools=%s", cfg.env, cfg.path or "(built-in defaults)",
             ", ".join(str(r) for r in run.roots))
    memory = None
    _echo_waits(config)
    if not config.option.collectonly and run.shard is None:  # a shard leaves the state to `apimon merge`
        try:
            memory = Memory.open(cfg, breaker=not config.getoption("apimon_no_breaker"))
        except LockTimeout as exc:  # another run is busy with this workspace: never double-send
            from .messages import localize

            raise pytest.UsageError(f"pytest-apimon: {localize(str(exc), run.lang)}") from None
        except (StateError, OSError) as exc:
            # Still check every interface and report; only the memory (history, alert policy) is lost.
            log.error("state folder %s unusable, running without history and alert policy: %s",
                      cfg.state_path, exc)
            run.warnings.append(f"state folder {cfg.state_path} unusable ({exc}): no history or alert policy")
        if memory is not None:
            config.stash[MEMORY_KEY] = memory
            run.skips = dict(memory.skips)

    def register_collector() -> None:
        from .collector import ResultCollector

        run.proxy = _proxy_in_use(cfg)
        config.pluginmanager.register(ResultCollector(run, config, memory, whole_pools), "apimon-results")

    # Everything above is what xdist workers are started with (pytest_configure_node: run id, token folder,
    # open circuits); the rest waits until they are started (pytest_sessionstart below), so it runs while
    # they boot instead of before.
    config.stash[LATE_SETUP_KEY] = register_collector


LATE_SETUP_KEY = pytest.StashKey[Callable[[], None]]()


@pytest.hookimpl(wrapper=True)
def pytest_sessionstart(session: pytest.Session) -> Generator[None, None, None]:
    """The controller's setup that no xdist worker waits on, after every plugin's sessionstart: xdist starts
    its workers in its own (a `trylast` hook), and the processes then boot while this runs. The same
    place in a single-process run (before collection)."""
    result = yield
    late = session.config.stash.get(LATE_SETUP_KEY, None)
    if late is not None:
        del session.config.stash[LATE_SETUP_KEY]
        late()
    return result


def _proxy_in_use(cfg: Config) -> str | None:
    """The proxies the configured services' requests go through (environment, NO_PROXY honoured)."""
    from .probe import proxy_in_use

    urls = [svc.base_url for svc in cfg.services.values() if svc.base_url] or ["http://example.invalid/"]
    found = sorted({p for url in urls if (p := proxy_in_use(url))})
    return ", ".join(found) or None


WAIT_ECHO_KEY = pytest.StashKey[logging.Handler]()


def _echo_waits(config: pytest.Config) -> None:
    """Lines on `pytest_apimon.wait` (another run's lock, WeCom rate limits) go to the real stderr with the tag
    watch.WAIT_TAG, past pytest's capture, so a person and `apimon watch` see what the run waits on."""
    from .messages import localize

    capman = config.pluginmanager.getplugin("capturemanager")
    run = config.stash.get(RUN_KEY, None)
    lang = run.lang if run is not None else "en"

    class Echo(logging.Handler):
        """Writes each record past pytest's capture (see _echo_waits)."""

        def emit(self, record: logging.LogRecord) -> None:
            try:
                from .watch import WAIT_TAG  # imported by the first wait, not by every run (issue 15)

                line = WAIT_TAG + localize(self.format(record), lang) + "\n"
                if capman is not None:
                    with capman.global_and_fixture_disabled():
                        sys.stderr.write(line)
                        sys.stderr.flush()
                else:
                    sys.stderr.write(line)
            except Exception:  # logging must never break the run
                self.handleError(record)

    handler = Echo(logging.INFO)
    logging.getLogger("pytest_apimon.wait").addHandler(handler)
    config.stash[WAIT_ECHO_KEY] = handler


def _configure_concurrency(config: pytest.Config, run: ApimonRun) -> None:
    from .retries import policy_from_options

    d = run.config.defaults
    raw = apimon_option(config, "concurrency") or d.concurrency
    try:
        run.concurrency = max(1, int(raw))
    except ValueError:
        raise pytest.UsageError(f"pytest-apimon: apimon_concurrency must be a number, got {raw!r}") from None
    run.max_per_host = min(run.concurrency, d.max_per_host)
    whole_cap = run.max_per_host  # the run's, before a worker takes its part
    # xdist: the controller runs nothing; a worker prefetches its share when the controller hands it out up
    # front (scheduling.ShareScheduling), with its part of the limits so the totals across workers hold.
    workerinput = getattr(config, "workerinput", None)
    if workerinput is not None and workerinput.get("apimon_prefetch"):
        from .sharding import divide, share_index

        count = int(workerinput.get("workercount", 1))
        run.share = share_index(str(workerinput.get("workerid", "")), count)
        run.concurrency = divide(run.concurrency, count)
        run.max_per_host = min(run.concurrency, divide(run.max_per_host, count))
        run.inprocess = True
    else:
        run.inprocess = not run.is_worker and not getattr(config.option, "numprocesses", None)
    if workerinput is not None and workerinput.get("apimon_host_slots"):
        from .hostslots import HostSlots

        # A cap smaller than the workers cannot be divided (each keeps 1): the workers share its slots instead.
        run.host_slots = HostSlots(Path(workerinput["apimon_worker_dir"]) / "hosts", whole_cap)
    run.retry = policy_from_options(config, d)


def _configure_affinity(config: pytest.Config, run: ApimonRun) -> None:
    """--apimon-cpu-affinity / apimon_cpu_affinity: `auto` (default) registers CpuAffinity where this process
    prefetches (in-process, or an xdist worker with a share) and there are CPUs to choose from."""
    from . import affinity

    mode = apimon_option(config, "cpu_affinity") or "auto"
    if mode not in affinity.MODES:
        raise pytest.UsageError(f"pytest-apimon: apimon_cpu_affinity must be auto or off, got {mode!r}")
    if mode == "off" or not run.inprocess or config.option.collectonly or len(affinity.allowed_cpus()) < 2:
        return
    config.pluginmanager.register(CpuAffinity(run), "apimon-cpu-affinity")


class CpuAffinity:
    """Keeps pytest's thread, and with it the Runner's threads it starts, on one CPU for the item loop
    (affinity.py says why and how the CPU is chosen); gives pytest's thread its affinity back after the loop."""

    def __init__(self, run: ApimonRun) -> None:
        self.run = run

    @pytest.hookimpl(wrapper=True)
    def pytest_runtestloop(self, session: pytest.Session) -> Generator[None, object, object]:
        from .affinity import allowed_cpus, choose_cpu, current_cpu, pin_thread
        from .items import InterfaceItem

        pin = None
        # Only where a Runner will check (an interface in the loop; an xdist worker with a share): a pool of
        # users' own tests alone runs as it would without the plugin.
        checks = any(isinstance(item, InterfaceItem) for item in session.items)
        if checks and (not self.run.is_worker or self.run.share is not None):
            cpu = choose_cpu(allowed_cpus(), share=self.run.share, current=current_cpu())
            pin = pin_thread(cpu) if cpu is not None else None
        try:
            return (yield)
        finally:
            if pin is not None:
                pin.release()


class HostSlotHold:
    """Registered on xdist workers: when the per-host cap is shared (hostslots.py), an interface that checks
    itself holds one of its host's slots for the attempt. Outside pytest-timeout's guard (this wrapper is the
    outer one, the guard is per call: retries.add_markers), so waiting for another worker's request never counts
    as this check's timeout: measured before, with `max_per_host: 1` and `-n 4 --dist each`, a worker waited
    11.5 s for its turn and its interface failed "Timeout (>7.0s)" without a request sent. Prefetched attempts
    take theirs in the Runner."""

    def __init__(self, run: ApimonRun) -> None:
        self.run = run

    @pytest.hookimpl(wrapper=True, tryfirst=True)
    def pytest_runtest_call(self, item: pytest.Item) -> Generator[None, None, None]:
        run, interface = self.run, getattr(item, "interface", None)
        if run.host_slots is None or interface is None or (run.runner is not None and run.runner.answers(item.nodeid)):
            return (yield)
        with run.host_slots.hold(run.host(interface)):
            return (yield)


class XdistHooks:
    """Registered only when pytest-xdist is installed (its hooks are unknown otherwise)."""

    def __init__(self, run: ApimonRun, config: pytest.Config) -> None:
        self.run = run
        self.config = config

    def prefetch(self) -> bool:
        # Only for xdist's default `--dist load`; other modes (loadscope, worksteal…) keep their own scheduler.
        return bool(self.config.getvalue("dist") == "load")

    def pytest_xdist_make_scheduler(self, config: pytest.Config, log: object) -> object:
        if not self.prefetch():
            return None
        from .scheduling import ShareScheduling

        return ShareScheduling(config, log)  # type: ignore[arg-type]

    def pytest_configure_node(self, node: object) -> None:
        workerinput = node.workerinput  # type: ignore[attr-defined]
        workerinput["apimon_prefetch"] = self.prefetch()
        workerinput["apimon_run_id"] = self.run.run_id
        workerinput["apimon_token_dir"] = str(self.run.token_dir)
        workerinput["apimon_token_dir_is_temp"] = self.run.token_dir_is_temp
        workerinput["apimon_skips"] = dict(self.run.skips)
        # One folder for the run and its workers, removed at the end (pytest_unconfigure): prefetching workers'
        # in-flight ledgers (inflight.py), and the per-host slots when the cap cannot be divided among this many
        # workers (sharding.divide keeps 1 each; hostslots.py).
        shared_cap = self.run.max_per_host < int(workerinput.get("workercount", 1))
        if self.prefetch() or shared_cap:
            if self.run.worker_dir is None:
                from . import runfolders

                runfolders.sweep()  # also the folders of a run killed before its end (SIGTERM, kill -9)
                self.run.worker_dir = runfolders.make(runfolders.RUN_PREFIX)
            workerinput["apimon_worker_dir"] = str(self.run.worker_dir)
            workerinput["apimon_host_slots"] = shared_cap

    def pytest_xdist_node_collection_finished(self, ids: list[str]) -> None:
        self.run.collected.update(ids)  # what the run set out to check (a partial run forgets nothing)

    def pytest_testnodedown(self, node: object, error: object) -> None:
        stats = getattr(node, "workeroutput", {}).get("apimon_token_stats")
        if stats:
            self.run.add_token_stats(stats)
        plan = getattr(node, "workeroutput", {}).get("apimon_shard_plan")
        if plan and not self.run.shard_plan:  # the controller of a sharded xdist run collected nothing itself
            self.run.shard_plan = [tuple(row) for row in plan]
        for warning in getattr(node, "workeroutput", {}).get("apimon_collection_notes", ()):
            self.run.warn(warning)  # an imported collection's unsupported features, noted when workers collect


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    """A symlink in the pool pointing back up the tree would be walked ~40 levels deep: skip it."""
    if config.stash.get(RUN_KEY, None) is None or not collection_path.is_symlink():
        return None
    try:
        target = collection_path.resolve(strict=True)
        here = collection_path.parent.resolve()
    except (OSError, RuntimeError):
        return True  # broken or looping link
    if target.is_dir() and (target == here or target in here.parents):
        log.warning("skipping %s: it links back to %s (a loop)", collection_path, target)
        return True
    return None


def pytest_collect_directory(path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    """Folders of a pool are collected by items.PoolDir, which keeps unreadable document-named entries."""
    run = parent.config.stash.get(RUN_KEY, None)
    if run is None or run.pool_root_for(path) is None or (path / "__init__.py").is_file():
        return None
    from .items import PoolDir

    return PoolDir.from_parent(parent, path=path)


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> pytest.Collector | None:
    run = parent.config.stash.get(RUN_KEY, None)
    if run is None:
        return None
    from .documents import is_document
    from .items import InterfaceFile

    if not is_document(file_path):
        return None
    root = run.pool_root_for(file_path)
    if root is None:
        return None
    return InterfaceFile.from_parent(parent, path=file_path, pool_root=root)


@dataclass
class _GcState:
    paused: bool  # pytest_cmdline_main turned the cyclic collector off; pytest_collection turns it back on
    frozen: bool = False  # pytest_collection froze the collected graph; _gc_after_run unfreezes it


GC_KEY = pytest.StashKey[_GcState]()


@pytest.hookimpl(wrapper=True)
def pytest_collection(session: pytest.Session) -> Generator[None, object, object]:
    """Collection builds one long-lived object graph (nodes, markers, parsed documents) that the cyclic garbage
    collector would otherwise walk again and again: during collection as it grows, and in every full collection
    after it (pytest runs two at exit). It is built with the collector paused (since pytest_cmdline_main) and then
    moved to the permanent generation (`gc.freeze`, Python docs: "gc — Garbage Collector interface");
    `_gc_after_run` undoes that at the very end of the session. Reference counting still frees every object as
    before. A collector that was off, or objects somebody else froze (an embedding process), are left alone."""
    state = session.config.stash.get(GC_KEY, None)
    if state is None or not state.paused:
        return (yield)
    try:
        return (yield)
    finally:
        if session.config.stash.get(RUN_KEY, None) is not None and not gc.get_freeze_count():
            gc.freeze()
            state.frozen = True
        gc.enable()
        state.paused = False


def _gc_after_run(state: _GcState) -> None:
    """Registered first (pytest_cmdline_main), so it runs after pytest's own closing garbage collections. Also
    turns the collector back on when the run ended before collecting (a usage error)."""
    if state.frozen:
        gc.unfreeze()
        state.frozen = False
    if state.paused:
        gc.enable()
        state.paused = False


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    run = config.stash.get(RUN_KEY, None)
    if run is None:
        return
    from .items import InterfaceItem

    if run.shard is not None:
        _keep_shard(config, run, items)
    for item in items:
        if not isinstance(item, InterfaceItem):
            continue
        reason = run.skips.get(item.key or item.interface.key)
        if reason:
            item.add_marker(pytest.mark.skip(reason=reason))  # open circuit (alert policy)


def _keep_shard(config: pytest.Config, run: ApimonRun, items: list[pytest.Item]) -> None:
    """--apimon-shard K/N: deselect the other shards' items (sharding.assign_shards); other tests: shard 1."""
    from .items import InterfaceItem, _ApimonItem
    from .sharding import assign_shards

    assert run.shard is not None
    ours = [item for item in items if isinstance(item, _ApimonItem)]
    entries = []
    for item in ours:
        ident = item.identity()
        key = item.interface.key if isinstance(item, InterfaceItem) else item.nodeid
        entries.append((ident.service, key))
    shards = dict(zip((item.nodeid for item in ours), assign_shards(entries, run.shard.total), strict=True))
    run.shard_plan = [(item.nodeid, *_names(item), shards[item.nodeid]) for item in ours]
    keep = [item for item in items if shards.get(item.nodeid, 1) == run.shard.index]
    dropped = [item for item in items if shards.get(item.nodeid, 1) != run.shard.index]
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = keep


def _names(item: pytest.Item) -> tuple[str, str, str]:
    ident = item.identity()  # type: ignore[attr-defined]
    return ident.service, ident.module, ident.name


@pytest.hookimpl(tryfirst=True)
def pytest_runtestloop(session: pytest.Session) -> None:
    run = session.config.stash.get(RUN_KEY, None)
    if run is None or session.config.option.collectonly or not session.items:
        return
    from .items import InterfaceItem
    from .retries import add_markers

    prefetched = _prefetch(session, run) if run.inprocess else set()
    # What the Runner prefetched has the Runner's own hang guard (Runner.result's deadline): the item only
    # waits. An item that checks itself (not in this worker's share, a crashed worker's item, another --dist
    # mode) gets pytest-timeout's per-attempt guard instead, which costs every item it marks ~0.1 ms.
    add_markers(session.config, run, [item for item in session.items
                                      if isinstance(item, InterfaceItem) and item.nodeid not in prefetched])


def _prefetch(session: pytest.Session, run: ApimonRun) -> set[str]:
    """Start the Runner on this process's interfaces (all of them; on an xdist worker its share). Returns the
    node ids it checks."""
    from .items import InterfaceItem
    from .runner import Runner

    items = session.items
    if run.is_worker:  # only this worker's share (sharding.worker_share), the one ShareScheduling hands it
        from .sharding import worker_share

        count = int(session.config.workerinput.get("workercount", 1))  # type: ignore[attr-defined]
        items = [items[i] for i in worker_share(len(items), run.share, count)] if run.share is not None else []
    jobs = [
        (item.nodeid, item.interface) for item in items
        if isinstance(item, InterfaceItem) and item.get_closest_marker("skip") is None
    ]
    if jobs:
        engine = run.engine()
        backoff = run.retry.backoff(run.retry.retries) if run.retry.retries else 0.0
        ledger = None
        folder = session.config.workerinput.get("apimon_worker_dir") if run.is_worker else None  # type: ignore[attr-defined]
        if folder:
            from .inflight import Ledger, ledger_path

            ledger = Ledger(ledger_path(Path(folder), str(session.config.workerinput["workerid"])))  # type: ignore[attr-defined]
        run.runner = Runner(engine.check, concurrency=run.concurrency, max_per_host=run.max_per_host,
                            retry=run.retry, host=run.host, slots=run.host_slots, ledger=ledger,
                            # One attempt: its logins and requests, each within its own deadline, plus slack.
                            deadline=lambda itf: engine.attempt_budget(itf) + 5.0 + backoff)
        run.runner.start(jobs)
    return {nodeid for nodeid, _ in jobs}


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Generator[None, object, object]:
    result = yield
    run = item.config.stash.get(RUN_KEY, None)
    if run is None:
        return result  # inert unless --apimon
    if run.runner is not None and (item.session.shouldfail or item.session.shouldstop):
        run.runner.stop()  # -x / --maxfail: issue no new requests
    from .items import _ApimonItem

    if isinstance(item, _ApimonItem):  # another plugin's item keeps its own `result`
        item.result = None  # reported (report.apimon); pytest keeps the item
    return result


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]
                              ) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report: pytest.TestReport = yield
    run = item.config.stash.get(RUN_KEY, None)
    if run is None:
        return report
    from .categories import Category, Outcome
    from .items import _ApimonItem
    from .retries import attempt_of

    if isinstance(item, _ApimonItem) and (call.when == "call" or report.outcome != "passed"):
        result = item.result if call.when == "call" and item.result is not None else item.identity()
        result.nodeid = item.nodeid
        result.attempts = attempt_of(item)
        if report.skipped:
            result.outcome = Outcome.SKIPPED
            longrepr = report.longrepr
            reason = longrepr[2] if isinstance(longrepr, tuple) else str(longrepr or "")
            result.reason = reason.removeprefix("Skipped: ")  # the canonical line (JSON, history)
            if isinstance(longrepr, tuple) and run.lang == "zh":
                from .messages import localize

                # What pytest shows (-rs, JUnit's <skipped message>) in the reader's language.
                report.longrepr = (longrepr[0], longrepr[1], "Skipped: " + localize(result.reason, run.lang))
            # Behind an open circuit: not checked, but known down (counts as down everywhere, issue 14).
            result.circuit_open = bool(result.key) and result.key in run.skips
            item.set_properties(result)  # JUnit: a skipped interface still carries its properties
        elif report.failed and result.outcome != Outcome.FAILED:
            # Not raised by the engine: a hang cut by pytest-timeout, or a bug; still one category.
            text = str(call.excinfo.value) if call.excinfo else str(report.longrepr)
            result.outcome = Outcome.FAILED
            is_timeout = "Timeout" in text and "pytest-timeout" in text
            result.category = Category.TIMEOUT if is_timeout else Category.UNEXPECTED
            result.sub = "hang" if is_timeout else "error"
            result.reason = run.redactor.excerpt(text.splitlines()[0], 300) if text else "error"
        report.apimon = result.to_dict()  # type: ignore[attr-defined]  # crosses xdist as a plain dict
    _mask_report(report, item.config)
    return report


def _mask_report(report: pytest.TestReport | pytest.CollectReport, config: pytest.Config) -> None:
    """Mask what pytest renders from a report (terminal, JUnit, xdist's copy to the controller): the failure
    representation with its traceback entries, function arguments and locals, the captured stdout/stderr/log
    sections and the JUnit properties. Whatever plugin put text there (pytest-timeout, a crash), it is
    masked by construction."""
    run = config.stash.get(RUN_KEY, None)
    if run is None:
        return
    from .redact import mask_in_place

    mask = run.redactor.text
    report.longrepr = mask_in_place(report.longrepr, mask)
    report.sections[:] = mask_in_place(list(report.sections), mask)
    if isinstance(report, pytest.TestReport):
        report.user_properties[:] = mask_in_place(list(report.user_properties), mask)
    data = getattr(report, "apimon", None)
    if isinstance(data, dict):
        mask_in_place(data, mask)
    report.apimon_masked = _stamp(report)  # type: ignore[union-attr]


def _stamp(report: pytest.TestReport | pytest.CollectReport) -> int | None:
    """What _mask_report saw, by content: a report whose failure representation, sections and properties still
    hold the same values needs no second pass. A conftest may edit a report in place after the plugin masked
    it (replace a section or a property, `longrepr.addsection`), so counts or ids would not do: the stamp hashes
    the values (str hashes are cached, so this is cheap), and is None, "mask again", when they cannot be
    compared (a failure representation object, which changes in place; an unhashable property value).
    One int, as pytest keeps every report; 31 bits, as execnet carries it to the xdist controller as a 32-bit
    signed int."""
    longrepr = report.longrepr
    if longrepr is not None and not isinstance(longrepr, str | tuple):
        return None  # failures only: masking them again costs little
    try:
        return hash((longrepr, tuple(report.sections), tuple(getattr(report, "user_properties", ())))) \
            & 0x7FFF_FFFF
    except Exception:  # an unhashable (or oddly hashing) property value: never trust, never crash
        return None


def _already_masked(report: pytest.TestReport | pytest.CollectReport) -> bool:
    """Masked where it was made: in this process and unchanged since (_stamp), or by the xdist worker that made
    it (`worker_id`, set by xdist on reports it sends; the worker's redactor knows every secret the
    controller's does, and the tokens it learnt besides)."""
    stamp = getattr(report, "apimon_masked", None)
    if stamp is None:
        return False
    return getattr(report, "worker_id", None) is not None or stamp == _stamp(report)


@pytest.hookimpl(wrapper=True)
def pytest_make_collect_report(collector: pytest.Collector) -> Generator[None, pytest.CollectReport,
                                                                          pytest.CollectReport]:
    report: pytest.CollectReport = yield
    _mask_report(report, collector.config)
    return report


class ReportMasker:
    """Registered for --apimon runs. Masks every report before anyone logs it that was not masked where it was
    made (_already_masked): the reports the controller makes itself (a crashed worker), and a report another
    plugin changed after pytest_runtest_makereport."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if not _already_masked(report):
            _mask_report(report, self.config)

    @pytest.hookimpl(tryfirst=True)
    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        if not _already_masked(report):
            _mask_report(report, self.config)

    @pytest.hookimpl(tryfirst=True)
    def pytest_report_to_serializable(self, report: pytest.TestReport | pytest.CollectReport) -> None:
        """An xdist worker serializes each report as it sends it, and the controller trusts what it gets
        (_already_masked): a hook that changed the report on the worker after pytest_runtest_logreport's check
        is caught here. Returns None: pytest's own implementation serializes."""
        if not _already_masked(report):
            _mask_report(report, self.config)


@pytest.hookimpl(tryfirst=True)
def pytest_sessionfinish(session: pytest.Session) -> None:
    config = session.config
    run = config.stash.get(RUN_KEY, None)
    if run is None:
        return
    if run.runner is not None:
        run.runner.close()
    run.save_parse_cache()
    if run.is_worker and run._engine is not None:
        config.workeroutput["apimon_token_stats"] = run._engine.tokens.stats()  # type: ignore[attr-defined]
    if run._engine is not None:
        for warning in run._engine.tokens.warnings:  # a short-lived token, once per service
            run.warn(warning)
    if run.is_worker:
        config.workeroutput["apimon_collection_notes"] = list(run.warnings)  # type: ignore[attr-defined]
        if run.shard_plan:
            config.workeroutput["apimon_shard_plan"] = [list(row) for row in run.shard_plan]  # type: ignore[attr-defined]
    if not run.is_worker:
        from .retries import dedupe_junit_reruns

        dedupe_junit_reruns(config)


def pytest_unconfigure(config: pytest.Config) -> None:
    run = config.stash.get(RUN_KEY, None)
    if run is None:
        return
    if run._engine is not None:
        run._engine.close()
    memory = config.stash.get(MEMORY_KEY, None)
    if memory is not None:
        memory.close()
    if run.worker_dir is not None:
        shutil.rmtree(run.worker_dir, ignore_errors=True)
    temp = config.stash.get(TEMP_TOKENS_KEY, None)
    if temp is not None:
        shutil.rmtree(temp, ignore_errors=True)
    elif not run.is_worker and run.token_dir is not None and run.run_id:
        from .tokencache import TokenCache

        TokenCache(run.token_dir, lock_timeout=5.0).purge_run(run.run_id)
    xmlpath = getattr(config.option, "xmlpath", None)
    if xmlpath and not run.is_worker and not run.config.report.publish:
        from .statedir import make_private

        make_private(xmlpath)  # pytest's JUnit file is a report too: private unless report.publish
    restore = config.stash.get(RESTORE_LOGGING_KEY, None)
    if restore is not None:
        restore()
    echo = config.stash.get(WAIT_ECHO_KEY, None)
    if echo is not None:
        logging.getLogger("pytest_apimon.wait").removeHandler(echo)
    if not run.is_worker:
        from . import logs

        logs.teardown_logging()
