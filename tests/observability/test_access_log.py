"""The buffered access log: same line shape as the logging module's, batched writes."""

from __future__ import annotations

import asyncio
import io
import json

from routeguard.observability.access import AccessLog


def fields(**overrides: object) -> dict[str, object]:
    base: dict[str, object] = {
        "request_id": "abc",
        "model_group": "g",
        "deployment": "d",
        "attempts": 2,
        "status": 200,
        "latency_ms": 1.23456,
        "upstream_ms": 1.0,
    }
    return {**base, **overrides}


async def test_json_lines_are_batched_then_flushed():
    stream = io.StringIO()
    log = AccessLog("json", stream)
    for i in range(3):
        log.request(**fields(request_id=f"r{i}"))
    assert stream.getvalue() == ""  # buffered until the flush timer fires
    await asyncio.sleep(0.2)
    lines = stream.getvalue().splitlines()
    records = [json.loads(line) for line in lines]
    assert [r["request_id"] for r in records] == ["r0", "r1", "r2"]
    assert records[0]["event"] == "request"
    assert records[0]["level"] == "INFO"
    assert records[0]["latency_ms"] == 1.235
    assert records[0]["ts"].endswith("Z")


def test_text_format_and_flush_outside_a_loop():
    stream = io.StringIO()
    log = AccessLog("text", stream)
    log.request(**fields(deployment=None, request_id="has space"))
    line = stream.getvalue().strip()
    assert "event=request" in line
    assert "deployment=null" in line
    assert 'request_id="has space"' in line


def test_disabled_writes_nothing_and_secrets_in_request_ids_are_masked():
    stream = io.StringIO()
    AccessLog("json", stream, enabled=False).request(**fields())
    assert stream.getvalue() == ""
    log = AccessLog("json", stream)
    log.request(**fields(request_id="sk-abcdefghijklmnopqrstuvwxyz"))
    assert "abcdefghijklmnop" not in stream.getvalue()
