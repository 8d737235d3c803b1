"""Chat-completion answers rewritten as OpenAI Responses objects, whole or as the typed stream.

The stream is what the ``openai`` SDK's Responses stream state machine accepts: it opens with
``response.created`` and ``response.in_progress``; each output item is announced
(``response.output_item.added``), filled (``response.content_part.added`` and
``response.output_text.delta`` for text, ``response.function_call_arguments.delta`` for a tool
call), finished (the matching ``.done`` events and ``response.output_item.done``), and the
stream ends with ``response.completed`` (or ``response.incomplete`` when the token limit cut it)
whose ``response.output`` repeats every finished item with the same ids. Every event carries
an increasing ``sequence_number``.
"""

from __future__ import annotations

import random
import time
from typing import Any

import orjson

from routeguard.providers.base import Usage

__all__ = ["ResponseBuilder", "ResponsesStreamTranslator"]

_ids = random.Random()


def _new_id(prefix: str) -> str:
    return f"{prefix}_{_ids.getrandbits(96):024x}"


def _usage(prompt: int, completion: int) -> dict[str, Any]:
    return {
        "input_tokens": prompt,
        "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
        "output_tokens": completion,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": prompt + completion,
    }


def _chat_usage(usage: object) -> dict[str, Any] | None:
    if not isinstance(usage, dict):
        return None
    return _usage(int(usage.get("prompt_tokens") or 0), int(usage.get("completion_tokens") or 0))


def _message_item(item_id: str, text: str, status: str) -> dict[str, Any]:
    content = [{"type": "output_text", "text": text, "annotations": [], "logprobs": []}]
    return {
        "type": "message",
        "id": item_id,
        "status": status,
        "role": "assistant",
        "content": content if status == "completed" else [],
    }


def _call_item(
    item_id: str, call_id: str, name: str, arguments: str, status: str
) -> dict[str, Any]:
    return {
        "type": "function_call",
        "id": item_id,
        "call_id": call_id,
        "name": name,
        "arguments": arguments,
        "status": status,
    }


class ResponseBuilder:
    """The response object around the output, echoing the request's settings as OpenAI does."""

    def __init__(self, payload: dict[str, Any]) -> None:
        self.payload = payload
        self.id = _new_id("resp")
        self.created_at = int(time.time())

    def response(
        self,
        status: str,
        output: list[dict[str, Any]],
        *,
        model: object = None,
        usage: dict[str, Any] | None = None,
        finish_reason: str | None = None,
    ) -> dict[str, Any]:
        payload = self.payload
        incomplete = (
            {"reason": "max_output_tokens"}
            if finish_reason == "length"
            else {"reason": "content_filter"}
            if finish_reason == "content_filter"
            else None
        )
        if incomplete is not None and status == "completed":
            status = "incomplete"
        return {
            "id": self.id,
            "object": "response",
            "created_at": self.created_at,
            "status": status,
            "error": None,
            "incomplete_details": incomplete,
            "instructions": payload.get("instructions"),
            "max_output_tokens": payload.get("max_output_tokens"),
            "metadata": payload.get("metadata") or {},
            "model": model or payload.get("model"),
            "output": output,
            "parallel_tool_calls": payload.get("parallel_tool_calls", True),
            "previous_response_id": None,
            "store": False,
            "temperature": payload.get("temperature"),
            "text": payload.get("text") or {"format": {"type": "text"}},
            "tool_choice": payload.get("tool_choice") or "auto",
            "tools": payload.get("tools") or [],
            "top_p": payload.get("top_p"),
            "truncation": "disabled",
            "usage": usage,
        }

    def from_chat(self, body: bytes) -> bytes:
        """A whole chat completion as a whole response."""
        data = orjson.loads(body)
        choice = data["choices"][0]
        message = choice.get("message") or {}
        output: list[dict[str, Any]] = []
        if message.get("content"):
            output.append(_message_item(_new_id("msg"), message["content"], "completed"))
        for call in message.get("tool_calls") or []:
            function = call.get("function") or {}
            output.append(
                _call_item(
                    _new_id("fc"),
                    str(call.get("id")),
                    str(function.get("name")),
                    str(function.get("arguments") or ""),
                    "completed",
                )
            )
        answer = self.response(
            "completed",
            output,
            model=data.get("model"),
            usage=_chat_usage(data.get("usage")),
            finish_reason=choice.get("finish_reason"),
        )
        return orjson.dumps(answer)


