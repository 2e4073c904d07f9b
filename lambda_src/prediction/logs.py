"""One JSON object per log line, so CloudWatch Logs Insights can query the fields directly."""

from __future__ import annotations

import json
import logging
import sys
from typing import Any


class JsonLineFormatter(logging.Formatter):
    """The record's message, level and time, and the fields passed as ``extra={"fields": …}``."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry.update(getattr(record, "fields", {}))
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def json_logger(name: str) -> logging.Logger:
    """The logger ``name``, writing JSON lines to stdout through a handler of its own.

    Its own handler rather than the root logger's: the Lambda runtime installs a plain-text root
    handler, and the local API emulator has its own, so neither can reformat these lines.
    """
    logger = logging.getLogger(name)
    if not logger.handlers:
        handler = logging.StreamHandler(sys.stdout)
        handler.setFormatter(JsonLineFormatter())
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        logger.propagate = False
    return logger
