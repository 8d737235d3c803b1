"""The Azure adapter's own rules: paths, api-version, credentials, filter errors, stream opening."""

from __future__ import annotations

import orjson
import pytest

from routeguard.net.client import Origin, Timeouts, UpstreamPool
from routeguard.providers.azure import (
    DEFAULT_API_VERSION,
    AzureProvider,
    ContentPolicyError,
    _drop_annotations,
    azure_status_error,
)
from routeguard.providers.base import Endpoint


def provider(
    *,
    api_version: str | None = None,
    azure_deployment: str | None = None,
    api_key: str | None = "k",
    env: dict[str, str] | None = None,
) -> AzureProvider:
    endpoint = Endpoint(
        deployment="az-east",
        provider="azure",
        model="gpt-4-turbo",
        origin=Origin.parse("https://res.openai.azure.com"),
        api_key=api_key,
        timeouts=Timeouts(),
        stream_timeouts=Timeouts(),
        api_version=api_version,
        azure_deployment=azure_deployment,
    )
    return AzureProvider(endpoint, UpstreamPool(), env=env or {})


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({}, f"/openai/deployments/gpt-4-turbo/chat/completions?api-version={DEFAULT_API_VERSION}"),
        (
            {"azure_deployment": "prod gpt4"},
            "/openai/deployments/prod%20gpt4/chat/completions?api-version=",
        ),
        (
            {"api_version": "2024-06-01"},
            "/openai/deployments/gpt-4-turbo/chat/completions?api-version=2024-06-01",
        ),
        ({"env": {"AZURE_API_VERSION": "2025-01-01-preview"}}, "?api-version=2025-01-01-preview"),
        (
            {"api_version": "2024-06-01", "env": {"AZURE_API_VERSION": "2025-01-01-preview"}},
            "?api-version=2024-06-01",
        ),
    ],
)
def test_chat_path(kwargs: dict[str, object], expected: str) -> None:
    path = provider(**kwargs).path("/chat/completions")  # type: ignore[arg-type]
    assert expected in path


def test_embeddings_path() -> None:
    assert provider().path("/embeddings").startswith("/openai/deployments/gpt-4-turbo/embeddings?")


@pytest.mark.parametrize(
    ("api_key", "header"),
    [
        ("secret", ("api-key", "secret")),
        ("Bearer eyJ0.token", ("authorization", "Bearer eyJ0.token")),
        ("bearer   eyJ0.token", ("authorization", "Bearer eyJ0.token")),
        (None, None),
    ],
)
def test_credentials(api_key: str | None, header: tuple[str, str] | None) -> None:
    headers = provider(api_key=api_key)._headers()
    auth = [h for h in headers if h[0] in ("api-key", "authorization")]
    assert auth == ([header] if header else [])


PROMPT_FILTERED = orjson.dumps(
    {
        "error": {
            "message": "The response was filtered due to the prompt triggering Azure OpenAI's content management policy.",
            "type": None,
            "param": "prompt",
            "code": "content_filter",
            "status": 400,
            "innererror": {"code": "ResponsibleAIPolicyViolation"},
        }
    }
)


def test_prompt_filter_is_a_content_policy_error() -> None:
    error = azure_status_error(400, PROMPT_FILTERED, {})
    assert isinstance(error, ContentPolicyError)
    assert (error.status, error.reason, error.retryable) == (400, "content_policy", False)
    assert (error.error_type, error.code, error.param) == (
        "invalid_request_error",
        "content_filter",
        "prompt",
    )


@pytest.mark.parametrize(
    ("status", "body", "code", "retryable"),
    [
        (401, {"error": {"code": "401", "message": "Access denied"}}, None, True),
        (429, {"error": {"code": "429", "message": "Rate limit"}}, None, True),
        (
            404,
            {"error": {"code": "DeploymentNotFound", "message": "no"}},
            "DeploymentNotFound",
            False,
        ),
        (
            400,
            {"error": {"message": "bad", "type": "invalid_request_error", "code": None}},
            None,
            False,
        ),
    ],
)
def test_gateway_errors(
    status: int, body: dict[str, object], code: str | None, retryable: bool
) -> None:
    error = azure_status_error(status, orjson.dumps(body), {"retry-after": "3"})
    assert not isinstance(error, ContentPolicyError)
    assert error.code == code
    assert error.retryable is retryable
    assert error.retry_after_s == 3.0


ANNOTATION = b'data: {"choices":[],"created":0,"id":"","model":"","object":"","prompt_filter_results":[{"prompt_index":0}]}\n\n'
CHUNK = b'data: {"id":"c1","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"role":"assistant"}}]}\n\n'
USAGE = b'data: {"id":"c1","choices":[],"usage":{"prompt_tokens":1},"prompt_filter_results":[]}\n\n'


@pytest.mark.parametrize(
    ("chunk", "rest", "more"),
    [
        (ANNOTATION + CHUNK, CHUNK, False),
        (ANNOTATION.replace(b"\n\n", b"\r\n\r\n") + CHUNK, CHUNK, False),
        (ANNOTATION, b"", True),
        (CHUNK + ANNOTATION, CHUNK + ANNOTATION, False),
        (USAGE, USAGE, False),
        (b"data: [DONE]\n\n", b"data: [DONE]\n\n", False),
    ],
)
def test_leading_annotation_dropped(chunk: bytes, rest: bytes, more: bool) -> None:
    assert _drop_annotations(chunk) == (rest, more)
