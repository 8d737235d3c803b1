"""Structured logging for the ``routeguard`` logger hierarchy: JSON lines or key=value text.

:func:`configure_logging` installs one handler on the ``routeguard`` logger and stops those
records from propagating to the root logger, so RouteGuard's lines are formatted once, by us,
whatever else the host process logs. Every line carries ``ts`` (ISO-8601 UTC), ``level``,
``logger`` and ``event``, followed by the structured fields given as ``extra={...}``.

The level name is written out in both formats (``"level":"ERROR"``, ``level=ERROR``) and breaker
events are named ``circuit_breaker_<state>``, so the runbook's

    grep -E "(ERROR|CRITICAL|circuit_breaker)"

finds every error and every breaker transition in either format.

Secrets: the helpers here never log message content or headers, and :class:`RedactingFilter`
masks anything that still looks like a credential (bearer tokens, ``sk-...`` keys, the values of
``authorization``/``api-key``/``x-api-key`` and similar) in messages, fields and tracebacks. It is
the last line of defence, not permission to log request bodies.
"""

from __future__ import annotations

import functools
import logging
import re
import sys
import time
from collections.abc import Mapping
from typing import Any, Final, Literal, TextIO

import orjson

from routeguard.observability.metrics import BREAKER_STATE_NAMES

__all__ = [
    "LOGGER_NAME",
    "SECRET_MASK",
    "JsonFormatter",
    "RedactingFilter",
    "TextFormatter",
    "configure_logging",
    "log_breaker_transition",
    "logfmt_value",
    "redact",
    "redact_field",
]

LOGGER_NAME: Final = "routeguard"
SECRET_MASK: Final = "[REDACTED]"

# -- redaction -------------------------------------------------------------------------------

_SECRET_KEYS = (
    r"(?:proxy-)?authorization|x-api-key|api[-_]?key|access[-_]?token|refresh[-_]?token"
    r"|client[-_]?secret|password|secret"
)
# `key: value`, `key=value`, `"key": "value"`, `'key', 'value'` (a header tuple's repr), with an
# optional auth scheme before the value. The key and separator are kept so the line still says
# what was there.
_KEY_VALUE = re.compile(
    rf"(?i)\b({_SECRET_KEYS})"
    r"(\s*[:=]\s*[\"']?|[\"']\s*[:=,]\s*[\"']?)"
    r"(?:(?:bearer|basic|token)\s+)?[^\s\"',;&}\]]+"
)
_BEARER = re.compile(r"(?i)\b(bearer)\s+[A-Za-z0-9._~+/=-]{8,}")
_SK_KEY = re.compile(r"\bsk-[A-Za-z0-9_-]{10,}")
_JWT = re.compile(r"\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*")


def _may_hold_secret(text: str) -> bool:
    """Whether ``text`` has a word every pattern above needs.

    Lets the common clean string skip the four substitutions: a chain of ``in`` tests costs a
    fifth of a case-insensitive regex search, and this runs on every field of every log line.
    """
    low = text.lower()
    return (
        "authoriz" in low
        or "api" in low
        or "token" in low
        or "secret" in low
        or "password" in low
        or "bearer" in low
        or "sk-" in low
        or "eyj" in low
    )


_SECRET_FIELD_PARTS = (
    "authorization",
    "api_key",
    "apikey",
    "access_token",
    "refresh_token",
    "secret",
    "password",
)


def redact(text: str) -> str:
    """``text`` with everything that looks like a credential replaced by :data:`SECRET_MASK`."""
    if not _may_hold_secret(text):
        return text
    text = _KEY_VALUE.sub(rf"\1\2{SECRET_MASK}", text)
    text = _BEARER.sub(rf"\1 {SECRET_MASK}", text)
    text = _SK_KEY.sub(f"sk-{SECRET_MASK}", text)
    return _JWT.sub(SECRET_MASK, text)


@functools.lru_cache(maxsize=1024)
def _is_secret_key(key: str) -> bool:
    norm = key.lower().replace("-", "_")
    return norm == "x_api_key" or any(part in norm for part in _SECRET_FIELD_PARTS)


