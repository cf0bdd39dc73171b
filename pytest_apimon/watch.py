"""The scheduler: `python -m pytest_apimon watch --every 15m [pytest args…]`.

One fresh `python -m pytest --apimon …` process per cycle, so a leak, a hung thread or a changed
config never carries over. Start times sit on a fixed grid in the team's time zone (`--timezone`, default
the machine's): an interval that divides a day counts from each local midnight (so `--every 1h` lands on
the hour in a half-hour zone like Asia/Kolkata, and `--every 24h` at 00:00 local time, across DST changes);
whole days count local calendar days. Slots are computed from the grid rather than from the previous start,
so nothing drifts. A cycle never overlaps
the previous one: a run longer than the interval delays the next start (warning), and slots missed
entirely are skipped. SIGTERM/SIGINT let the running cycle finish (it sends its own report), then exit;
a second signal stops the cycle too. The child runs in its own session so a terminal's Ctrl-C reaches
only the watcher.

A cycle that cannot do its job (pytest exit code other than 0/1, a crash, a command that does not
start) sends a "monitor broken" message through the configured notifiers, repeated at most hourly,
and "monitor repaired" once a cycle works again. `--heartbeat HH:MM` sends a daily "alive" message
with the last 24 h figures from the state store.
"""

from __future__ import annotations

import logging
import math
import os
import signal
import subprocess
import sys
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, tzinfo
from pathlib import Path

from . import times
from .config import Config, ConfigError, load_config
from .messages import display_name, localize, localize_problem, say
from .notify import Notification, build_notifiers
from .policy import RunMemory
from .redact import Redactor
from .state import DB_FILE, StateStore

log = logging.getLogger("pytest_apimon.watch")

HEALTHY_EXIT = (0, 1)  # all passed / some interfaces failed: the monitor itself worked
WAIT_TAG = "[apimon-wait] "  # a cycle's line saying what it waits on (plugin.py echoes them to stderr)
EXIT_MEANING = {
    0: "healthy: every interface passed",
    1: "healthy: the monitor worked; some interfaces failed or are down",
    2: "interrupted, errors during collection, or incomplete (an xdist worker died: interfaces not checked)",
    3: "pytest internal error",
    4: "usage error: bad config or command line",
    5: "no interfaces collected: nothing is being monitored",
}
TAIL_LINES = 30
SLEEP_CHUNK = 0.2  # signal handlers only set a flag: the sleeping loop notices within this


DAY_S = 86400.0


def resolve_timezone(name: str | None) -> tzinfo | None:
    """The schedule's zone: an IANA name (Asia/Shanghai) or a fixed offset (+08:00), as `report.timezone`
    accepts (times.parse_zone); None keeps the machine's own zone (the time module's local time, DST rules
    included). Raises ValueError for an unknown name."""
    if not name:
        return None
    return times.parse_zone(name)


def schedule_zone(option: str | None, config: Config) -> str | None:
    """`apimon watch --timezone`, else the config's `report.timezone`, else None (the machine's zone): the
    schedule, the heartbeat and the times in the watcher's messages use one zone."""
    return option or config.report.timezone or None


def _local_date(ts: float, tz: tzinfo | None) -> date:
    if tz is None:
        lt = time.localtime(ts)
        return date(lt.tm_year, lt.tm_mon, lt.tm_mday)
    return datetime.fromtimestamp(ts, tz).date()


def _at(day: date, tz: tzinfo | None, hour: int = 0, minute: int = 0) -> float:
    """Epoch seconds of a local wall-clock time (the earlier one when repeated, shifted when skipped by DST)."""
    if tz is None:
        return time.mktime((day.year, day.month, day.day, hour, minute, 0, 0, 0, -1))
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=tz).timestamp()


