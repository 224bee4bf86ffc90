"""Logging of the server commands (`moot serve`, `moot room`): text or JSON lines.

`setup` is the one place that configures it. Text is the format of old: one line per
event, and uvicorn's own `INFO: …` lines. JSON is for log collectors: one object per
line with `ts`, `level`, `logger`, `message`, `exc` when there is an exception, and the
fields the code passes in `extra={...}`; uvicorn's loggers write through the same
formatter.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any, Literal

LogFormat = Literal["text", "json"]
LOG_FORMATS: tuple[LogFormat, ...] = ("text", "json")

TEXT_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"

# Attributes every LogRecord has: whatever else a record carries came in `extra`.
_STANDARD = frozenset(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {
    "message",
    "asctime",
    # uvicorn's copy of its message with terminal colours: the message says it already.
    "color_message",
}


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line (newlines inside values are escaped)."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        elif record.exc_text:
            entry["exc"] = record.exc_text
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        for key, value in record.__dict__.items():
            if key not in _STANDARD and key not in entry:  # the fields above win
                entry[key] = value
        # default=str: an extra value JSON cannot carry (a datetime, a path) is still shown.
        return json.dumps(entry, default=str)


def setup(level: str, log_format: LogFormat = "text") -> None:
    """Configure the process's logging, before uvicorn starts (it reads LOGGING_CONFIG)."""
    if log_format == "text":
        logging.basicConfig(level=level.upper(), format=TEXT_FORMAT, stream=sys.stderr)
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    logging.basicConfig(level=level.upper(), handlers=[handler], force=True)
    logging.captureWarnings(True)  # warnings too, as JSON lines, not raw text on stderr
    _uvicorn_through_json()


def _uvicorn_through_json() -> None:
    """uvicorn configures its loggers itself, from the dict `uvicorn.config.LOGGING_CONFIG`
    (the default of `uvicorn.Config(log_config=...)`, which `moot room` and `moot serve`
    leave as it is): give its handlers Moot's JSON formatter there, so every uvicorn line
    (start-up, errors, an exception in the app) is a JSON line too."""
    from uvicorn.config import LOGGING_CONFIG

    for name in ("default", "access"):
        LOGGING_CONFIG["formatters"][name] = {"()": f"{__name__}.JsonFormatter"}
