"""Log lines as JSON objects, one a line (MROUTE_LOG_FORMAT=json, `mroute actor --log-json`):
what a log collector reads without a parser of ours. Shared by the actors and the runner."""

from __future__ import annotations

import logging
from typing import Any

import orjson


class JsonLines(logging.Formatter):
    """One JSON object a line (MROUTE_LOG_FORMAT=json): time, level, actor, message, and
    the TaskId and AgentId a line is about, when it says (logging's `extra`)."""

    def __init__(self, actor: str):
        super().__init__()
        self.actor = actor

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {"at": round(record.created, 6), "level": record.levelname, "actor": self.actor,
                                "message": record.getMessage()}
        for key in ("TaskId", "AgentId"):
            value = getattr(record, key, None)
            if value is not None:
                line[key] = value
        if record.exc_info:
            line["traceback"] = self.formatException(record.exc_info)
        return orjson.dumps(line).decode()
