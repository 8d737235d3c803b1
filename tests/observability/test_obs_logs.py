"""Structured logs: JSON lines that parse, text lines a human reads, the runbook's grep, redaction."""

from __future__ import annotations

import io
import logging
import re
from collections.abc import Iterator

import orjson
import pytest

from routeguard.observability.access import AccessLog
from routeguard.observability.logs import (
    LOGGER_NAME,
    configure_logging,
    log_breaker_transition,
    redact,
)

RUNBOOK_GREP = re.compile(r"(ERROR|CRITICAL|circuit_breaker)")
TS = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z")


@pytest.fixture(autouse=True)
def restore_routeguard_logger() -> Iterator[None]:
    """configure_logging changes process-wide logger state; other tests must not see it."""
    logger = logging.getLogger(LOGGER_NAME)
    saved = (list(logger.handlers), logger.level, logger.propagate)
    yield
    logger.handlers[:] = saved[0]
    logger.setLevel(saved[1])
    logger.propagate = saved[2]


def capture(fmt: str, level: str = "INFO") -> io.StringIO:
    stream = io.StringIO()
    configure_logging(fmt, level, stream=stream)  # type: ignore[arg-type]
    return stream


def json_lines(stream: io.StringIO) -> list[dict[str, object]]:
    return [orjson.loads(line) for line in stream.getvalue().splitlines()]


log = logging.getLogger("routeguard.routing.test")


def test_json_request_line() -> None:
    stream = capture("json")
    AccessLog().request(
        request_id="req-1",
        model_group="gpt-4",
        deployment="openai-gpt4",
        attempts=2,
        status=200,
        latency_ms=812.34567,
        upstream_ms=800.0,
        ttft_ms=150.5,
    )
    [entry] = json_lines(stream)
    assert TS.fullmatch(str(entry.pop("ts")))
    assert entry == {
        "level": "INFO",
        "logger": "routeguard.requests",
        "event": "request",
        "request_id": "req-1",
        "api": "chat",
        "model_group": "gpt-4",
        "deployment": "openai-gpt4",
        "attempts": 2,
        "status": 200,
        "latency_ms": 812.346,
        "upstream_ms": 800.0,
        "ttft_ms": 150.5,
    }


def test_request_without_ttft_or_deployment() -> None:
    stream = capture("json")
    AccessLog().request(
        request_id="r",
        model_group="gpt-4",
        deployment=None,
        attempts=0,
        status=503,
        latency_ms=1,
        upstream_ms=0,
    )
    [entry] = json_lines(stream)
    assert "ttft_ms" not in entry
    assert entry["deployment"] is None


def test_text_format_has_the_same_fields() -> None:
    stream = capture("text")
    AccessLog().request(
        request_id="req-1",
        model_group="gpt-4",
        deployment="openai-gpt4",
        attempts=1,
        status=200,
        latency_ms=5,
        upstream_ms=4,
    )
    line = stream.getvalue().rstrip("\n")
    assert "\n" not in line
    assert re.fullmatch(
        r"ts=\S+ level=INFO logger=routeguard\.requests event=request request_id=req-1 api=chat"
        r" model_group=gpt-4 deployment=openai-gpt4 attempts=1 status=200 latency_ms=5"
        r" upstream_ms=4",
        line,
    )


def test_text_quotes_values_so_a_line_stays_one_line() -> None:
    stream = capture("text")
    log.warning("upstream said %s", 'bad\nlevel=ERROR fake="line"', extra={"note": "two words"})
    [line] = stream.getvalue().splitlines()
    assert 'note="two words"' in line
    assert 'event="upstream said bad\\nlevel=ERROR fake=\\"line\\""' in line


@pytest.mark.parametrize("fmt", ["json", "text"])
def test_breaker_transitions_are_found_by_the_runbook_grep(fmt: str) -> None:
    stream = capture(fmt)
    log_breaker_transition(
        log, deployment="openai-gpt4", provider="openai", old="closed", new="open", reason="errors"
    )
    log_breaker_transition(
        log, deployment="openai-gpt4", provider="openai", old=2, new=1, reason="cooldown"
    )
    log_breaker_transition(
        log, deployment="openai-gpt4", provider="openai", old="half-open", new=0, reason="probe ok"
    )
    log.info("nothing to see")
    log.error("upstream exploded")
    lines = stream.getvalue().splitlines()
    found = [line for line in lines if RUNBOOK_GREP.search(line)]
    assert len(found) == 4
    assert "circuit_breaker_open" in found[0]
    assert "WARNING" in found[0]
    assert "circuit_breaker_half_open" in found[1]
    assert "circuit_breaker_closed" in found[2]
    assert "INFO" in found[1]
    assert "ERROR" in found[3]