class ResponsesStreamTranslator:
    """One stream's state: the output items so far and the one being filled."""

    def __init__(self, builder: ResponseBuilder) -> None:
        self._builder = builder
        self._sequence = 0
        self._started = False
        self._finished = False
        self._model: object = None
        self._output: list[dict[str, Any]] = []  # finished items
        self._open: dict[str, Any] | None = None  # the item being filled
        self._text = ""
        self._tools: dict[int, dict[str, Any]] = {}
        self._finish_reason: str | None = None
        self._usage: dict[str, Any] | None = None

    @property
    def finished(self) -> bool:
        return self._finished

    def _event(self, kind: str, fields: dict[str, Any]) -> bytes:
        payload = {"type": kind, "sequence_number": self._sequence, **fields}
        self._sequence += 1
        return b"event: " + kind.encode() + b"\ndata: " + orjson.dumps(payload) + b"\n\n"

    def _start(self) -> list[bytes]:
        self._started = True
        response = self._builder.response("in_progress", [], model=self._model)
        return [
            self._event("response.created", {"response": response}),
            self._event("response.in_progress", {"response": response}),
        ]

    def _index(self) -> int:
        return len(self._output)

    def _close(self) -> list[bytes]:
        item = self._open
        if item is None:
            return []
        self._open = None
        index, item_id = self._index(), item["id"]
        if item["type"] == "message":
            done = _message_item(item_id, self._text, "completed")
            part = done["content"][0]
            out = [
                self._event(
                    "response.output_text.done",
                    {
                        "item_id": item_id,
                        "output_index": index,
                        "content_index": 0,
                        "text": self._text,
                        "logprobs": [],
                    },
                ),
                self._event(
                    "response.content_part.done",
                    {"item_id": item_id, "output_index": index, "content_index": 0, "part": part},
                ),
            ]
            self._text = ""
        else:
            done = {**item, "status": "completed"}
            out = [
                self._event(
                    "response.function_call_arguments.done",
                    {
                        "item_id": item_id,
                        "output_index": index,
                        "name": item["name"],
                        "arguments": item["arguments"],
                    },
                )
            ]
        out.append(self._event("response.output_item.done", {"output_index": index, "item": done}))
        self._output.append(done)
        return out

    def _open_item(self, item: dict[str, Any]) -> list[bytes]:
        out = self._close()
        self._open = item
        index = self._index()
        out.append(self._event("response.output_item.added", {"output_index": index, "item": item}))
        if item["type"] == "message":
            part = {"type": "output_text", "text": "", "annotations": [], "logprobs": []}
            fields = {"item_id": item["id"], "output_index": index, "content_index": 0}
            out.append(self._event("response.content_part.added", {**fields, "part": part}))
        return out

    def feed(self, chunk: dict[str, Any]) -> list[bytes]:
        if self._model is None:
            self._model = chunk.get("model")
        out = [] if self._started else self._start()
        if isinstance(chunk.get("usage"), dict):
            self._usage = _chat_usage(chunk["usage"])
        for choice in chunk.get("choices") or []:
            delta = choice.get("delta") or {}
            text = delta.get("content")
            if text:
                if self._open is None or self._open["type"] != "message":
                    out.extend(self._open_item(_message_item(_new_id("msg"), "", "in_progress")))
                self._text += text
                assert self._open is not None
                fields = {
                    "item_id": self._open["id"],
                    "output_index": self._index(),
                    "content_index": 0,
                    "delta": text,
                    "logprobs": [],
                }
                out.append(self._event("response.output_text.delta", fields))
            for call in delta.get("tool_calls") or []:
                out.extend(self._tool_delta(call))
            if choice.get("finish_reason"):
                self._finish_reason = choice["finish_reason"]
        return out

    def _tool_delta(self, call: dict[str, Any]) -> list[bytes]:
        out: list[bytes] = []
        position = int(call.get("index") or 0)
        function = call.get("function") or {}
        item = self._tools.get(position)
        if item is None:
            call_id, name = str(call.get("id")), str(function.get("name"))
            item = _call_item(_new_id("fc"), call_id, name, "", "in_progress")
            self._tools[position] = item
            out.extend(self._open_item(item))
        arguments = function.get("arguments")
        if arguments and item is self._open:
            item["arguments"] += arguments
            fields = {"item_id": item["id"], "output_index": self._index(), "delta": arguments}
            out.append(self._event("response.function_call_arguments.delta", fields))
        return out

    def finish(self, usage: Usage | None) -> list[bytes]:
        out = [] if self._started else self._start()
        out.extend(self._close())
        self._finished = True
        counts = self._usage
        if counts is None and usage is not None:
            counts = _usage(usage.prompt_tokens, usage.completion_tokens)
        response = self._builder.response(
            "completed",
            self._output,
            model=self._model,
            usage=counts,
            finish_reason=self._finish_reason,
        )
        kind = "response.completed" if response["status"] == "completed" else "response.incomplete"
        out.append(self._event(kind, {"response": response}))
        return out
