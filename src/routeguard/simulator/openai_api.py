"""OpenAI chat completions and model listing, exactly as OpenAI (and vLLM) put them on the wire.

The response builders here are shared with the Azure module, which only adds Azure's
extras (content filter results) to the same bodies and chunks; Azure OpenAI *is* the
OpenAI wire format behind a different path and auth header.

Tool calls are deterministic: when the request offers tools, ``tool_choice`` is not
``"none"`` and the last message is not a ``role: tool`` result, the answer calls the
first tool (or the one ``tool_choice`` names) with arguments built from its JSON schema;
after a tool result, the answer is text echoing that result.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from aiohttp import web

from routeguard.simulator.delivery import Dialect, Exchange, json_response
from routeguard.simulator.openai_request import ChatRequest, content_text, parse_chat
from routeguard.simulator.text import (
    Answer,
    ToolCall,
    count_words,
    make_answer,
    make_tool_call,
    new_id,
)

__all__ = [
    "ChatPlan",
    "OpenAIDialect",
    "chunk_dicts",
    "completion_body",
    "encode_chunks",
    "handle_chat",
    "handle_models",
    "make_plan",
]

MODELS = ("gpt-4o", "gpt-4o-mini", "gpt-4.1-mini", "text-embedding-3-small")
FINGERPRINT = "fp_sim0000001"
_DONE = b"data: [DONE]\n\n"
_SERVER_ERROR = "The server had an error while processing your request. Sorry about that!"

# Injected error bodies: status -> (message, type, code), as OpenAI sends them.
_FAULT_BODIES: dict[int, tuple[str, str, str | None]] = {
    400: ("Invalid request (simulated).", "invalid_request_error", None),
    401: (
        "Incorrect API key provided: sk-sim***. You can find your API key at "
        "https://platform.openai.com/account/api-keys.",
        "invalid_request_error",
        "invalid_api_key",
    ),
    403: (
        "Country, region, or territory not supported",
        "request_forbidden",
        "unsupported_country_region_territory",
    ),
    404: (
        "The model does not exist or you do not have access to it.",
        "invalid_request_error",
        "model_not_found",
    ),
    429: (
        "Rate limit reached for requests. Please try again later.",
        "requests",
        "rate_limit_exceeded",
    ),
    500: (_SERVER_ERROR, "server_error", None),
    502: ("Bad gateway.", "server_error", None),
    503: ("The engine is currently overloaded, please try again later.", "server_error", None),
}


class OpenAIDialect(Dialect):
    """OpenAI's error envelope: ``{"error": {"message", "type", "param", "code"}}``."""

    name = "openai"
    # vLLM serves without keys unless told otherwise; keys are checked only when configured.
    key_required = False

    def api_key(self, request: web.Request) -> str | None:
        auth = request.headers.get("Authorization")
        if auth and auth[:7].lower() == "bearer ":
            return auth[7:].strip() or None
        return None

    def error(
        self,
        status: int,
        message: str,
        etype: str,
        *,
        param: str | None = None,
        code: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> web.Response:
        body = {"error": {"message": message, "type": etype, "param": param, "code": code}}
        return json_response(body, status, headers)

    def unauthorized(self, missing: bool) -> web.Response:
        if missing:
            message = (
                "You didn't provide an API key. You need to provide your API key in an "
                "Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY)."
            )
            return self.error(401, message, "invalid_request_error")
        message, etype, code = _FAULT_BODIES[401]
        return self.error(401, message, etype, code=code)

    def invalid_request(
        self, message: str, param: str | None = None, code: str | None = None
    ) -> web.Response:
        return self.error(400, message, "invalid_request_error", param=param, code=code)

    def bad_json(self) -> web.Response:
        message = (
            "We could not parse the JSON body of your request. (HINT: This likely means you "
            "aren't using your HTTP library correctly. The OpenAI API expects a JSON payload, "
            "but what was sent was not valid JSON.)"
        )
        return self.error(400, message, "invalid_request_error")

    def not_found(self, method: str, path: str) -> web.Response:
        return self.error(404, f"Invalid URL ({method} {path})", "invalid_request_error")

    def fault_error(self, status: int, retry_after_s: float) -> web.Response:
        default_type = "server_error" if status >= 500 else "invalid_request_error"
        message, etype, code = _FAULT_BODIES.get(
            status, (f"Simulated error {status}.", default_type, None)
        )
        return self.error(
            status, message, etype, code=code, headers=self.retry_headers(status, retry_after_s)
        )

    def stream_error_event(self) -> bytes:
        error = {"message": _SERVER_ERROR, "type": "server_error", "param": None, "code": None}
        return b"data: " + orjson.dumps({"error": error}) + b"\n\n"

    def malformed_event(self) -> bytes:
        return b'data: {"id": "chatcmpl-sim", "object": "chat.completion.chu\n\n'


@dataclass(frozen=True, slots=True)
class ChatPlan:
    """Everything needed to render one chat completion, streamed or not."""

    request: ChatRequest
    reply: Answer | ToolCall
    finish_reason: str
    prompt_tokens: int
    id: str
    created: int

    @property
    def completion_tokens(self) -> int:
        return self.reply.tokens * self.request.n


def make_plan(ex: Exchange, req: ChatRequest) -> ChatPlan:
    """Decide the deterministic reply to ``req``."""
    last = req.messages[-1]
    reply: Answer | ToolCall
    if req.tools and req.tool_choice != "none" and last.get("role") != "tool":
        forced = req.tool_choice not in (None, "auto", "required")
        name, schema = next(
            (t for t in req.tools if t[0] == req.tool_choice) if forced else iter(req.tools)
        )
        reply, finish = make_tool_call(name, schema), "tool_calls"
    else:
        source = content_text(last.get("content")) if last.get("role") in ("user", "tool") else ""
        reply = make_answer(source, ex.words, req.max_tokens, req.stop)
        finish = "length" if reply.truncated else "stop"
    prompt = sum(count_words(content_text(m.get("content"))) for m in req.messages)
    return ChatPlan(
        request=req,
        reply=reply,
        finish_reason=finish,
        prompt_tokens=max(1, prompt),
        id=new_id(ex.rng, "chatcmpl-"),
        created=int(time.time()),
    )


def usage(prompt_tokens: int, completion_tokens: int) -> dict[str, Any]:
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
        "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": 0,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }


