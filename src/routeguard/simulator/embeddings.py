"""The embeddings endpoint, shared by the OpenAI and Azure dialects.

Vectors are deterministic functions of the input text (the same text always embeds to the
same unit vector), so cache and dedup tests can compare them exactly. ``encoding_format``
``base64`` matters more than it looks: the official OpenAI SDK asks for base64 by default
and decodes little-endian float32 itself.
"""

from __future__ import annotations

import base64
import hashlib
import math
import random
import struct
from functools import lru_cache
from typing import Any

from aiohttp import web

from routeguard.simulator.delivery import Exchange, InvalidRequest
from routeguard.simulator.openai_request import check_integer
from routeguard.simulator.text import count_words

__all__ = ["embedding_vector", "handle_embeddings"]

_LARGE_DIMENSIONS = 3072
_DEFAULT_DIMENSIONS = 1536
_INVALID_INPUT = (
    "'$.input' is invalid. Please check the API reference: "
    "https://platform.openai.com/docs/api-reference."
)


@lru_cache(maxsize=2048)
def embedding_vector(text: str, dimensions: int) -> tuple[float, ...]:
    """A unit vector seeded by a hash of ``text``; cached because benchmarks repeat inputs."""
    seed = int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "little")
    rng = random.Random(seed)
    raw = [rng.uniform(-1.0, 1.0) for _ in range(dimensions)]
    norm = math.sqrt(sum(x * x for x in raw)) or 1.0
    # Round through float32, which is what the real API stores and base64 carries.
    packed = struct.pack(f"<{dimensions}f", *(x / norm for x in raw))
    return struct.unpack(f"<{dimensions}f", packed)


def _inputs(value: Any) -> tuple[list[str], int]:
    """The inputs as texts to embed, plus their token count."""
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not value:
        raise InvalidRequest(_INVALID_INPUT, "input")
    if all(isinstance(v, int) and not isinstance(v, bool) for v in value):
        return [" ".join(map(str, value))], len(value)
    texts: list[str] = []
    tokens = 0
    for item in value:
        if isinstance(item, str) and item:
            texts.append(item)
            tokens += max(1, count_words(item))
        elif isinstance(item, list) and item and all(isinstance(v, int) for v in item):
            texts.append(" ".join(map(str, item)))
            tokens += len(item)
        else:
            raise InvalidRequest(_INVALID_INPUT, "input")
    return texts, tokens


def _encode(vector: tuple[float, ...], encoding: str) -> list[float] | str:
    if encoding == "base64":
        return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()
    return list(vector)


async def handle_embeddings(
    ex: Exchange, body: Any, default_model: str | None = None
) -> web.StreamResponse:
    """``POST .../embeddings``; Azure passes its deployment as ``default_model``."""
    if not isinstance(body, dict):
        raise InvalidRequest("Invalid type for request body: expected an object.")
    model = body.get("model") or default_model
    if not isinstance(model, str):
        raise InvalidRequest("you must provide a model parameter")
    if "input" not in body:
        raise InvalidRequest(
            "Missing required parameter: 'input'.", "input", "missing_required_parameter"
        )
    texts, tokens = _inputs(body["input"])
    encoding = body.get("encoding_format") or "float"
    if encoding not in ("float", "base64"):
        raise InvalidRequest(
            f"Invalid value: '{encoding}'. Supported values are: 'float' and 'base64'.",
            "encoding_format",
            "invalid_value",
        )
    largest = _LARGE_DIMENSIONS if "large" in model else _DEFAULT_DIMENSIONS
    dimensions = check_integer(body, "dimensions", 1, largest) or largest
    data = [
        {
            "object": "embedding",
            "index": index,
            "embedding": _encode(embedding_vector(text, dimensions), encoding),
        }
        for index, text in enumerate(texts)
    ]
    return ex.json(
        {
            "object": "list",
            "data": data,
            "model": model,
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        }
    )