def redact_field(key: str, value: object) -> object:
    """A structured field's value, masked whole if its name is a credential's, else redacted."""
    if _is_secret_key(key):
        return SECRET_MASK
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, Mapping):
        return {k: redact_field(str(k), v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact_field("", v) for v in value]
    return value


# Attributes every LogRecord has; anything else on a record came from `extra=`.
_RESERVED: Final = frozenset(vars(logging.LogRecord("", logging.INFO, "", 0, "", None, None))) | {
    "message",
    "asctime",
    "taskName",
}


class RedactingFilter(logging.Filter):
    """Masks credentials in a record's message, extra fields and traceback, in place.

    Attached to the handler (a logger's filters do not see records from its children). It
    rewrites the record rather than the output so every formatter downstream gets the masked
    text, and it never drops a record: losing an error line would be worse than the leak it
    guards against.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # the formatter reports broken %-args itself; leave the record be
            return True
        record.msg = redact(message)
        record.args = None
        fields = record.__dict__
        for key in [k for k in fields if k not in _RESERVED]:
            fields[key] = redact_field(key, fields[key])
        if record.exc_info and not record.exc_text:
            record.exc_text = _EXC_FORMATTER.formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True


_EXC_FORMATTER = logging.Formatter()

# -- formatters ------------------------------------------------------------------------------


def _timestamp(record: logging.LogRecord) -> str:
    whole = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
    return f"{whole}.{int(record.msecs):03d}Z"


def _fields(record: logging.LogRecord) -> dict[str, Any]:
    """The common fields, then the record's extras (renamed if they collide)."""
    message = record.getMessage()
    out: dict[str, Any] = {
        "ts": _timestamp(record),
        "level": record.levelname,
        "logger": record.name,
        "event": message,
    }
    for key, value in record.__dict__.items():
        if key in _RESERVED:
            continue
        if key == "event":
            # An explicit event name wins; the message is kept beside it if it says more.
            out["event"] = value
            if message != value:
                out["message"] = message
            continue
        out[f"extra_{key}" if key in out else key] = value
    return out


def _exception_text(formatter: logging.Formatter, record: logging.LogRecord) -> str | None:
    if record.exc_info and not record.exc_text:
        record.exc_text = formatter.formatException(record.exc_info)
    text = record.exc_text
    if record.stack_info:
        text = f"{text}\n{record.stack_info}" if text else record.stack_info
    return text or None


class JsonFormatter(logging.Formatter):
    """One JSON object per line (orjson); tracebacks go in an ``exc`` field, not new lines."""

    def format(self, record: logging.LogRecord) -> str:
        out = _fields(record)
        exc = _exception_text(self, record)
        if exc:
            out["exc"] = exc
        return orjson.dumps(out, default=str, option=orjson.OPT_NON_STR_KEYS).decode()


_BARE = re.compile(r"[^\s\"=\\]+")


def logfmt_value(value: object) -> str:
    """A value as logfmt writes it: bare when safe, else a JSON string (no forged lines)."""
    text = value if isinstance(value, str) else _scalar_text(value)
    if _BARE.fullmatch(text):
        return text
    # JSON string escaping: quotes, backslashes and newlines cannot start a fake line.
    return orjson.dumps(text).decode()


def _scalar_text(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, Mapping | list | tuple):
        return orjson.dumps(value, default=str, option=orjson.OPT_NON_STR_KEYS).decode()
    return str(value)


class TextFormatter(logging.Formatter):
    """``key=value`` pairs (logfmt) with the same fields as the JSON format, for humans.

    A traceback follows on its own lines, indented, where a human expects it.
    """

    def format(self, record: logging.LogRecord) -> str:
        line = " ".join(f"{k}={logfmt_value(v)}" for k, v in _fields(record).items())
        exc = _exception_text(self, record)
        if exc:
            line += "\n" + "\n".join("    " + part for part in exc.splitlines())
        return line


class _RouteGuardHandler(logging.StreamHandler[TextIO]):
    """Marks the handler ``configure_logging`` installed, so calling it again replaces it."""


LogFormat = Literal["json", "text"]


def configure_logging(
    fmt: LogFormat,
    level: str = "INFO",
    stream: TextIO | None = None,
) -> logging.Handler:
    """Send the ``routeguard`` logger hierarchy to ``stream`` (stderr) in ``fmt``, at ``level``.

    Idempotent: a second call replaces the handler installed by the first. Other handlers on the
    root logger are left alone, and RouteGuard's records no longer propagate to them (they would
    print every line twice, unredacted). Returns the installed handler.
    """
    formatter: logging.Formatter
    if fmt == "json":
        formatter = JsonFormatter()
    elif fmt == "text":
        formatter = TextFormatter()
    else:
        raise ValueError(f"unknown log format {fmt!r}: expected 'json' or 'text'")
    logger = logging.getLogger(LOGGER_NAME)
    logger.setLevel(level.upper())
    for old in [h for h in logger.handlers if isinstance(h, _RouteGuardHandler)]:
        logger.removeHandler(old)
    handler = _RouteGuardHandler(sys.stderr if stream is None else stream)
    handler.setFormatter(formatter)
    handler.addFilter(RedactingFilter())
    logger.addHandler(handler)
    logger.propagate = False
    return handler


# -- event helpers ---------------------------------------------------------------------------


def _state_name(state: str | int) -> str:
    name = BREAKER_STATE_NAMES.get(state) if isinstance(state, int) else state
    name = (name or "").lower().replace("-", "_")
    if name not in BREAKER_STATE_NAMES.values():
        raise ValueError(f"unknown circuit breaker state: {state!r}")
    return name


def log_breaker_transition(
    logger: logging.Logger,
    *,
    deployment: str,
    provider: str,
    old: str | int,
    new: str | int,
    reason: str,
) -> None:
    """Log a breaker changing state, as event ``circuit_breaker_<new>``.

    WARNING when it opens (traffic to the deployment stops), INFO when it half-opens or closes.
    States are names (closed, half_open, open) or the gauge's numbers (0, 1, 2).
    """
    old_name, new_name = _state_name(old), _state_name(new)
    logger.log(
        logging.WARNING if new_name == "open" else logging.INFO,
        f"circuit_breaker_{new_name}",
        extra={
            "deployment": deployment,
            "provider": provider,
            "old": old_name,
            "new": new_name,
            "reason": reason,
        },
    )
