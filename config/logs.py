"""Logs a person can follow: a request ID on every line, JSON lines on request.

Each web request gets an ID (the load balancer's `X-Request-ID` when it sent
a sane one, a new one otherwise), echoed back in the `X-Request-ID` header.
The ID travels with every Celery task queued while it is current (a message
header, see config/celery.py), so the worker's lines, AWS's `requestId`
included, carry the ID of the click that started them: one grep follows an
import from the browser to AWS.

`LOG_FORMAT=json` (the default under `make serve`) writes one JSON object per
line; otherwise lines are plain text with the ID in brackets.
"""

import json
import logging
import logging.config
import re
import time
import uuid
from contextvars import ContextVar
from datetime import UTC, datetime

REQUEST_ID_HEADER = "X-Request-ID"
# What a proxy's ID may look like; anything else (too long, odd characters,
# a forged log line) is replaced by our own.
SANE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{8,128}$")

_request_id = ContextVar("request_id", default="")

request_logger = logging.getLogger("portal.request")


def current_request_id():
    return _request_id.get()


def set_request_id(request_id):
    """Make `request_id` current; returns a token for reset_request_id."""
    return _request_id.set(request_id or "")


def reset_request_id(token):
    _request_id.reset(token)


def new_request_id():
    return uuid.uuid4().hex


class RequestIdMiddleware:
    """First in the chain: every later line of this request carries its ID."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        incoming = request.headers.get(REQUEST_ID_HEADER, "")
        request_id = incoming if SANE_REQUEST_ID.match(incoming) else new_request_id()
        request.request_id = request_id
        token = set_request_id(request_id)
        started = time.monotonic()
        try:
            response = self.get_response(request)
            response[REQUEST_ID_HEADER] = request_id
            request_logger.info(
                "%s %s %s",
                request.method,
                request.path,
                response.status_code,
                extra={
                    "method": request.method,
                    "path": request.path,
                    "status": response.status_code,
                    "duration_ms": round((time.monotonic() - started) * 1000, 1),
                },
            )
            return response
        finally:
            reset_request_id(token)


class RequestIdFilter(logging.Filter):
    """Puts the current request ID on every record (empty outside a request or task)."""

    def filter(self, record):
        if not getattr(record, "request_id", ""):
            record.request_id = current_request_id()
        return True


# Attributes every LogRecord has; anything else on a record came from
# `extra=` and goes into the JSON object as is.
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time (UTC), level, logger, message, request_id, extras."""

    def format(self, record):
        line = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", ""),
            "process": record.process,
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and key not in line:
                line[key] = value
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str)


# Control characters as escapes (a newline as \x0a); a tab stays.
CONTROL_ESCAPES = {code: f"\\x{code:02x}" for code in [*range(32), 127] if code != 9}


class TextFormatter(logging.Formatter):
    """One line per record. Control characters in it are escaped: a CR or LF that a
    request's path carried cannot start a line of its own (a forged log line).
    A traceback still follows on lines of its own."""

    def __init__(self):
        super().__init__("%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s")

    def formatMessage(self, record):
        return super().formatMessage(record).translate(CONTROL_ESCAPES)


def configure(logging_settings):
    """settings.LOGGING_CONFIG: Django's dictConfig, and Python's warnings as log lines.

    A warning (a library's DeprecationWarning, Celery's about running as root)
    is otherwise printed to stderr as plain text, among the JSON lines.
    """
    logging.config.dictConfig(logging_settings)
    logging.captureWarnings(True)


def logging_config(log_format, level):
    """The LOGGING dict for settings.py."""
    formatter = "json" if log_format == "json" else "text"
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"request_id": {"()": RequestIdFilter}},
        "formatters": {
            "json": {"()": JsonFormatter},
            "text": {"()": TextFormatter},
        },
        "handlers": {
            "console": {
                "class": "logging.StreamHandler",
                "filters": ["request_id"],
                "formatter": formatter,
            }
        },
        "root": {"handlers": ["console"], "level": level},
        "loggers": {
            # boto's INFO lines ("Found credentials in ...") say nothing a person needs.
            **{
                name: {"level": "WARNING"}
                for name in ("botocore", "boto3", "urllib3", "axes", "django.server")
            },
            # Django's own request logger repeats our request line for 4xx/5xx
            # (a 404 is a WARNING there); errors still come through at ERROR.
            "django.request": {"level": "ERROR"},
        },
    }
