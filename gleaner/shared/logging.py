"""JSON-lines logging with request and job context carried in contextvars."""

from __future__ import annotations

import contextvars
import functools
import logging
import os
import sys
import time
from typing import Any

import orjson

request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)
job_id: contextvars.ContextVar[int | None] = contextvars.ContextVar("job_id", default=None)
attempt: contextvars.ContextVar[int | None] = contextvars.ContextVar("attempt", default=None)

_RESERVED = set(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, context, and any `extra` fields."""

    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": f"{_second_text(int(record.created))}.{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "service": self.service,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for name, var in (("request_id", request_id), ("job_id", job_id), ("attempt", attempt)):
            value = var.get()
            if value is not None:
                entry[name] = value
        for key, value in record.__dict__.items():
            if key not in _RESERVED and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return orjson.dumps(entry, default=str).decode()


@functools.lru_cache(maxsize=4)
def _second_text(second: int) -> str:
    # a busy worker writes thousands of lines a second: format each second once
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))


class LineHandler(logging.Handler):
    """One `write(2)` per record on the file descriptor (stderr): no text layer and no separate flush."""

    def __init__(self, fd: int) -> None:
        super().__init__()
        self.fd = fd

    def emit(self, record: logging.LogRecord) -> None:
        try:
            data = (self.format(record) + "\n").encode()
            while data:
                data = data[os.write(self.fd, data) :]
        except Exception:  # noqa: BLE001 - logging must never take the service down
            self.handleError(record)


def _stderr_handler() -> logging.Handler:
    """Straight to stderr's file descriptor; a stderr without one (captured in tests) through its text layer."""
    try:
        fd = sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):  # io.UnsupportedOperation is an OSError
        return logging.StreamHandler(sys.stderr)
    sys.stderr.flush()
    return LineHandler(fd)


def setup(service: str, level: str) -> None:
    # the per-job lines make logging hot: skip what the JSON lines never show (the caller's frame, thread and
    # process names; the logging HOWTO's "Optimization" section)
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    logging._srcfile = None  # the documented switch that skips findCaller
    handler = _stderr_handler()
    handler.setFormatter(JsonFormatter(service))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in ("aiormq", "aio_pika", "aiohttp.access"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
