"""Azure OpenAI's data plane: the OpenAI wire format behind Azure's paths, auth and filters.

What differs from OpenAI, and is simulated here:

* paths ``/openai/deployments/{deployment}/chat/completions`` and ``.../embeddings`` with a
  mandatory ``api-version`` query parameter (missing: 404 "Resource not found", like Azure);
* auth by ``api-key`` header (or ``Authorization: Bearer`` for Entra ID tokens);
* Azure's own error envelope ``{"error": {"code", "message"}}`` for gateway-level errors
  (401, 403, 404, 429, 503), while model errors keep the OpenAI shape Azure passes through;
* content filter annotations on every answer (``prompt_filter_results`` and per-choice
  ``content_filter_results``), a stream that opens with a prompt-filter chunk whose ``id``
  and ``model`` are empty, and the ``content_filter`` fault: a blocked prompt is a 400 with
  code ``content_filter`` and an ``innererror``; a filtered completion is a 200 cut short
  with ``finish_reason: "content_filter"``.
"""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Any

from aiohttp import web

from routeguard.simulator import embeddings
from routeguard.simulator.delivery import Exchange, json_response
from routeguard.simulator.openai_api import (
    ChatPlan,
    OpenAIDialect,
    chunk_dicts,
    completion_body,
    encode_chunks,
    make_plan,
    request_headers,
)
from routeguard.simulator.openai_request import parse_chat
from routeguard.simulator.text import Answer, ToolCall

__all__ = ["AzureDialect", "api_version_error", "handle_chat", "handle_embeddings"]

_API_VERSION = re.compile(r"^(\d{4}-\d{2}-\d{2}(-preview)?|latest|preview|v1)$")
_SAFE = {"filtered": False, "severity": "safe"}
_VIOLENT = {"filtered": True, "severity": "medium"}
_ACCESS_DENIED = (
    "Access denied due to invalid subscription key or wrong API endpoint. Make sure to "
    "provide a valid key for an active subscription and use a correct regional API "
    "endpoint for your resource."
)
_PROMPT_FILTERED = (
    "The response was filtered due to the prompt triggering Azure OpenAI's content "
    "management policy. Please modify your prompt and retry. To learn more about our content "
    "filtering policies please read our documentation: "
    "https://go.microsoft.com/fwlink/?linkid=2198766"
)
_GATEWAY_ERRORS = {
    401: ("401", _ACCESS_DENIED),
    403: ("403", "Access denied due to Virtual Network/Firewall rules."),
    404: ("404", "Resource not found"),
    503: (
        "ServiceUnavailable",
        "The service is temporarily unable to process your request. Please try again later.",
    ),
}


def filter_results(filtered: bool = False) -> dict[str, Any]:
    """Azure's per-category verdicts; ``filtered`` flags violence at medium severity."""
    return {
        "hate": _SAFE,
        "self_harm": _SAFE,
        "sexual": _SAFE,
        "violence": _VIOLENT if filtered else _SAFE,
    }


def _prompt_filter_results() -> list[dict[str, Any]]:
    results = {**filter_results(), "jailbreak": {"filtered": False, "detected": False}}
    return [{"prompt_index": 0, "content_filter_results": results}]


