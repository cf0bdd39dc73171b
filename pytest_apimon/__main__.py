"""`python -m pytest_apimon watch|merge|export …` (console script: `apimon`): the watcher, merging shard results,
and `apimon export --from … --to … --format csv|json` (availability and latency for SLA reports)."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from . import export, times
from .config import ConfigError, load_config, parse_duration
from .messages import LEVELS, localize, localize_problem, say
from .state import DB_FILE, StateError, StateStore
from .watch import (
    WatchAlerts,
    Watcher,
    find_config,
    option_value,
    parse_hhmm,
    pytest_command,
    resolve_timezone,
    schedule_zone,
)

# The watcher's own options come first; everything from the first other token (or after `--`) goes to pytest.
_VALUE_OPTIONS = ("--every", "--heartbeat", "--config", "--cycles", "--broken-remind", "--timezone")
_FLAG_OPTIONS = ("--run-now", "--quiet", "-h", "--help")


def split_args(argv: Sequence[str]) -> tuple[list[str], list[str]]:
    ours: list[str] = []
    i = 0
    while i < len(argv):
        token = argv[i]
        if token == "--":
            return ours, list(argv[i + 1:])
        name = token.split("=", 1)[0]
        if name in _VALUE_OPTIONS:
            take = 1 if "=" in token else 2
            ours += argv[i:i + take]
            i += take
        elif token in _FLAG_OPTIONS:
            ours.append(token)
            i += 1
        else:
            break
    return ours, list(argv[i:])


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="apimon watch",
        description="Run `python -m pytest --apimon …` on a fixed schedule; pytest arguments follow the watch "
                    "options, e.g.: apimon watch --every 15m Interface-pool/ -n 4")
    parser.add_argument("--every", required=True, type=_duration, help="interval, e.g. 15m, 1h, 30s")
    parser.add_argument("--heartbeat", metavar="HH:MM", type=_hhmm, help="send a daily 'monitor alive' message")
    parser.add_argument("--config", metavar="FILE",
                        help="config.yaml for the watcher's own messages (default: --apimon-config or ./config.yaml)")
    parser.add_argument("--run-now", action="store_true", help="run once at start, then on the schedule")
    parser.add_argument("--cycles", type=int, metavar="N", help="stop after N cycles (default: run until stopped)")
    parser.add_argument("--broken-remind", type=_duration, default=3600.0, metavar="DURATION",
                        help="repeat the 'monitor broken' message at most this often (default 1h)")
    parser.add_argument("--quiet", action="store_true", help="do not echo the pytest output")
    parser.add_argument("--timezone", metavar="ZONE", type=_zone,
                        help="time zone of the schedule and heartbeat: an IANA name such as Asia/Shanghai or an "
                             "offset such as +08:00 (default: report.timezone of the config, else the machine's); "
                             "--every 24h runs at 00:00 there, --every 1h on the hour")
    return parser


def _checked(parse: Callable[[str], object]) -> Callable[[str], str]:
    """An argparse `type` that keeps the text but refuses what `parse` refuses (ValueError), with its message."""
    def check(text: str) -> str:
        try:
            parse(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None
        return text
    return check


_zone = _checked(resolve_timezone)
_hhmm = _checked(parse_hhmm)


def _duration(text: str) -> float:
    try:
        seconds = parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    if seconds <= 0:
        raise argparse.ArgumentTypeError("expected a duration > 0")
    return seconds



def watch(argv: Sequence[str]) -> int:
    ours, pytest_args = split_args(argv)
    parser = _parser()
    opts = parser.parse_args(ours)
    try:
        command = pytest_command(pytest_args)
    except ValueError as exc:
        parser.error(str(exc))
    try:
        alerts = WatchAlerts(find_config(pytest_args, opts.config), env=option_value(pytest_args, "--apimon-env"))
    except ConfigError as exc:
        lang = option_value(pytest_args, "--apimon-lang") or "zh"
        print(say("cli.invalid_config", lang, cmd="watch", text=localize_problem(str(exc), lang)), file=sys.stderr)
        return 4
    _log_to_stderr(alerts.lang)
    zone = schedule_zone(opts.timezone, alerts.config)
    times.use_zone(zone)  # the watcher's message times follow the schedule's zone
    watcher = Watcher(opts.every, command, run_now=opts.run_now, heartbeat=opts.heartbeat, cycles=opts.cycles,
                      broken_remind=opts.broken_remind, on_broken=alerts.broken, on_repaired=alerts.repaired,
                      on_heartbeat=alerts.heartbeat, echo=not opts.quiet, tz=resolve_timezone(zone), lang=alerts.lang)
    watcher.install_signal_handlers()
    from .streams import masked_output

    with masked_output(alerts.mask):  # the watcher's notifications: see streams.py
        return watcher.run()


class _Formatter(logging.Formatter):
    """The watcher's stderr lines with their level in the reader's language (messages.LEVELS)."""

    def __init__(self, lang: str) -> None:
        super().__init__("%(asctime)s %(levelname)s %(message)s" if lang == "zh"
                         else "%(asctime)s %(levelname)s %(name)s: %(message)s")
        self.lang = lang

    def format(self, record: logging.LogRecord) -> str:
        if self.lang == "zh":
            record = logging.makeLogRecord({**record.__dict__, "levelname": LEVELS.get(record.levelname,
                                                                                       record.levelname)})
        return super().format(record)


def _log_to_stderr(lang: str) -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(_Formatter(lang))
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(logging.INFO)


def merge(argv: Sequence[str]) -> int:
    """`apimon merge [options] results-*.json`: the end of a run split with --apimon-shard K/N (see merge.py)."""
    from pathlib import Path

    from .config import load_config
    from .merge import MergeError, Outputs, finish
    from .redact import Redactor
    from .runlock import LockTimeout
    from .streams import masked_output

    parser = argparse.ArgumentParser(
        prog="apimon merge",
        description="Combine the results files of `pytest --apimon … --apimon-shard K/N` runs into one run: one "
                    "report, one notification, one state update, one JUnit file. Exit 0: all passed; 1: some "
                    "interface failed; 2: a shard's results are missing; 4: bad config or files.")
    parser.add_argument("files", nargs="+", type=Path, metavar="RESULTS.json")
    parser.add_argument("--config", metavar="FILE", help="config.yaml (default: ./config.yaml if present)")
    parser.add_argument("--env", metavar="NAME", help="environment (as --apimon-env)")
    parser.add_argument("--lang", choices=("zh", "en"), help="report language (default: config or zh)")
    parser.add_argument("--report", metavar="PATH", help="write the Markdown report to PATH")
    parser.add_argument("--json", metavar="PATH", help="write the merged JSON results to PATH")
    parser.add_argument("--html", metavar="PATH", help="write the status page to PATH")
    parser.add_argument("--prometheus", metavar="PATH", help="write the node_exporter textfile to PATH")
    parser.add_argument("--junitxml", metavar="PATH", help="write one JUnit XML file for the whole run to PATH")
    parser.add_argument("--dry-run", action="store_true", help="print the notification instead of sending it "
                        "(state is not updated)")
    parser.add_argument("--no-breaker", action="store_true", help="as --apimon-no-breaker")
    opts = parser.parse_args(argv)
    config_path = Path(opts.config) if opts.config else (Path("config.yaml") if Path("config.yaml").is_file() else None)
    try:
        config = load_config(config_path, env=opts.env)
    except ConfigError as exc:
        lang = opts.lang or "zh"
        print(say("cli.invalid_config", lang, cmd="merge", text=localize_problem(str(exc), lang)), file=sys.stderr)
        return 4
    lang = opts.lang or config.report.language
    outputs = Outputs(report=opts.report, json=opts.json, html=opts.html, prometheus=opts.prometheus,
                      junitxml=opts.junitxml)
    restore = times.use_zone(config.report.timezone)  # the report's and the message's times, as a run shows them
    # Masked while it runs (streams.py): the notification goes to the webhook URL with the robot's key in it.
    with masked_output(Redactor.with_environment(config.secrets).text):
        try:
            return finish(opts.files, config, lang=opts.lang, outputs=outputs, dry_run=opts.dry_run,
                          breaker=not opts.no_breaker)
        except (MergeError, LockTimeout) as exc:
            print(say("cli.error", lang, cmd="merge", text=localize(str(exc), lang)), file=sys.stderr)
            return 4
        finally:
            restore()


def export_command(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="apimon export",
        description="Per-interface and per-service availability and latency for a period, from the history "
                    "(state.db), e.g.: apimon export --from 2026-01-01 --to 2026-03-31 --format csv -o q1.csv")
    parser.add_argument("--from", dest="start", required=True, metavar="DATE",
                        help="first day (YYYY-MM-DD, local) or an ISO 8601 date-time")
    parser.add_argument("--to", dest="end", required=True, metavar="DATE",
                        help="last day, included (YYYY-MM-DD), or an ISO 8601 date-time, excluded")
    parser.add_argument("--format", choices=("csv", "json"), default="csv")
    parser.add_argument("--config", metavar="FILE", help="config.yaml (default: ./config.yaml if present)")
    parser.add_argument("--env", help="environment (default: env: of the config)")
    parser.add_argument("--state-dir", metavar="DIR", help="the state folder (default: state.dir of the config)")
    parser.add_argument("-o", "--output", metavar="FILE", help="write here (CSV with a UTF-8 BOM for Excel) "
                                                               "instead of standard output")
    opts = parser.parse_args(list(argv))
    try:
        period = export.Period(export.parse_bound(opts.start), export.parse_bound(opts.end, end=True))
    except ValueError as exc:
        parser.error(str(exc))
    if period.end <= period.start:
        parser.error("--to must be after --from")
    try:
        config_path = find_config([], opts.config)
        config = load_config(config_path, env=opts.env)
    except ConfigError as exc:
        print(say("cli.invalid_config", "zh", cmd="export", text=localize_problem(str(exc), "zh")), file=sys.stderr)
        return 4
    lang = config.report.language
    db = Path(opts.state_dir) / DB_FILE if opts.state_dir else config.state_path / DB_FILE
    if not db.is_file():
        print(say("cli.no_history", lang, path=db), file=sys.stderr)
        return 1
    try:
        with StateStore(db, **config.state.store_options()) as store:
            data = export.rows(store, config.env, period)
            if not data:
                print(say("cli.no_checks", lang, env=config.env, envs=", ".join(store.envs()) or say("cli.none", lang)),
                      file=sys.stderr)
            text = export.render(data, opts.format)
    except StateError as exc:
        print(say("cli.error", lang, cmd="export", text=localize(str(exc), lang)), file=sys.stderr)
        return 1
    if opts.output:
        encoding = "utf-8-sig" if opts.format == "csv" else "utf-8"  # Excel reads a BOM-less CSV as ANSI
        Path(opts.output).write_text(text, encoding=encoding, newline="")
    else:
        sys.stdout.write(text)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print("usage: apimon watch --every 15m [--heartbeat HH:MM] [--run-now] [pytest args…]\n"
              "       apimon merge [--junitxml PATH] [--report PATH] results-*.json\n"
              "       apimon export --from DATE --to DATE [--format csv|json] [-o FILE]\n"
              "       apimon watch --help | apimon merge --help | apimon export --help")
        return 0 if argv else 2
    if argv[0] == "merge":
        return merge(argv[1:])
    if argv[0] == "export":
        return export_command(argv[1:])
    if argv[0] != "watch":
        print(f"apimon: unknown command {argv[0]!r} (commands: watch, merge, export)", file=sys.stderr)
        return 2
    return watch(argv[1:])


if __name__ == "__main__":
    sys.exit(main())
