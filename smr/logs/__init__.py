"""Logging for ``smr serve``, ``smr api`` and ``smr worker``: text or JSON lines
(``SMR_LOG_FORMAT``), each carrying the request, event, run and delivery ids it concerns, and
none carrying a secret or a whole phone number (see :mod:`smr.logs.redact`)."""

from __future__ import annotations

import logging
import sys
from typing import Literal, TextIO

from smr.logs import context
from smr.logs.context import bind, note, note_events, request_scope
from smr.logs.formatters import JsonFormatter, TextFormatter
from smr.logs.redact import Redact, redact

__all__ = [
    "LogFormat",
    "bind",
    "configure",
    "handler",
    "note",
    "note_events",
    "redact",
    "request_scope",
]

LogFormat = Literal["text", "json"]
#: Loggers that write whole URLs, filtered where the record is made, whatever handles it.
URL_LOGGERS = ("uvicorn.access", "httpx")


def configure(
    log_format: LogFormat = "text", *, level: int = logging.INFO, stream: TextIO | None = None
) -> logging.Handler:
    """One handler on the root logger (replacing any), in ``log_format``; uvicorn's loggers
    propagate to it when uvicorn is run with ``log_config=None``."""
    installed = handler(log_format, stream or sys.stderr)
    logging.basicConfig(level=level, handlers=[installed], force=True)
    return installed


def handler(log_format: LogFormat, stream: TextIO) -> logging.Handler:
    """A handler writing ``log_format`` lines to ``stream``, redacting and adding ids; the
    loggers of :data:`URL_LOGGERS` are protected too."""
    found = logging.StreamHandler(stream)
    found.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    found.addFilter(Redact())
    found.addFilter(context.WithIds())
    for name in URL_LOGGERS:
        protect(logging.getLogger(name))
    return found


def protect(logger: logging.Logger) -> None:
    """Redact every record ``logger`` makes, before any handler (its own included) sees it."""
    if not any(isinstance(f, Redact) for f in logger.filters):
        logger.addFilter(Redact())
