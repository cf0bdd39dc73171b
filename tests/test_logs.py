from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from pytest_apimon.config import LoggingConfig
from pytest_apimon.logs import LOGGER_NAME, setup_logging, teardown_logging

SECRET = "s3cr3t-Pa55"


def mask(text: str) -> str:
    return text.replace(SECRET, "******")


@pytest.fixture(autouse=True)
def _clean() -> Iterator[None]:
    teardown_logging()
    yield
    teardown_logging()


def ours(logger: logging.Logger) -> list[logging.Handler]:
    return [h for h in logger.handlers if type(h).__module__ == "pytest_apimon.logs"]


def test_writes_utf8_file_relative_to_base_dir_with_parents(tmp_path: Path) -> None:
    log = setup_logging(LoggingConfig(file="deep/er/run.log"), tmp_path)
    assert log.name == LOGGER_NAME
    logging.getLogger("pytest_apimon.engine").info("接口 %s 正常", "user.login")
    teardown_logging()
    text = (tmp_path / "deep/er/run.log").read_text(encoding="utf-8")
    assert "INFO" in text and "pytest_apimon.engine: 接口 user.login 正常" in text
    assert text[:4].isdigit()  # starts with a timestamp


def test_level_from_config(tmp_path: Path) -> None:
    setup_logging(LoggingConfig(file="a.log", level="warning"), tmp_path)
    log = logging.getLogger(LOGGER_NAME)
    log.info("quiet")
    log.warning("loud")
    teardown_logging()
    text = (tmp_path / "a.log").read_text(encoding="utf-8")
    assert "loud" in text and "quiet" not in text


def test_rotation_at_max_bytes_keeps_configured_backups(tmp_path: Path) -> None:
    setup_logging(LoggingConfig(file="r.log", max_bytes=300, backups=2), tmp_path)
    log = logging.getLogger(LOGGER_NAME)
    for i in range(100):
        log.info("line %03d %s", i, "x" * 40)
    teardown_logging()
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["r.log", "r.log.1", "r.log.2"]
    for name in names:
        assert 0 < (tmp_path / name).stat().st_size <= 300
    assert "line 099" in (tmp_path / "r.log").read_text(encoding="utf-8")


def test_zero_backups_still_bounds_the_file(tmp_path: Path) -> None:
    setup_logging(LoggingConfig(file="r.log", max_bytes=300, backups=0), tmp_path)
    log = logging.getLogger(LOGGER_NAME)
    for i in range(100):
        log.info("line %03d %s", i, "x" * 40)
    teardown_logging()
    assert [p.name for p in tmp_path.iterdir()] == ["r.log"]
    assert (tmp_path / "r.log").stat().st_size <= 300


def test_mask_hides_secret_in_file_args_and_traceback(tmp_path: Path) -> None:
    setup_logging(LoggingConfig(file="m.log"), tmp_path, mask=mask)
    child = logging.getLogger("pytest_apimon.auth")
    child.info("login with password=%s", SECRET)
    child.warning(f"raw f-string {SECRET}")
    try:
        raise RuntimeError(f"token {SECRET} rejected")
    except RuntimeError:
        child.exception("login failed")
    teardown_logging()
    text = (tmp_path / "m.log").read_text(encoding="utf-8")
    assert SECRET not in text
    assert "password=******" in text and "raw f-string ******" in text and "token ****** rejected" in text


def test_mask_applies_to_pytest_capture_too(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    setup_logging(LoggingConfig(file=None), tmp_path, mask=mask)
    with caplog.at_level(logging.INFO, logger=LOGGER_NAME):
        logging.getLogger("pytest_apimon.engine").info("header Authorization: Bearer %s", SECRET)
    assert SECRET not in caplog.text and "Bearer ******" in caplog.text
    assert list(tmp_path.iterdir()) == []  # file: null writes nothing


def test_broken_mask_hides_the_message(tmp_path: Path) -> None:
    def boom(text: str) -> str:
        raise ValueError("bug")

    setup_logging(LoggingConfig(file="b.log"), tmp_path, mask=boom)
    logging.getLogger(LOGGER_NAME).warning("secret %s", SECRET)
    teardown_logging()
    text = (tmp_path / "b.log").read_text(encoding="utf-8")
    assert SECRET not in text and "masking failed" in text


def test_idempotent_and_teardown(tmp_path: Path) -> None:
    logger = logging.getLogger(LOGGER_NAME)
    before_handlers, before_level = list(logger.handlers), logger.level
    cfg = LoggingConfig(file="i.log", level="DEBUG")
    setup_logging(cfg, tmp_path, mask=mask)
    first = len(logger.handlers)
    setup_logging(cfg, tmp_path, mask=mask)
    assert len(logger.handlers) == first
    assert len(ours(logger)) == 2  # the masking handler and the file handler
    logger.info("once")
    teardown_logging()
    teardown_logging()  # safe to repeat
    assert logger.handlers == before_handlers and logger.level == before_level
    assert (tmp_path / "i.log").read_text(encoding="utf-8").count("once") == 1


def test_reconfigure_switches_file(tmp_path: Path) -> None:
    setup_logging(LoggingConfig(file="one.log"), tmp_path)
    setup_logging(LoggingConfig(file="two.log"), tmp_path)
    logging.getLogger(LOGGER_NAME).info("hello")
    teardown_logging()
    assert (tmp_path / "one.log").read_text(encoding="utf-8") == ""
    assert "hello" in (tmp_path / "two.log").read_text(encoding="utf-8")
