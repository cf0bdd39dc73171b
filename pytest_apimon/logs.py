"""The run log: a size-rotated UTF-8 file for the "pytest_apimon" logger, with secrets masked.

Console output is pytest's business (log capture / live logging read the same logger through the
root logger), so no StreamHandler is added here. Not multi-process safe: only one process (the xdist
controller) should call setup_logging for a given file.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Callable
from logging.handlers import RotatingFileHandler
from pathlib import Path
from typing import Any

from .config import LoggingConfig
from .statedir import PRIVATE_FILE

LOGGER_NAME = "pytest_apimon"
FORMAT = "%(asctime)s %(levelname)-8s %(name)s: %(message)s"

# What setup_logging changed, so teardown_logging undoes exactly that (and a second setup replaces it).
_added: list[logging.Handler] = []
_saved_level: list[int] = []


class MaskFilter(logging.Filter):
    """Renders each record's message (msg % args), masks it and stores the result back in the record.

    Rewriting the record in place matters: the same record object then travels on to the root
    logger's handlers (pytest's capture), which therefore never see the raw secret either.
    """

    def __init__(self, mask: Callable[[str], str]) -> None:
        super().__init__()
        self.mask = mask

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # bad format args: keep what we can rather than drop the record
            message = f"{record.msg} {record.args!r}"
        if record.exc_info and not record.exc_text:
            # Formatters reuse exc_text when set, so the traceback text is masked too.
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        try:
            record.msg, record.args = self.mask(message), ()
            if record.exc_text:
                record.exc_text = self.mask(record.exc_text)
            if record.stack_info:
                record.stack_info = self.mask(record.stack_info)
        except Exception:  # a broken mask must not leak the raw text
            record.msg, record.args = "<log message hidden: masking failed>", ()
            record.exc_text = record.stack_info = None
        return True


class _MaskOnly(logging.Handler):
    """Writes nothing: its filter masks records even when file logging is off (pytest still shows them)."""

    def emit(self, record: logging.LogRecord) -> None:
        pass


class _RotatingFile(RotatingFileHandler):
    """RotatingFileHandler where backups=0 still bounds the file (truncate) instead of never rotating,
    and every file it opens gets `mode` (0600 unless the team publishes its reports, statedir.py)."""

    file_mode = PRIVATE_FILE

    def _open(self) -> Any:
        stream = super()._open()
        with contextlib.suppress(OSError):
            os.chmod(self.baseFilename, self.file_mode)
        return stream

    def doRollover(self) -> None:
        if self.backupCount > 0:
            super().doRollover()
            return
        if self.stream:
            self.stream.close()
        self.stream = open(self.baseFilename, "w", encoding=self.encoding)  # closed by the handler


def mask_all_records(mask: Callable[[str], str]) -> Callable[[], None]:
    """Mask the message (and traceback) of every log record of every logger, ours, urllib3's, requests' or a
    user's, when it is created: pytest's capture, live logging, --log-file and JUnit then only ever see
    the masked text (`--log-level=DEBUG` prints urllib3's request lines with their query strings).
    Returns the function that restores the previous record factory."""
    previous = logging.getLogRecordFactory()

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        try:
            record.msg, record.args = mask(record.getMessage()), ()
            if record.exc_info:
                record.exc_text = mask(logging.Formatter().formatException(record.exc_info))
        except Exception:  # a broken mask must not leak the raw text
            record.msg, record.args, record.exc_text = "<log message hidden: masking failed>", (), None
        return record

    logging.setLogRecordFactory(factory)

    def restore() -> None:
        if logging.getLogRecordFactory() is factory:
            logging.setLogRecordFactory(previous)

    return restore


def setup_logging(cfg: LoggingConfig, base_dir: Path, mask: Callable[[str], str] | None = None,
                  file_mode: int = PRIVATE_FILE) -> logging.Logger:
    """Configure the "pytest_apimon" logger from cfg. Calling again replaces the previous setup (no duplicates)."""
    teardown_logging()
    logger = logging.getLogger(LOGGER_NAME)
    _saved_level.append(logger.level)
    logger.setLevel(cfg.level.upper())
    mask_filter = MaskFilter(mask) if mask else None
    if mask_filter:
        # First in the list so the record is masked before any other handler of ours sees it.
        _add(logger, _MaskOnly(), mask_filter)
    if cfg.file:
        path = Path(base_dir) / Path(cfg.file).expanduser()
        path.parent.mkdir(parents=True, exist_ok=True)
        handler = _RotatingFile(path, maxBytes=cfg.max_bytes, backupCount=cfg.backups, encoding="utf-8", delay=True)
        handler.file_mode = file_mode
        handler.stream = handler._open()
        handler.setFormatter(logging.Formatter(FORMAT))
        _add(logger, handler, mask_filter)
    return logger


def _add(logger: logging.Logger, handler: logging.Handler, mask_filter: logging.Filter | None) -> None:
    if mask_filter:
        handler.addFilter(mask_filter)  # also on the file handler, so reordering can never leak
    logger.addHandler(handler)
    _added.append(handler)


def teardown_logging() -> None:
    """Remove and close the handlers setup_logging added and restore the logger's level. Safe to call twice."""
    logger = logging.getLogger(LOGGER_NAME)
    while _added:
        handler = _added.pop()
        logger.removeHandler(handler)
        handler.close()
    if _saved_level:
        logger.setLevel(_saved_level.pop())