def _tool_call_id(plan: ChatPlan, index: int) -> str:
    # Derived from the completion id so all n choices and both renderings agree.
    return f"call_{plan.id[-20:]}{index}"


def completion_body(plan: ChatPlan) -> dict[str, Any]:
    """A non-streaming ``chat.completion`` object."""
    reply = plan.reply
    choices = []
    for index in range(plan.request.n):
        message: dict[str, Any] = {"role": "assistant", "refusal": None, "annotations": []}
        if isinstance(reply, ToolCall):
            message["content"] = None
            message["tool_calls"] = [
                {
                    "id": _tool_call_id(plan, index),
                    "type": "function",
                    "function": {"name": reply.name, "arguments": reply.arguments},
                }
            ]
        else:
            message["content"] = reply.text
        choices.append(
            {
                "index": index,
                "message": message,
                "logprobs": None,
                "finish_reason": plan.finish_reason,
            }
        )
    return {
        "id": plan.id,
        "object": "chat.completion",
        "created": plan.created,
        "model": plan.request.model,
        "choices": choices,
        "usage": usage(plan.prompt_tokens, plan.completion_tokens),
        "service_tier": "default",
        "system_fingerprint": FINGERPRINT,
    }


def chunk_dicts(plan: ChatPlan) -> list[dict[str, Any]]:
    """The ``chat.completion.chunk`` objects of a stream, in order (no ``[DONE]``)."""
    req, reply = plan.request, plan.reply
    with_usage = req.include_usage

    def chunk(index: int, delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {
            "id": plan.id,
            "object": "chat.completion.chunk",
            "created": plan.created,
            "model": req.model,
            "service_tier": "default",
            "system_fingerprint": FINGERPRINT,
            "choices": [
                {"index": index, "delta": delta, "logprobs": None, "finish_reason": finish}
            ],
        }
        if with_usage:
            body["usage"] = None
        return body

    chunks: list[dict[str, Any]] = []
    for index in range(req.n):
        if isinstance(reply, ToolCall):
            call = {
                "index": 0,
                "id": _tool_call_id(plan, index),
                "type": "function",
                "function": {"name": reply.name, "arguments": ""},
            }
            opening = {"role": "assistant", "content": None, "tool_calls": [call], "refusal": None}
            chunks.append(chunk(index, opening))
            chunks.extend(
                chunk(index, {"tool_calls": [{"index": 0, "function": {"arguments": fragment}}]})
                for fragment in reply.fragments
            )
        else:
            chunks.append(chunk(index, {"role": "assistant", "content": "", "refusal": None}))
            chunks.extend(chunk(index, {"content": piece}) for piece in reply.pieces)
        chunks.append(chunk(index, {}, plan.finish_reason))
    if with_usage:
        final = chunk(0, {})
        final["choices"] = []
        final["usage"] = usage(plan.prompt_tokens, plan.completion_tokens)
        chunks.append(final)
    return chunks


def encode_chunks(chunks: Sequence[Mapping[str, Any]]) -> list[bytes]:
    """SSE frames for ``chunks``, terminated by ``data: [DONE]``."""
    frames = [b"data: " + orjson.dumps(chunk) + b"\n\n" for chunk in chunks]
    frames.append(_DONE)
    return frames


def request_headers(ex: Exchange) -> dict[str, str]:
    return {"x-request-id": new_id(ex.rng, "req_", 20)}


async def handle_chat(ex: Exchange, body: Any) -> web.StreamResponse:
    """``POST /{target}/v1/chat/completions``."""
    plan = make_plan(ex, parse_chat(body))
    window = ex.fault.context_window_tokens if ex.fault is not None else None
    if window is not None and plan.prompt_tokens > window:
        return ex.dialect.invalid_request(
            f"This model's maximum context length is {window} tokens. However, your messages "
            f"resulted in {plan.prompt_tokens} tokens. Please reduce the length of the messages.",
            param="messages",
            code="context_length_exceeded",
        )
    if plan.request.stream:
        return await ex.stream(encode_chunks(chunk_dicts(plan)), headers=request_headers(ex))
    return ex.json(completion_body(plan), headers=request_headers(ex))


async def handle_models(ex: Exchange, body: Any) -> web.StreamResponse:
    """``GET /{target}/v1/models``: a fixed list, enough for health checks and discovery."""
    data = [
        {"id": model, "object": "model", "created": 1_715_367_049, "owned_by": "system"}
        for model in MODELS
    ]
    return ex.json({"object": "list", "data": data})