class AzureDialect(OpenAIDialect):
    """Azure's gateway errors over OpenAI's model errors."""

    name = "azure"
    key_required = True

    def api_key(self, request: web.Request) -> str | None:
        return request.headers.get("api-key") or super().api_key(request)

    @staticmethod
    def azure_error(
        status: int, code: str, message: str, headers: dict[str, str] | None = None
    ) -> web.Response:
        return json_response({"error": {"code": code, "message": message}}, status, headers)

    def unauthorized(self, missing: bool) -> web.Response:
        return self.azure_error(401, "401", _ACCESS_DENIED)

    def not_found(self, method: str, path: str) -> web.Response:
        return self.azure_error(404, "404", "Resource not found")

    def fault_error(self, status: int, retry_after_s: float) -> web.Response:
        headers = self.retry_headers(status, retry_after_s)
        if status == 429:
            message = (
                "Requests to the ChatCompletions_Create Operation under Azure OpenAI API "
                "have exceeded call rate limit of your current OpenAI S0 pricing tier. Please "
                f"retry after {max(1, round(retry_after_s))} seconds."
            )
            return self.azure_error(429, "429", message, headers)
        if status in _GATEWAY_ERRORS:
            code, message = _GATEWAY_ERRORS[status]
            return self.azure_error(status, code, message, headers)
        return super().fault_error(status, retry_after_s)

    def prompt_filtered(self) -> web.Response:
        inner = {
            "code": "ResponsibleAIPolicyViolation",
            "content_filter_result": filter_results(filtered=True),
        }
        error = {
            "message": _PROMPT_FILTERED,
            "type": None,
            "param": "prompt",
            "code": "content_filter",
            "status": 400,
            "innererror": inner,
        }
        return json_response({"error": error}, 400)


DIALECT = AzureDialect()


def api_version_error(request: web.Request) -> web.Response | None:
    """Azure's refusal of a request without a usable ``api-version``, if it has none."""
    version = request.query.get("api-version")
    if version is None:
        return DIALECT.not_found(request.method, request.path)
    if not _API_VERSION.match(version):
        return DIALECT.azure_error(400, "BadRequest", "API version not supported")
    return None


def _filter_completion(plan: ChatPlan) -> ChatPlan:
    """Cut the answer roughly in half, as Azure does when the output filter trips."""
    reply = plan.reply
    pieces = reply.pieces[: len(reply.pieces) // 2] if isinstance(reply, Answer) else ()
    return replace(plan, reply=Answer(pieces), finish_reason="content_filter")


def _annotated_body(plan: ChatPlan, filtered: bool) -> dict[str, Any]:
    body = completion_body(plan)
    body["prompt_filter_results"] = _prompt_filter_results()
    for choice in body["choices"]:
        choice["content_filter_results"] = filter_results(filtered)
    return body


def _annotated_chunks(plan: ChatPlan, filtered: bool) -> list[dict[str, Any]]:
    chunks = chunk_dicts(plan)
    for chunk in chunks:
        for choice in chunk["choices"]:
            final = choice["finish_reason"] is not None
            is_tool = isinstance(plan.reply, ToolCall)
            choice["content_filter_results"] = {} if is_tool else filter_results(filtered and final)
    opening = {
        "choices": [],
        "created": 0,
        "id": "",
        "model": "",
        "object": "",
        "prompt_filter_results": _prompt_filter_results(),
    }
    return [opening, *chunks]


async def handle_chat(ex: Exchange, body: Any, deployment: str) -> web.StreamResponse:
    """``POST /{target}/openai/deployments/{deployment}/chat/completions``."""
    if isinstance(body, dict) and not body.get("model"):
        # Azure picks the model from the deployment; the body may omit it.
        body = {**body, "model": deployment}
    request = parse_chat(body)
    mode = ex.fault.content_filter if ex.fault is not None else None
    if mode == "prompt":
        return DIALECT.prompt_filtered()
    plan = make_plan(ex, request)
    filtered = mode == "completion"
    if filtered:
        plan = _filter_completion(plan)
    headers = request_headers(ex)
    if request.stream:
        frames = encode_chunks(_annotated_chunks(plan, filtered))
        return await ex.stream(frames, headers=headers, error_offset=2)
    return ex.json(_annotated_body(plan, filtered), headers=headers)


async def handle_embeddings(ex: Exchange, body: Any, deployment: str) -> web.StreamResponse:
    """``POST /{target}/openai/deployments/{deployment}/embeddings``."""
    return await embeddings.handle_embeddings(ex, body, default_model=deployment)
