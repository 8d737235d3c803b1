"""Legacy Completions inbound: ``POST /v1/completions``.

Still what vLLM benchmarks and many eval harnesses send. It is forwarded as written (``prompt``
as a string, strings or token arrays, ``max_tokens``, ``stop``, ``n``, ``logprobs``, ``echo``
and whatever else) to deployments that serve it natively: vLLM and OpenAI. It is not
translated to chat: a completion continues raw text, which a chat template would change, so
a translated answer would be a different answer. A deployment that cannot serve it (Anthropic,
Azure) is skipped; a group with none that can answers 400 naming the API.
"""

from __future__ import annotations

from collections.abc import Mapping

from routeguard.errors import InvalidRequestError
from routeguard.inbound.base import InboundApi, InboundCall, attempt_for, load_json_object
from routeguard.providers.base import NativeRequest

__all__ = ["CompletionsApi", "parse_completions_request"]


def _valid_prompt(prompt: object) -> bool:
    if isinstance(prompt, str):
        return True
    if not isinstance(prompt, list) or not prompt:
        return False
    if all(isinstance(p, int) and not isinstance(p, bool) for p in prompt):
        return True  # one token array
    return all(
        isinstance(p, str) or (isinstance(p, list) and all(isinstance(t, int) for t in p))
        for p in prompt
    )


def parse_completions_request(body: bytes) -> NativeRequest:
    data = load_json_object(body)
    model = data.get("model")
    if not isinstance(model, str) or not model:
        raise InvalidRequestError(
            "'model' is required and must be a non-empty string.", param="model"
        )
    if not _valid_prompt(data.get("prompt")):
        raise InvalidRequestError(
            "'prompt' is required: a string, an array of strings, or token arrays.",
            param="prompt",
        )
    stream = data.get("stream", False)
    if stream is None:
        stream = False
    if not isinstance(stream, bool):
        raise InvalidRequestError("'stream' must be a boolean.", param="stream")
    return NativeRequest("completions", data, stream)


class CompletionsApi(InboundApi):
    name = "completions"

    def parse(self, body: bytes, headers: Mapping[str, str]) -> InboundCall:
        native = parse_completions_request(body)
        return InboundCall(native.payload["model"], native.stream, attempt_for(native, None))
