"""The JSON log formatter: one parseable object per line, with the fields collectors need."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from moot.infra.logs import JsonFormatter


@pytest.fixture
def captured() -> Iterator[tuple[logging.Logger, io.StringIO]]:
    """A logger of its own, writing through JsonFormatter into a string."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("moot.test.logs")
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    try:
        yield logger, stream
    finally:
        logger.removeHandler(handler)
        logger.propagate = True


def lines(stream: io.StringIO) -> list[dict[str, Any]]:
    text = stream.getvalue()
    assert text.endswith("\n")
    return [json.loads(line) for line in text.splitlines()]


def test_a_record_is_one_json_object_with_its_fields(
    captured: tuple[logging.Logger, io.StringIO],
) -> None:
    logger, stream = captured
    before = datetime.now(UTC)
    logger.warning("room server %s: %s -> %s", "room1", "online", "suspect")
    [entry] = lines(stream)
    assert entry["level"] == "WARNING"
    assert entry["logger"] == "moot.test.logs"
    assert entry["message"] == "room server room1: online -> suspect"
    assert entry["ts"].endswith("Z")  # UTC, ISO 8601
    at = datetime.fromisoformat(entry["ts"].replace("Z", "+00:00"))
    assert before - timedelta(seconds=1) <= at <= datetime.now(UTC) + timedelta(seconds=1)
    assert "exc" not in entry


def test_an_exception_is_in_exc_on_the_same_line(
    captured: tuple[logging.Logger, io.StringIO],
) -> None:
    logger, stream = captured
    try:
        raise ValueError("bad\nvalue")
    except ValueError:
        logger.exception("could not store %d journal event(s)", 3)
    assert stream.getvalue().count("\n") == 1  # the traceback did not break the line
    [entry] = lines(stream)
    assert entry["level"] == "ERROR"
    assert entry["message"] == "could not store 3 journal event(s)"
    assert entry["exc"].startswith("Traceback (most recent call last):")
    assert "ValueError: bad\nvalue" in entry["exc"]


def test_extra_fields_are_included_and_never_replace_the_fixed_ones(
    captured: tuple[logging.Logger, io.StringIO],
) -> None:
    logger, stream = captured
    logger.info(
        "meeting opened",
        extra={"meeting_id": "q4nvyd8s2k", "epoch": 2, "path": Path("/tmp/x"), "level": "fake"},
    )
    [entry] = lines(stream)
    assert entry["meeting_id"] == "q4nvyd8s2k"
    assert entry["epoch"] == 2
    assert entry["path"] == "/tmp/x"  # not JSON by itself: shown as text
    assert entry["level"] == "INFO"
    # Nothing of LogRecord's own attributes leaks in.
    assert set(entry) == {"ts", "level", "logger", "message", "meeting_id", "epoch", "path"}


def test_uvicorns_colour_copy_of_the_message_is_dropped(
    captured: tuple[logging.Logger, io.StringIO],
) -> None:
    logger, stream = captured
    logger.info("Started server process [%d]", 42, extra={"color_message": "\x1b[36m42\x1b[0m"})
    [entry] = lines(stream)
    assert entry["message"] == "Started server process [42]"
    assert "color_message" not in entry


def test_setting_json_routes_uvicorns_loggers_through_the_formatter() -> None:
    """uvicorn configures its loggers from LOGGING_CONFIG when it starts: JSON there too."""
    import copy
    import logging.config

    from uvicorn import config as uvicorn_config

    from moot.infra import logs

    saved = copy.deepcopy(uvicorn_config.LOGGING_CONFIG)
    loggers = [logging.getLogger(n) for n in ("", "uvicorn", "uvicorn.error", "uvicorn.access")]
    states = [(lg.level, list(lg.handlers), lg.propagate) for lg in loggers]
    try:
        logs.setup("info", "json")
        assert isinstance(logging.getLogger().handlers[0].formatter, JsonFormatter)
        logging.config.dictConfig(uvicorn_config.LOGGING_CONFIG)  # what uvicorn.Config does
        handler = logging.getLogger("uvicorn").handlers[0]
        assert isinstance(handler.formatter, JsonFormatter)
    finally:  # the process's logging as it was, for the tests after this one
        logging.captureWarnings(False)
        uvicorn_config.LOGGING_CONFIG.clear()
        uvicorn_config.LOGGING_CONFIG.update(saved)
        for lg, (level, handlers, propagate) in zip(loggers, states, strict=True):
            lg.setLevel(level)
            lg.handlers[:] = handlers
            lg.propagate = propagate


def test_the_setting_accepts_text_and_json_in_any_case(monkeypatch: pytest.MonkeyPatch) -> None:
    from pydantic import ValidationError

    from moot.infra.settings import RoomSettings

    assert RoomSettings().log_format == "text"
    monkeypatch.setenv("MOOT_LOG_FORMAT", "JSON")
    assert RoomSettings().log_format == "json"
    monkeypatch.setenv("MOOT_LOG_FORMAT", "yaml")
    with pytest.raises(ValidationError, match="log_format"):
        RoomSettings()
