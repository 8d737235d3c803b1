"""Deterministic content for the simulated providers.

Everything a simulated model "says" comes from here, and none of it is random: the same
request always yields the same answer, the same token counts and the same tool arguments.
That is what lets tests assert on exact usage numbers and lets a benchmark compare runs.

Tokens are approximated by whitespace-separated words. The approximation is deliberately
crude but *consistent*: prompt tokens are the words of the prompt, completion tokens are the
words generated, and a stream carries exactly one word per content chunk, so the usage a
client sums from a stream equals the usage the server reports.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

__all__ = [
    "Answer",
    "ToolCall",
    "count_words",
    "join_text",
    "make_answer",
    "make_tool_call",
    "new_id",
    "sample_arguments",
]

FILLER = (
    "The",
    "simulated",
    "provider",
    "answers",
    "deterministically",
    "so",
    "that",
    "tests",
    "can",
    "assert",
    "on",
    "exact",
    "content",
)

_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
_MAX_SCHEMA_DEPTH = 6
_ARGUMENT_FRAGMENT = 8


def count_words(text: str) -> int:
    """The simulator's token count for ``text``: its whitespace-separated words."""
    return len(text.split())


def new_id(rng: random.Random, prefix: str, length: int = 24) -> str:
    """An id shaped like the provider's (``chatcmpl-...``, ``msg_...``, ``toolu_...``).

    Drawn from the simulator's seeded generator so a seeded run is reproducible.
    """
    return prefix + "".join(rng.choices(_ALPHABET, k=length))


@dataclass(frozen=True, slots=True)
class Answer:
    """A generated text answer, already split into the pieces a stream sends.

    ``pieces`` joined give ``text``; each piece is one token (a word, with its leading
    space after the first). ``truncated`` means the ``max_tokens`` cap cut the answer short;
    ``stop_sequence`` names the stop sequence that ended it, if any.
    """

    pieces: tuple[str, ...]
    truncated: bool = False
    stop_sequence: str | None = None

    @property
    def text(self) -> str:
        return "".join(self.pieces)

    @property
    def tokens(self) -> int:
        return len(self.pieces)


@dataclass(frozen=True, slots=True)
class ToolCall:
    """A deterministic call of one tool, with its JSON arguments pre-split for streaming."""

    name: str
    arguments: str
    fragments: tuple[str, ...]

    @property
    def tokens(self) -> int:
        return len(self.fragments)

    @property
    def input(self) -> Any:
        return orjson.loads(self.arguments)


def make_answer(
    source: str, words: int, max_tokens: int | None = None, stop: Sequence[str] = ()
) -> Answer:
    """Echo ``source`` (cycled) up to ``words`` words, capped at ``max_tokens``.

    Echoing the prompt makes it obvious in logs and tests which request an answer belongs
    to; an empty prompt falls back to a fixed filler sentence.
    """
    base = source.split() or FILLER
    count = max(1, words)
    truncated = False
    if max_tokens is not None and max_tokens < count:
        count, truncated = max(1, max_tokens), True
    chosen = [base[i % len(base)] for i in range(count)]
    pieces = [chosen[0], *(" " + word for word in chosen[1:])]
    if stop:
        return _apply_stop(pieces, stop, truncated)
    return Answer(tuple(pieces), truncated)


def _apply_stop(pieces: list[str], stop: Sequence[str], truncated: bool) -> Answer:
    """Cut the answer before the earliest stop sequence, like the real APIs do."""
    text = "".join(pieces)
    hits = [(text.find(seq), seq) for seq in stop if seq and seq in text]
    if not hits:
        return Answer(tuple(pieces), truncated)
    cut, seq = min(hits)
    kept: list[str] = []
    consumed = 0
    for piece in pieces:
        if consumed + len(piece) <= cut:
            kept.append(piece)
            consumed += len(piece)
            continue
        if cut > consumed:
            kept.append(piece[: cut - consumed])
        break
    return Answer(tuple(kept), truncated=False, stop_sequence=seq)


def make_tool_call(name: str, schema: Any) -> ToolCall:
    """Call ``name`` with arguments built from its JSON schema."""
    arguments = orjson.dumps(sample_arguments(schema)).decode()
    fragments = tuple(
        arguments[i : i + _ARGUMENT_FRAGMENT] for i in range(0, len(arguments), _ARGUMENT_FRAGMENT)
    )
    return ToolCall(name=name, arguments=arguments, fragments=fragments or ("{}",))


def sample_arguments(schema: Any) -> dict[str, Any]:
    """A JSON object that satisfies the common subset of ``schema``.

    Every declared property is filled (not only the required ones) so a client sees
    realistic, complete arguments; unknown schema shapes degrade to ``{}``.
    """
    value = _sample(schema, 0)
    return value if isinstance(value, dict) else {}


def _sample(schema: Any, depth: int) -> Any:
    if not isinstance(schema, Mapping) or depth > _MAX_SCHEMA_DEPTH:
        return "sample"
    for key in ("const", "default"):
        if key in schema:
            return schema[key]
    enum = schema.get("enum")
    if isinstance(enum, list) and enum:
        return enum[0]
    for key in ("anyOf", "oneOf", "allOf"):
        options = schema.get(key)
        if isinstance(options, list) and options:
            return _sample(options[0], depth + 1)
    return _sample_typed(schema, _schema_type(schema), depth)


def _sample_typed(schema: Mapping[str, Any], kind: str, depth: int) -> Any:  # noqa: PLR0911 - one return per JSON type
    if kind == "object":
        props = schema.get("properties")
        if not isinstance(props, Mapping):
            return {}
        return {str(k): _sample(v, depth + 1) for k, v in props.items()}
    if kind == "array":
        return [_sample(schema.get("items"), depth + 1)]
    if kind == "integer":
        minimum = schema.get("minimum")
        return int(minimum) if isinstance(minimum, int | float) else 1
    if kind == "number":
        minimum = schema.get("minimum")
        return float(minimum) if isinstance(minimum, int | float) else 1.5
    if kind == "boolean":
        return True
    if kind == "null":
        return None
    return "sample"


def _schema_type(schema: Mapping[str, Any]) -> str:
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if isinstance(kind, str):
        return kind
    return "object" if "properties" in schema else "string"


def join_text(parts: Iterable[str]) -> str:
    """Join extracted text parts the way the token counter should see them."""
    return " ".join(part for part in parts if part)
