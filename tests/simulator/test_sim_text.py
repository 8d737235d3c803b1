"""Deterministic content: answers, caps, stop sequences, tool arguments, ids."""

from __future__ import annotations

import random

import pytest

from routeguard.simulator import Simulator
from routeguard.simulator.text import make_answer, make_tool_call, new_id, sample_arguments


def test_answer_cycles_the_source_to_the_word_count():
    answer = make_answer("a b c", 7)
    assert answer.text == "a b c a b c a"
    assert answer.tokens == 7
    assert not answer.truncated


def test_answer_is_capped_by_max_tokens():
    answer = make_answer("a b c", 7, max_tokens=2)
    assert answer.text == "a b"
    assert answer.truncated


def test_empty_source_uses_filler():
    assert make_answer("", 3).tokens == 3


def test_stop_sequence_mid_word():
    answer = make_answer("alpha beta gamma", 3, stop=["ta g"])
    assert answer.text == "alpha be"
    assert answer.stop_sequence == "ta g"


def test_sample_arguments_cover_schema_kinds():
    schema = {
        "type": "object",
        "properties": {
            "s": {"type": "string"},
            "e": {"enum": ["x", "y"]},
            "i": {"type": "integer", "minimum": 3},
            "n": {"type": ["number", "null"]},
            "b": {"type": "boolean"},
            "a": {"type": "array", "items": {"type": "integer"}},
            "o": {"type": "object", "properties": {"d": {"type": "string", "default": "dflt"}}},
            "u": {"anyOf": [{"type": "boolean"}, {"type": "string"}]},
        },
    }
    assert sample_arguments(schema) == {
        "s": "sample",
        "e": "x",
        "i": 3,
        "n": 1.5,
        "b": True,
        "a": [1],
        "o": {"d": "dflt"},
        "u": True,
    }
    assert sample_arguments(None) == {}


def test_tool_call_fragments_rebuild_the_arguments():
    call = make_tool_call("f", {"type": "object", "properties": {"city": {"type": "string"}}})
    assert "".join(call.fragments) == call.arguments
    assert call.input == {"city": "sample"}


def test_ids_are_seeded():
    assert new_id(random.Random(1), "msg_") == new_id(random.Random(1), "msg_")


def test_url_per_provider():
    sim = Simulator(port=1234)
    assert sim.url("a") == "http://127.0.0.1:1234/a/v1"
    assert sim.url("a", "vllm") == "http://127.0.0.1:1234/a/v1"
    assert sim.url("a", "azure") == "http://127.0.0.1:1234/a"
    assert sim.url("a", "anthropic") == "http://127.0.0.1:1234/a"
    with pytest.raises(ValueError, match="unknown provider"):
        sim.url("a", "bedrock")