def _grid(t: float, every: float, tz: tzinfo | None, after: bool) -> float:
    """The first grid point strictly after t (after=True), or the last one at or before t."""
    day = _local_date(t, tz)
    if every >= DAY_S and every % DAY_S == 0:  # whole days: local midnights, every n-th calendar day
        n = int(every // DAY_S)
        k = (day.toordinal() - date(1970, 1, 1).toordinal()) % n
        first = day - timedelta(days=k)  # the grid day at or before `day`
        if after:
            candidate = first
            while _at(candidate, tz) <= t:
                candidate += timedelta(days=n)
            return _at(candidate, tz)
        candidate = first
        while _at(candidate, tz) > t:
            candidate -= timedelta(days=n)
        return _at(candidate, tz)
    if every < DAY_S:  # within the local day, counted from its midnight (a DST day has 23 or 25 hours)
        midnight = _at(day, tz)
        if midnight > t:  # a day starting after a DST gap at midnight
            day -= timedelta(days=1)
            midnight = _at(day, tz)
        steps = math.floor((t - midnight) / every)
        if not after:
            return midnight + steps * every
        following: float = midnight + (steps + 1) * every
        return min(following, _at(day + timedelta(days=1), tz))
    # Longer than a day but not whole days: a plain grid since the epoch.
    return (math.floor(t / every) + 1) * every if after else math.floor(t / every) * every


def next_slot(now: float, every: float, tz: tzinfo | None = None) -> float:
    """The first grid point strictly after `now` (see the module docstring for the grid)."""
    return _grid(now, every, tz, after=True)


def last_slot(now: float, every: float, tz: tzinfo | None = None) -> float:
    """The last grid point at or before `now`."""
    return _grid(now, every, tz, after=False)


def next_daily(now: float, hhmm: str, tz: tzinfo | None = None) -> float:
    """The next local wall-clock HH:MM after now, in `tz` (None: the machine's zone); DST-safe."""
    hour, minute = parse_hhmm(hhmm)
    day = _local_date(now, tz)
    for offset in range(3):
        ts = _at(day + timedelta(days=offset), tz, hour, minute)
        if ts > now:
            return ts
    raise AssertionError("unreachable")


def parse_hhmm(text: str) -> tuple[int, int]:
    try:
        hour, minute = (int(p) for p in text.strip().split(":"))
    except ValueError:
        raise ValueError(f"expected a time of day like 09:00, got {text!r}") from None
    if not (0 <= hour < 24 and 0 <= minute < 60):
        raise ValueError(f"expected a time of day like 09:00, got {text!r}")
    return hour, minute


def describe_exit(code: int | None, error: str = "", lang: str = "en") -> str:
    """What a cycle's exit means, for the log and the 'monitor broken' message (in lang: zh or en)."""
    if lang == "zh":
        return _exit_zh(code, describe_exit(code, error))
    if code is None:
        return f"could not start: {error}"
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        return f"killed by {name}"
    return f"exit code {code} ({EXIT_MEANING.get(code, 'unexpected')})"


_EXIT_MEANING_ZH = {
    2: "被中断、收集接口时出错，或监控不完整（xdist 工作进程崩溃：有接口未检查）",
    3: "pytest 内部错误",
    4: "用法错误：配置或命令行有误",
    5: "没有收集到任何接口：什么都没有被监控",
}


def _exit_zh(code: int | None, english: str) -> str:
    """describe_exit in Chinese (the watcher's messages follow report.language)."""
    if code is None:
        return "无法启动：" + english.removeprefix("could not start: ")
    if code < 0:
        return "被信号终止（" + english.removeprefix("killed by ") + "）"
    meaning = _EXIT_MEANING_ZH.get(code) or (say(f"watch.exit_healthy{code}", "zh") if code in HEALTHY_EXIT
                                             else "意外的退出码")
    return f"退出码 {code}（{meaning}）"


@dataclass
class Cycle:
    slot: float  # the grid point it was due at
    started_at: float
    finished_at: float = 0.0
    returncode: int | None = None  # None: could not start
    error: str = ""
    tail: list[str] = field(default_factory=list)  # last output lines, for the broken alert

    @property
    def healthy(self) -> bool:
        return self.returncode in HEALTHY_EXIT

    @property
    def late(self) -> float:
        return self.started_at - self.slot


# Hooks the watcher calls; WatchAlerts implements them with the configured notifiers.
BrokenHook = Callable[[Cycle, float], None]  # (failing cycle, broken since)
RepairedHook = Callable[[Cycle, float], None]  # (working cycle, was broken since)
HeartbeatHook = Callable[[float, float], None]  # (now, next run)


class Watcher:
    def __init__(self, every: float, command: Sequence[str], *, run_now: bool = False,
                 heartbeat: str | None = None, cycles: int | None = None, broken_remind: float = 3600.0,
                 on_broken: BrokenHook | None = None, on_repaired: RepairedHook | None = None,
                 on_heartbeat: HeartbeatHook | None = None, echo: bool = True, cwd: str | None = None,
                 clock: Callable[[], float] = time.time, sleep: Callable[[float], None] = time.sleep,
                 tz: tzinfo | None = None, lang: str = "en") -> None:
        """`clock` (epoch seconds) and `sleep` (seconds) are injectable so tests run the grid on a fake clock;
        `tz` is the schedule's time zone (None: the machine's); `lang` the language of its log lines (zh, en)."""
        if every <= 0:
            raise ValueError("the interval must be > 0")
        self.every, self.command = every, list(command)
        self.run_now, self.cycles_limit, self.broken_remind = run_now, cycles, broken_remind
        self.heartbeat = heartbeat
        if heartbeat is not None:
            parse_hhmm(heartbeat)
        self.on_broken, self.on_repaired, self.on_heartbeat = on_broken, on_repaired, on_heartbeat
        self.echo, self.cwd = echo, cwd
        self._clock, self._sleep = clock, sleep
        self.tz = tz  # the schedule's time zone (None: the machine's)
        self.lang = lang
        self.cycles: list[Cycle] = []
        self.stopping = False
        self._signals = 0
        self._child: subprocess.Popen[bytes] | None = None
        self._broken_since: float | None = None
        self._broken_alerted_at: float | None = None

    # ------------------------------------------------------------------ signals

    def install_signal_handlers(self) -> None:
        signal.signal(signal.SIGTERM, self.request_stop)
        signal.signal(signal.SIGINT, self.request_stop)

    def request_stop(self, signum: int = signal.SIGTERM, _frame: object = None) -> None:
        self._signals += 1
        self.stopping = True
        child = self._child
        if self._signals == 1:
            log.warning("%s", say("watch.signal", self.lang, signal=signal.Signals(signum).name))
        elif child is not None and child.poll() is None:
            log.warning("%s", say("watch.signal2", self.lang, pid=child.pid))
            child.terminate()

    # ------------------------------------------------------------------ the loop

    def run(self) -> int:
        now = self._clock()
        slot = now if self.run_now else next_slot(now, self.every, self.tz)
        next_beat = next_daily(now, self.heartbeat, self.tz) if self.heartbeat else math.inf
        log.info("%s", say("watch.start", self.lang, every=f"{self.every:g}", command=" ".join(self.command),
                           first=_clock(slot)))
        while not self.stopping:
            next_beat = self._sleep_until(slot, next_beat)
            if self.stopping:
                break
            cycle = self._run_cycle(slot)
            self._after(cycle)
            if self.cycles_limit is not None and len(self.cycles) >= self.cycles_limit:
                break
            # Back on the grid; an overrun starts the next one at once (late), slots missed entirely are skipped.
            end = cycle.finished_at
            due = max(next_slot(slot, self.every, self.tz), last_slot(end, self.every, self.tz))
            if due < end:
                skipped, probe = 0, next_slot(slot, self.every, self.tz)
                while probe < due and skipped < 10_000:
                    skipped, probe = skipped + 1, next_slot(probe, self.every, self.tz)
                log.warning("%s", say("watch.overrun", self.lang, took=f"{end - cycle.started_at:.1f}",
                                      every=f"{self.every:g}", late=f"{end - due:.1f}",
                                      skipped=say("watch.skipped", self.lang, n=skipped) if skipped > 0 else ""))
            slot = due
        log.info("%s", say("watch.stopped", self.lang))
        return 0

    def _sleep_until(self, slot: float, next_beat: float) -> float:
        """Sleep until `slot`, sending heartbeats that fall due meanwhile; returns the next heartbeat time."""
        while not self.stopping:
            now = self._clock()
            if now >= next_beat:
                self._heartbeat(now, slot)
                next_beat = next_daily(now, self.heartbeat or "00:00", self.tz)
                continue
            remaining = min(slot, next_beat) - now
            if remaining <= 0:
                break
            self._sleep(min(remaining, SLEEP_CHUNK))
        return next_beat

    def _run_cycle(self, slot: float) -> Cycle:
        cycle = Cycle(slot=slot, started_at=self._clock())
        self.cycles.append(cycle)
        tail: deque[str] = deque(maxlen=TAIL_LINES)
        try:
            child = subprocess.Popen(self.command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     cwd=self.cwd, start_new_session=True)
        except OSError as exc:
            cycle.finished_at, cycle.error = self._clock(), str(exc)
            return cycle
        self._child = child
        try:
            assert child.stdout is not None
            for raw in child.stdout:
                line = raw.decode("utf-8", "replace")
                tail.append(line.rstrip("\n"))
                if line.startswith(WAIT_TAG):  # what the cycle waits on: another run's lock, WeCom's rate limit
                    log.warning("%s", say("watch.waiting", self.lang, text=line[len(WAIT_TAG):].rstrip()))
                if self.echo:
                    sys.stdout.write(line)
                    sys.stdout.flush()
            cycle.returncode = child.wait()
        finally:
            self._child = None
        cycle.finished_at, cycle.tail = self._clock(), list(tail)
        log.info("%s", say("watch.finished", self.lang, what=describe_exit(cycle.returncode, cycle.error, self.lang),
                           took=f"{cycle.finished_at - cycle.started_at:.1f}"))  # 0 and 1 read "healthy: …"
        return cycle

    def _after(self, cycle: Cycle) -> None:
        if cycle.healthy:
            if self._broken_since is not None:
                since, self._broken_since, self._broken_alerted_at = self._broken_since, None, None
                log.info("%s", say("watch.repaired", self.lang, since=_clock(since)))
                _call(self.lang, self.on_repaired, cycle, since)
            return
        if self.stopping and self._signals > 1:
            return  # we stopped it ourselves
        log.error("%s", say("watch.broken", self.lang, what=describe_exit(cycle.returncode, cycle.error, self.lang)))
        now = cycle.finished_at
        if self._broken_since is None:
            self._broken_since = cycle.started_at
        last = self._broken_alerted_at
        if last is None or now - last >= self.broken_remind:
            self._broken_alerted_at = now
            _call(self.lang, self.on_broken, cycle, self._broken_since)

    def _heartbeat(self, now: float, next_run: float) -> None:
        _call(self.lang, self.on_heartbeat, now, next_run)


def _call(lang: str, hook: Callable[..., None] | None, *args: object) -> None:
    """A failing alert hook must never stop the watcher."""
    if hook is None:
        return
    try:
        hook(*args)
    except Exception:
        log.exception("%s", say("watch.hook_failed", lang))


def _clock(ts: float) -> str:
    return times.stamp(ts)


def pytest_command(args: Sequence[str], python: str = sys.executable) -> list[str]:
    """`python -m pytest --apimon …`: --apimon is added in front of leading paths when it is missing."""
    args = list(args)
    if not any(a == "--apimon" or a.startswith("--apimon=") for a in args):
        if not args or args[0].startswith("-"):
            raise ValueError("give the Interface-pool path first (e.g. `watch --every 15m Interface-pool/ -n 4`) "
                             "or pass --apimon PATH explicitly")
        args = ["--apimon", *args]
    return [python, "-m", "pytest", *args]


def option_value(args: Sequence[str], name: str) -> str | None:
    """The value of a pytest option in the passed-through args (`--name X` or `--name=X`)."""
    for i, arg in enumerate(args):
        if arg == name and i + 1 < len(args):
            return args[i + 1]
        if arg.startswith(name + "="):
            return arg.split("=", 1)[1]
    return None


def find_config(args: Sequence[str], explicit: str | None, cwd: str | None = None) -> Path | None:
    """The config the pytest run will use: --config, else --apimon-config, else ./config.yaml."""
    base = Path(cwd or os.getcwd())
    chosen = explicit or option_value(args, "--apimon-config")
    if chosen:
        return base / chosen
    default = base / "config.yaml"
    return default if default.is_file() else None


class WatchAlerts:
    """The watcher's own messages through the notifiers of config.yaml (reloaded each time: it may be fixed
    between cycles; when it no longer loads, the last good one is used, since that is often why it broke)."""

    def __init__(self, config_path: Path | None, env: str | None = None) -> None:
        self.config_path, self.env = config_path, env
        self.config = load_config(config_path, env=env)  # raises ConfigError: refuse to start on a bad config
        times.use_zone(self.config.report.timezone)
        self._redactor: tuple[Config, Redactor] | None = None

    def mask(self, text: str) -> str:
        """`text` with the secrets of the config in use (and of the environment, redact.env_secrets) masked."""
        config = self.config
        if self._redactor is None or self._redactor[0] is not config:
            self._redactor = (config, Redactor.with_environment(config.secrets))
        return self._redactor[1].text(text)

    def _current(self) -> Config:
        try:
            self.config = load_config(self.config_path, env=self.env)
        except ConfigError as exc:
            log.warning("%s", say("watch.old_config", self.lang, error=localize_problem(str(exc), self.lang)))
        return self.config

    @property
    def lang(self) -> str:
        return self.config.notify.language or self.config.report.language

    def _title(self, zh: str, en: str) -> str:
        name = self.config.report.title or ("接口巡检" if self.lang == "zh" else "API monitor")
        return f"【{self.config.env}】{name}：{zh}" if self.lang == "zh" else f"[{self.config.env}] {name}: {en}"

    def _send(self, title: str, lines: list[str], started_at: float, failed: int) -> None:
        self._current()  # reloaded: self.mask then knows its secrets
        redact = self.mask
        markdown = redact("\n".join([f"## {title}", *lines]))
        notification = Notification(title=redact(title), markdown=markdown, summary=markdown,
                                    run_started_at=started_at, lang=self.lang, failed=failed)
        self.deliver(notification)

    def deliver(self, notification: Notification) -> None:
        notifiers = build_notifiers(self.config.notify, self.config.state_path / "outbox")
        if not notifiers:
            log.warning("%s", say("watch.no_notifier", self.lang, title=notification.title))
        for notifier in notifiers:
            result = notifier.send(notification)
            for error in result.errors:
                log.error("%s: %s", notifier.name, localize(error, self.lang))

    def broken(self, cycle: Cycle, since: float) -> None:
        zh = self.lang == "zh"
        what = describe_exit(cycle.returncode, cycle.error, self.lang)
        lines = [f"> 监控本身出错：{what}，本轮接口没有被检查。" if zh
                 else f"> The monitor itself failed: {what}; no interface was checked this cycle.",
                 f"> 故障开始：{_clock(since)}" if zh else f"> Broken since: {_clock(since)}", ""]
        tail = [line for line in cycle.tail if line.strip()][-12:]
        if tail:
            lines += ["`" + line[:200].replace("`", "'") + "`" for line in tail]
        self._send(self._title("监控故障", "monitor broken"), lines, cycle.started_at, failed=1)

    def repaired(self, cycle: Cycle, since: float) -> None:
        zh = self.lang == "zh"
        text = (f"> 监控已恢复运行（故障自 {_clock(since)} 起）。" if zh
                else f"> The monitor runs again (it was broken since {_clock(since)}).")
        self._send(self._title("监控已恢复", "monitor repaired"), [text], cycle.started_at, failed=0)

    def heartbeat(self, now: float, next_run: float) -> None:
        """The daily 'alive' message. Its title says what is true *now*: how many interfaces are down or
        behind an open circuit (naming a few), or that there is no run yet; never 'all is well' while
        something is down or the last runs left part of the pool unchecked (monitoring incomplete)."""
        config = self._current()
        zh = self.lang == "zh"
        db = config.state_path / DB_FILE
        if not db.is_file():
            body = ["> 尚无运行记录。" if zh else "> No run recorded yet."]
            title = self._title("监控已启动，尚无运行记录", "monitor started, no run recorded yet")
        else:
            with StateStore(db) as store:
                f = store.figures(config.env, since=now - 86400, until=now + 1)
                states = store.load_states(config.env)
                blind = _blind(store.load_memory(config.env), self.lang)
            avail = "-" if f.availability is None else f"{f.availability * 100:.2f}%"
            down = sorted(s.key for s in states.values() if s.status == "down" and s.breaker != "open")
            circuits = sorted(s.key for s in states.values() if s.breaker == "open")
            if zh:
                body = [f"> 过去 24 小时：运行 {f.runs} 次 · 检查 {f.checks} 次 · 失败 {f.failed_checks} 次 · "
                        f"可用率 {avail}",
                        f"> 当前故障 {len(down)} 个 · 熔断中 {len(circuits)} 个"]
            else:
                body = [f"> Last 24 h: {f.runs} runs · {f.checks} checks · {f.failed_checks} failed · "
                        f"availability {avail}", f"> Down now: {len(down)} · open circuits: {len(circuits)}"]
            named = [display_name(k, self.lang) for k in (*down, *circuits)]
            if named:
                shown = "、".join(named[:5]) if zh else ", ".join(named[:5])
                more = (f" 等 {len(named)} 个" if zh else f" and {len(named) - 5} more") if len(named) > 5 else ""
                body.append(f"> 故障接口：{shown}{more}" if zh else f"> Affected: {shown}{more}")
            if blind:
                body.append(f"> 监控不完整：最近的运行未检查全部接口（{'、'.join(blind)}）" if zh
                            else f"> Monitoring incomplete: the last runs did not check every interface "
                                 f"({', '.join(blind)})")
            if down or circuits:
                zh_t = f"{len(down)} 个接口故障" + (f"，{len(circuits)} 个熔断中" if circuits else "") if down \
                    else f"{len(circuits)} 个接口熔断中"
                en_t = ", ".join(x for x in (f"{len(down)} interface(s) down" if down else "",
                                             f"{len(circuits)} behind an open circuit" if circuits else "") if x)
                title = self._title(f"监控运行中，{zh_t}", f"monitor running, {en_t}")
            elif blind:
                title = self._title("监控运行中，监控不完整", "monitor running, monitoring incomplete")
            else:
                title = self._title("监控运行中，全部接口正常", "monitor running, all interfaces up")
        body.append(f"> 下次运行：{_clock(next_run)}" if zh else f"> Next run: {_clock(next_run)}")
        self._send(title, body, now, failed=0)


def _blind(memory: RunMemory, lang: str) -> list[str]:
    """What the last runs left unchecked, by the alert memory (policy.unchecked_step / shard_step): the services
    of a lost xdist worker's interfaces and the missing shards ('分片 2/3' / 'shard 2/3'; '?': every shard, N
    unknown); [] when they checked everything."""
    zh = lang == "zh"
    shards = [("全部分片" if zh else "every shard") if n == "?" else (f"分片 {n}" if zh else f"shard {n}")
              for n in memory.shards_missing]
    return sorted(memory.unchecked_names) + shards
