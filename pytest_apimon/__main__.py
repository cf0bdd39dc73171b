"""`python -m pytest_apimon watch --every 15m [watch options] [pytest args…]` (console script: `apimon`)."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from .config import ConfigError, parse_duration
from .watch import WatchAlerts, Watcher, find_config, option_value, parse_hhmm, pytest_command

# The watcher's own options come first; everything from the first other token (or after `--`) goes to pytest.
_VALUE_OPTIONS = ("--every", "--heartbeat", "--config", "--cycles", "--broken-remind")
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
    return parser


def _duration(text: str) -> float:
    try:
        seconds = parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    if seconds <= 0:
        raise argparse.ArgumentTypeError("expected a duration > 0")
    return seconds


def _hhmm(text: str) -> str:
    try:
        parse_hhmm(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def watch(argv: Sequence[str]) -> int:
    ours, pytest_args = split_args(argv)
    parser = _parser()
    opts = parser.parse_args(ours)
    try:
        command = pytest_command(pytest_args)
    except ValueError as exc:
        parser.error(str(exc))
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        alerts = WatchAlerts(find_config(pytest_args, opts.config), env=option_value(pytest_args, "--apimon-env"))
    except ConfigError as exc:
        print(f"apimon watch: invalid config: {exc}", file=sys.stderr)
        return 4
    watcher = Watcher(opts.every, command, run_now=opts.run_now, heartbeat=opts.heartbeat, cycles=opts.cycles,
                      broken_remind=opts.broken_remind, on_broken=alerts.broken, on_repaired=alerts.repaired,
                      on_heartbeat=alerts.heartbeat, echo=not opts.quiet)
    watcher.install_signal_handlers()
    return watcher.run()


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print("usage: apimon watch --every 15m [--heartbeat HH:MM] [--run-now] [pytest args…]\n"
              "       apimon watch --help")
        return 0 if argv else 2
    if argv[0] != "watch":
        print(f"apimon: unknown command {argv[0]!r} (commands: watch)", file=sys.stderr)
        return 2
    return watch(argv[1:])


if __name__ == "__main__":
    sys.exit(main())
