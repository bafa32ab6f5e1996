"""The embedded server's log lines: plain text, or one JSON object per line (``--log-format json``).

JSON lines are what log collectors (Fluent Bit, Vector, Cloud Logging) parse without a custom
pattern: each line carries its time (UTC, ISO 8601), level, logger and message, and a
traceback, when there is one, stays inside its line.
"""

from __future__ import annotations

import datetime
import json
import logging

TEXT_FORMAT = "serving.local: %(message)s"


class JsonLinesFormatter(logging.Formatter):
    """One JSON object per record: time, level, logger, message (and exception)."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.datetime.fromtimestamp(record.created, datetime.UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry)


def formatter(log_format: str) -> logging.Formatter:
    """The formatter for --log-format (text or json)."""
    return JsonLinesFormatter() if log_format == "json" else logging.Formatter(TEXT_FORMAT)