def test_breaker_transition_fields_and_levels() -> None:
    stream = capture("json")
    log_breaker_transition(
        log, deployment="d", provider="p", old="closed", new="open", reason="error rate 0.4"
    )
    log_breaker_transition(
        log, deployment="d", provider="p", old="open", new="half_open", reason=""
    )
    first, second = json_lines(stream)
    assert first["level"] == "WARNING"
    assert first["event"] == "circuit_breaker_open"
    assert (first["old"], first["new"], first["reason"]) == ("closed", "open", "error rate 0.4")
    assert second["level"] == "INFO"
    with pytest.raises(ValueError, match="state"):
        log_breaker_transition(log, deployment="d", provider="p", old=0, new="ajar", reason="")


def test_level_and_hierarchy() -> None:
    stream = capture("json", level="warning")
    logging.getLogger("routeguard.deep.child").info("dropped")
    logging.getLogger("routeguard.deep.child").warning("kept")
    logging.getLogger("somebody.else").warning("not ours")
    assert [e["event"] for e in json_lines(stream)] == ["kept"]


def test_reconfiguring_replaces_the_handler() -> None:
    first = capture("json")
    second = capture("text")
    log.warning("once")
    assert first.getvalue() == ""
    assert second.getvalue().count("once") == 1
    assert logging.getLogger(LOGGER_NAME).propagate is False


def test_root_handlers_are_left_alone() -> None:
    root_stream = io.StringIO()
    root_handler = logging.StreamHandler(root_stream)
    logging.getLogger().addHandler(root_handler)
    try:
        ours = capture("json")
        log.warning("only once")
        logging.getLogger("elsewhere").warning("theirs")
    finally:
        logging.getLogger().removeHandler(root_handler)
    assert "only once" in ours.getvalue()
    assert "only once" not in root_stream.getvalue()
    assert "theirs" in root_stream.getvalue()


def test_unknown_format_is_rejected() -> None:
    with pytest.raises(ValueError, match="format"):
        configure_logging("xml", stream=io.StringIO())  # type: ignore[arg-type]


SECRETS = [
    "sk-proj-abcdefghijklmnop1234",
    "sk-ant-api03-ZYXWVUTSRQPONM",
    "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N",
    "hunter2-very-secret-value",
]


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        ("Authorization: Bearer abcdefghijklmnop", "abcdefghijklmnop"),
        ("headers={'authorization': 'Bearer tok_123456789'}", "tok_123456789"),
        ("using key sk-proj-abcdefghijklmnop1234 for openai", SECRETS[0]),
        ("x-api-key: sk-ant-api03-ZYXWVUTSRQPONM", SECRETS[1]),
        ("url=https://x.openai.azure.com/?api-key=0123456789abcdef&v=1", "0123456789abcdef"),
        ('{"api_key": "plainvalue42"}', "plainvalue42"),
        ("[('x-api-key', 'raw-key-material-1')]", "raw-key-material-1"),
        (f"jwt {SECRETS[2]}", SECRETS[2]),
        ("password=hunter2-very-secret-value", SECRETS[3]),
    ],
)
def test_redact_masks_secret_shapes(text: str, secret: str) -> None:
    masked = redact(text)
    assert secret not in masked
    assert "[REDACTED]" in masked


@pytest.mark.parametrize(
    "text",
    ["request to openai-gpt4 took 812ms", "prompt_tokens=12", "bearer token missing", "task-1"],
)
def test_redact_leaves_ordinary_text(text: str) -> None:
    assert redact(text) == text


@pytest.mark.parametrize("fmt", ["json", "text"])
def test_secrets_masked_in_messages_fields_and_tracebacks(fmt: str) -> None:
    stream = capture(fmt)
    log.warning("calling with Authorization: Bearer %s", "abcdefghijklmnopqrstuv")
    log.warning(
        "fields",
        extra={
            "api_key": "anything-at-all",
            "headers": {"x-api-key": "k1-material", "accept": "json"},
            "note": "key sk-proj-abcdefghijklmnop1234",
            "history": ["ok", "Bearer abcdefghijklmnopqrstuv"],
        },
    )
    try:
        raise RuntimeError("provider rejected sk-proj-abcdefghijklmnop1234")
    except RuntimeError:
        log.exception("upstream failed")
    out = stream.getvalue()
    for secret in ["abcdefghijklmnopqrstuv", "anything-at-all", "k1-material", SECRETS[0]]:
        assert secret not in out
    assert out.count("[REDACTED]") >= 6
    assert "RuntimeError" in out
    if fmt == "json":
        entries = json_lines(stream)
        assert entries[1]["headers"] == {"x-api-key": "[REDACTED]", "accept": "json"}
        assert entries[2]["level"] == "ERROR"
        assert "Traceback" in str(entries[2]["exc"])
