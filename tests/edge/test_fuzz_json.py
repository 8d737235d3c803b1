"""Property-based fuzzing of every JSON endpoint and of the API translators.

Over a real socket: any JSON (or not-JSON) body gets a success or a 4xx in the API's own error
shape (OpenAI's envelope; Anthropic's for /v1/messages), never a 500. In process: the
translators either translate or raise RouteGuard's own error, never a KeyError or TypeError.
"""

from __future__ import annotations

import time

import httpx
import orjson
import pytest
from fuzz_support import ADMIN, JSON, running_router
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from routeguard.errors import RouteGuardError
from routeguard.inbound import CompletionsApi, CountTokensApi, MessagesApi, ResponsesApi
from routeguard.providers.anthropic_request import to_anthropic
from routeguard.providers.anthropic_response import StreamTranslator, to_openai_completion
from routeguard.wire.chat import parse_chat_request, parse_embedding_request
from routeguard.wire.sse import SSEEvent

FUZZ = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

ENDPOINTS = [
    ("POST", "/v1/chat/completions", "openai"),
    ("POST", "/v1/embeddings", "openai"),
    ("POST", "/v1/completions", "openai"),
    ("POST", "/v1/responses", "openai"),
    ("POST", "/v1/messages", "anthropic"),
    ("POST", "/v1/messages/count_tokens", "anthropic"),
    ("PUT", "/admin/weights", "openai"),
    ("POST", "/admin/circuit-breaker/reset", "openai"),
    ("POST", "/admin/keys/revoke", "openai"),
    ("GET", "/admin/keys/usage", "openai"),
]

ROLES = st.sampled_from(["user", "assistant", "system", "tool", "developer", "function", "x"])
CONTENT = (
    st.text(max_size=30)
    | st.none()
    | st.lists(
        st.fixed_dictionaries(
            {"type": st.sampled_from(["text", "image_url", "tool_result", "input_text", "zz"])},
            optional={"text": JSON, "image_url": JSON, "content": JSON},
        ),
        max_size=3,
    )
    | JSON
)
MESSAGE = st.fixed_dictionaries(
    {"role": ROLES | JSON}, optional={"content": CONTENT, "tool_calls": JSON, "name": JSON}
)
CHATLIKE = st.fixed_dictionaries(
    {
        "model": st.sampled_from(["gpt-4-turbo", "other-group", "nope"]) | JSON,
        "messages": st.lists(MESSAGE, max_size=4) | JSON,
    },
    optional={
        "stream": st.booleans() | JSON,
        "stream_options": JSON,
        "max_tokens": st.integers(min_value=-5, max_value=5000) | JSON,
        "temperature": JSON,
        "tools": JSON,
        "tool_choice": JSON,
        "input": JSON,
        "prompt": JSON,
        "system": JSON,
        "stop": JSON,
        "n": JSON,
        "weights": JSON,
        "key_id": JSON,
        "deployment": JSON,
    },
)
BODIES = CHATLIKE.map(orjson.dumps) | JSON.map(orjson.dumps) | st.binary(max_size=60) | st.just(b"")


def attempt(fn, *args, **kwargs):
    """``(value, None)`` or ``(None, error)``: only RouteGuard's own errors may escape ``fn``."""
    try:
        return fn(*args, **kwargs), None
    except RouteGuardError as exc:
        return None, exc


@pytest.fixture(scope="module")
def fuzz_client(loop_thread):
    with (
        running_router(loop_thread) as app,
        httpx.Client(base_url=f"http://127.0.0.1:{app.port}", timeout=30) as client,
    ):
        yield client


def assert_shaped(response: httpx.Response, shape: str) -> None:
    assert response.status_code != 500, response.text
    assert response.status_code < 500 or response.status_code in (502, 503, 504), response.text
    if response.status_code < 400:
        return
    data = response.json()
    error = data["error"]
    if shape == "anthropic":
        assert data["type"] == "error"
        assert set(error) >= {"type", "message"}
    else:
        assert set(error) == {"message", "type", "param", "code"}
    assert isinstance(error["message"], str)
    assert error["message"]


@FUZZ
@given(endpoint=st.sampled_from(ENDPOINTS), body=BODIES)
def test_every_endpoint_answers_bad_json_with_a_shaped_4xx(fuzz_client, endpoint, body):
    method, path, shape = endpoint
    response = fuzz_client.request(
        method,
        path,
        content=body,
        headers={"authorization": f"Bearer {ADMIN}", "content-type": "application/json"},
    )
    assert_shaped(response, shape)


@settings(max_examples=400, deadline=None)
@given(payload=CHATLIKE)
def test_openai_to_anthropic_request_translation_never_crashes(payload):
    try:
        parsed = parse_chat_request(orjson.dumps(payload))
    except RouteGuardError:
        return
    try:
        body = to_anthropic(parsed.payload, model="claude", stream=parsed.stream)
    except RouteGuardError:
        return
    assert isinstance(body["messages"], list)
    orjson.dumps(body)


@settings(max_examples=400, deadline=None)
@given(body=BODIES)
def test_wire_parsers_raise_only_routeguard_errors(body):
    for parse in (parse_chat_request, parse_embedding_request):
        _value, error = attempt(parse, body)
        assert error is None or 400 <= error.status < 500


@settings(max_examples=400, deadline=None)
@given(
    body=BODIES,
    api=st.sampled_from([MessagesApi(), CountTokensApi(), ResponsesApi(), CompletionsApi()]),
)
def test_inbound_api_parsers_raise_only_routeguard_errors(body, api):
    _call, error = attempt(api.parse, body, {"anthropic-version": "2023-06-01"})
    if error is not None:
        assert 400 <= error.status < 500
        status, shaped = api.error(error)
        assert status == error.status
        orjson.loads(shaped)


@settings(max_examples=400, deadline=None)
@given(
    message=JSON
    | st.fixed_dictionaries(
        {"content": st.lists(JSON, max_size=4)},
        optional={"usage": JSON, "stop_reason": JSON, "id": JSON},
    )
)
def test_anthropic_answer_translation_never_crashes(message):
    result, error = attempt(to_openai_completion, message, created=int(time.time()), model="m")
    if error is not None:
        assert error.status >= 500  # a bad upstream answer is the upstream's fault
        return
    orjson.dumps(result[0])


EVENTS = st.sampled_from(
    [
        "message_start",
        "content_block_start",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
        "ping",
        "error",
        "zz",
    ]
)


@settings(max_examples=300, deadline=None)
@given(
    events=st.lists(st.tuples(EVENTS, JSON.map(orjson.dumps) | st.binary(max_size=30)), max_size=8)
)
def test_anthropic_stream_translation_never_crashes(events):
    translator = StreamTranslator(model="m", created=0, include_usage=True)
    for name, data in events:
        try:
            out = translator.translate(SSEEvent(name, data))
        except RouteGuardError:
            return
        assert all(isinstance(chunk, bytes) for chunk in out)
