"""Log lines as text (the default) or as one JSON object a line (``SMR_LOG_FORMAT=json``)."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime

from smr.logs import context

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class TextFormatter(logging.Formatter):
    """The classic line, followed by the ids it concerns: ``[request_id=… event_id=…]``."""

    def __init__(self) -> None:
        super().__init__(TEXT_FORMAT)

    def formatMessage(self, record: logging.LogRecord) -> str:
        line = super().formatMessage(record)
        ids = context.of(record)
        if not ids:
            return line
        return f"{line} [{' '.join(f'{k}={_text(v)}' for k, v in ids.items())}]"


class JsonFormatter(logging.Formatter):
    """One JSON object a line: ``time`` (UTC, RFC 3339), ``level``, ``logger``, ``message``,
    the ids the line concerns, ``http`` for access lines, ``exception`` when there is one."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            **context.of(record),
        }
        access = _access(record)
        if access:
            line["http"] = access
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            line["exception"] = record.exc_text
        if record.stack_info:
            line["stack"] = record.stack_info
        return json.dumps(line, ensure_ascii=False, default=str)


def _access(record: logging.LogRecord) -> dict[str, object] | None:
    """uvicorn's access line ``client - "METHOD path HTTP/v" status`` as fields."""
    args = record.args
    if record.name != "uvicorn.access" or not isinstance(args, tuple) or len(args) != 5:
        return None
    client, method, path, version, status = args
    return {"client": client, "method": method, "path": path, "version": version, "status": status}


def _text(value: object) -> str:
    return ",".join(map(str, value)) if isinstance(value, list) else str(value)
