"""Azure OpenAI: OpenAI's wire format behind Azure's paths, credentials and content filter.

Configuration (``provider: azure``):

* ``api_base`` is the resource endpoint (``https://{resource}.openai.azure.com``);
* ``azure_deployment`` names the Azure deployment to call, defaulting to ``model``. The routing
  decision picks the deployment, never the body's ``model`` (Azure ignores it anyway);
* ``api_version`` is sent as the ``api-version`` query parameter: the config value, else the
  ``AZURE_API_VERSION`` environment variable (read once, when the adapter is built), else
  :data:`DEFAULT_API_VERSION`, the newest GA data-plane inference version;
* ``api_key`` is sent as the ``api-key`` header. A Microsoft Entra ID token goes in the same key
  with a ``Bearer`` prefix (``api_key: "Bearer eyJ0..."``) and is then sent as
  ``Authorization: Bearer …`` instead: one secret field, and the prefix says which scheme it is.

Answers are relayed as Azure sends them (a completion cut by the output filter keeps
``finish_reason: "content_filter"``), except that a stream's opening prompt-filter chunk, which
has no choices and an empty ``id``/``object``/``model``, is dropped: OpenAI clients that read
``choices[0]`` of every chunk fail on it. A prompt blocked by the input filter (400, code
``content_filter``) becomes a :class:`ContentPolicyError`.
"""

from __future__ import annotations

import os
import re
from collections.abc import AsyncIterator, Mapping
from urllib.parse import quote

import orjson

from routeguard.errors import ContentPolicyError, UpstreamError, UpstreamStatusError
from routeguard.net.client import UpstreamPool
from routeguard.providers.base import ChatStream, Endpoint, Usage
from routeguard.providers.openai import OpenAIProvider, status_error
from routeguard.wire.chat import ChatRequest

__all__ = ["DEFAULT_API_VERSION", "AzureProvider", "ContentPolicyError", "azure_status_error"]

DEFAULT_API_VERSION = "2024-10-21"
"""The newest generally available Azure OpenAI data-plane inference API version."""

_BEARER = "bearer "
_EVENT_END = re.compile(rb"\r?\n\r?\n")


class AzureProvider(OpenAIProvider):
    """``provider: azure``."""

    def __init__(
        self, endpoint: Endpoint, pool: UpstreamPool, *, env: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(endpoint, pool)
        self.native_apis = frozenset()  # Azure's completions and responses live elsewhere
        environ = os.environ if env is None else env
        version = endpoint.api_version or environ.get("AZURE_API_VERSION") or DEFAULT_API_VERSION
        self.api_version = version
        deployment = endpoint.azure_deployment or endpoint.model
        self._prefix = f"/openai/deployments/{quote(deployment, safe='')}"
        self._query = f"?api-version={quote(version, safe='')}"
        self._auth = _auth_header(endpoint.api_key)

    def path(self, operation: str) -> str:
        """The request target for ``/chat/completions`` or ``/embeddings``."""
        return f"{self._prefix}{operation}{self._query}"

    def _headers(self) -> list[tuple[str, str]]:
        headers = [("content-type", "application/json"), ("accept-encoding", "identity")]
        if self._auth is not None:
            headers.append(self._auth)
        return headers

    def error_for(self, status: int, body: bytes, headers: dict[str, str]) -> UpstreamError:
        return azure_status_error(status, body, headers)

    async def open_chat_stream(self, request: ChatRequest) -> ChatStream:
        return _AzureStream(await super().open_chat_stream(request))


def _auth_header(api_key: str | None) -> tuple[str, str] | None:
    if not api_key:
        return None
    if api_key[: len(_BEARER)].lower() == _BEARER:
        return ("authorization", f"Bearer {api_key[len(_BEARER) :].strip()}")
    return ("api-key", api_key)


def azure_status_error(status: int, body: bytes, headers: dict[str, str]) -> UpstreamStatusError:
    """Azure's errors: OpenAI's envelope for model errors, ``{code, message}`` at its gateway."""
    error = status_error(status, body, headers)
    if status == 400 and error.code == "content_filter":
        blocked = ContentPolicyError(error.message, param=error.param)
        blocked.retry_after_s = error.retry_after_s
        return blocked
    if error.code is not None and error.code.isdigit():
        error.code = None  # Azure's gateway repeats the status as the code; it tells nothing
    return error


class _AzureStream(ChatStream):
    """Azure's stream without the leading prompt-filter annotation chunk(s)."""

    def __init__(self, inner: ChatStream) -> None:
        self._inner = inner
        self.usage: Usage | None = None

    async def __aiter__(self) -> AsyncIterator[bytes]:
        leading = True
        try:
            async for chunk in self._inner:
                if not leading:
                    yield chunk
                    continue
                rest, leading = _drop_annotations(chunk)
                if rest:
                    yield rest
        finally:
            self.usage = getattr(self._inner, "usage", None)

    async def aclose(self) -> None:
        await self._inner.aclose()


def _drop_annotations(chunk: bytes) -> tuple[bytes, bool]:
    """Drop leading annotation-only events; report whether more may follow in the next chunk."""
    position = 0
    while position < len(chunk):
        match = _EVENT_END.search(chunk, position)
        end = len(chunk) if match is None else match.end()
        if not _is_annotation(chunk[position:end]):
            return chunk[position:], False
        position = end
    return b"", True


def _is_annotation(event: bytes) -> bool:
    if b"prompt_filter_results" not in event:
        return False
    data = event.strip()
    if not data.startswith(b"data:"):
        return False
    try:
        parsed = orjson.loads(data[5:])
    except orjson.JSONDecodeError:
        return False
    return isinstance(parsed, dict) and not parsed.get("choices") and not parsed.get("usage")
