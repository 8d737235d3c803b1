"""Legacy completions (``POST /v1/completions``), as OpenAI and vLLM put them on the wire.

``prompt`` may be a string, a list of strings, one token array or a list of token arrays;
each prompt gets ``n`` choices (``index`` = prompt * n + choice). The text echoes the prompt
like chat answers do; ``echo`` prepends the prompt; ``logprobs`` (an integer) adds OpenAI's
legacy logprobs object with made-up but well-formed values. A stream sends one
``text_completion`` chunk per token, then one with the ``finish_reason``, the usage chunk when
``stream_options.include_usage`` is set, and ``data: [DONE]``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import orjson
from aiohttp import web

from routeguard.simulator.delivery import Exchange, InvalidRequest
from routeguard.simulator.openai_api import FINGERPRINT, request_headers
from routeguard.simulator.openai_request import check_integer, check_number
from routeguard.simulator.text import Answer, count_words, make_answer, new_id

__all__ = ["handle_completions"]

_DONE = b"data: [DONE]\n\n"
_BAD_PROMPT = "'prompt' must be a string, an array of strings, or an array of token arrays."


@dataclass(frozen=True, slots=True)
class _Plan:
    id: str
    created: int
    model: str
    prompts: list[str]
    answers: list[Answer]  # one per choice, prompt-major
    n: int
    echo: bool
    logprobs: int | None

    @property
    def prompt_tokens(self) -> int:
        return sum(max(1, count_words(p)) for p in self.prompts)

    @property
    def completion_tokens(self) -> int:
        return sum(a.tokens for a in self.answers)


def _prompts(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and value:
        if all(isinstance(v, int) and not isinstance(v, bool) for v in value):
            return [" ".join(map(str, value))]
        prompts: list[str] = []
        for item in value:
            if isinstance(item, str):
                prompts.append(item)
            elif isinstance(item, list) and item and all(isinstance(t, int) for t in item):
                prompts.append(" ".join(map(str, item)))
            else:
                raise InvalidRequest(_BAD_PROMPT, "prompt")
        return prompts
    raise InvalidRequest(_BAD_PROMPT, "prompt")


def _stop(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list) and len(value) <= 4 and all(isinstance(s, str) for s in value):
        return tuple(value)
    raise InvalidRequest("'stop' must be a string or an array of up to 4 strings.", "stop")


def _plan(ex: Exchange, body: Any) -> _Plan:
    if not isinstance(body, dict):
        raise InvalidRequest("Invalid type for request body: expected an object.")
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise InvalidRequest("you must provide a model parameter")
    if "prompt" not in body:
        raise InvalidRequest("Missing required parameter: 'prompt'.", "prompt")
    prompts = _prompts(body["prompt"])
    check_number(body, "temperature", 0, 2)
    check_number(body, "top_p", 0, 1)
    max_tokens = check_integer(body, "max_tokens", 0) or 16  # OpenAI's default for completions
    n = check_integer(body, "n", 1, 128) or 1
    logprobs = check_integer(body, "logprobs", 0, 5)
    stop = _stop(body.get("stop"))
    answers = [make_answer(p, ex.words, max_tokens, stop) for p in prompts for _ in range(n)]
    return _Plan(
        id=new_id(ex.rng, "cmpl-"),
        created=int(time.time()),
        model=model,
        prompts=prompts,
        answers=answers,
        n=n,
        echo=body.get("echo") is True,
        logprobs=logprobs,
    )


def _logprobs(pieces: tuple[str, ...], top: int) -> dict[str, Any]:
    offsets, at = [], 0
    for piece in pieces:
        offsets.append(at)
        at += len(piece)
    return {
        "tokens": list(pieces),
        "token_logprobs": [-0.25 for _ in pieces],
        "top_logprobs": [{p: -0.25} for p in pieces] if top else None,
        "text_offset": offsets,
    }


def _finish(answer: Answer) -> str:
    return "length" if answer.truncated else "stop"


def _usage(plan: _Plan) -> dict[str, int]:
    prompt, completion = plan.prompt_tokens, plan.completion_tokens
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }


def _body(plan: _Plan) -> dict[str, Any]:
    choices = []
    for index, answer in enumerate(plan.answers):
        prompt = plan.prompts[index // plan.n]
        choices.append(
            {
                "text": (prompt if plan.echo else "") + answer.text,
                "index": index,
                "logprobs": _logprobs(answer.pieces, plan.logprobs)
                if plan.logprobs is not None
                else None,
                "finish_reason": _finish(answer),
            }
        )
    return {
        "id": plan.id,
        "object": "text_completion",
        "created": plan.created,
        "model": plan.model,
        "system_fingerprint": FINGERPRINT,
        "choices": choices,
        "usage": _usage(plan),
    }


def _frames(plan: _Plan, include_usage: bool) -> list[bytes]:
    def chunk(index: int, text: str, finish: str | None, logprobs: Any = None) -> bytes:
        choice = {"text": text, "index": index, "logprobs": logprobs, "finish_reason": finish}
        body = {
            "id": plan.id,
            "object": "text_completion",
            "created": plan.created,
            "model": plan.model,
            "system_fingerprint": FINGERPRINT,
            "choices": [choice],
        }
        return b"data: " + orjson.dumps(body) + b"\n\n"

    frames: list[bytes] = []
    for index, answer in enumerate(plan.answers):
        if plan.echo:
            frames.append(chunk(index, plan.prompts[index // plan.n], None))
        for piece in answer.pieces:
            logprobs = _logprobs((piece,), plan.logprobs) if plan.logprobs is not None else None
            frames.append(chunk(index, piece, None, logprobs))
        frames.append(chunk(index, "", _finish(answer)))
    if include_usage:
        body = {
            "id": plan.id,
            "object": "text_completion",
            "created": plan.created,
            "model": plan.model,
            "choices": [],
            "usage": _usage(plan),
        }
        frames.append(b"data: " + orjson.dumps(body) + b"\n\n")
    frames.append(_DONE)
    return frames


async def handle_completions(ex: Exchange, body: Any) -> web.StreamResponse:
    """``POST /{target}/v1/completions``."""
    plan = _plan(ex, body)
    if body.get("stream") is True:
        options = body.get("stream_options")
        include_usage = isinstance(options, dict) and options.get("include_usage") is True
        return await ex.stream(_frames(plan, include_usage), headers=request_headers(ex))
    return ex.json(_body(plan), headers=request_headers(ex))
