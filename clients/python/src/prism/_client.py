"""`Prism` and `AsyncPrism`: the `openai` clients pointed at a Prism gateway."""

from __future__ import annotations

import os
from functools import cached_property
from typing import Any, Mapping, Optional

import openai
from openai.resources.chat import AsyncChat, AsyncCompletions, Chat, Completions

from ._errors import GuardrailBlockedError, is_guardrail_error
from ._manager import (
    AsyncChatCompletionStreamManager,
    ChatCompletionStreamManager,
    with_usage,
)
from ._metadata import METADATA_ATTR, PrismMetadata
from ._streaming import stream_class

DEFAULT_BASE_URL = "http://127.0.0.1:8080"


def _api_key(api_key: Optional[str]) -> str:
    key = api_key if api_key is not None else os.environ.get("PRISM_API_KEY")
    if not key:
        raise openai.OpenAIError(
            "no Prism API key: pass api_key=... or set PRISM_API_KEY (a key like sk-prism-...)"
        )
    return key


def _base_url(base_url: Optional[str]) -> str:
    """The API root for the gateway root `base_url` (its `/v1` is appended, once)."""
    url = base_url if base_url is not None else os.environ.get("PRISM_BASE_URL") or DEFAULT_BASE_URL
    url = str(url).rstrip("/")
    return url if url.endswith("/v1") else url + "/v1"


# What the `openai` client fills in from OPENAI_* variables when an argument is None. A Prism
# client talks to a gateway, not to OpenAI: an OpenAI organisation, project or admin key in the
# environment must not ride along to it.
_OPENAI_ENV_ATTRS = ("organization", "project", "webhook_secret", "admin_api_key")


def _forget_openai_environment(client: Any, passed: Mapping[str, Any]) -> None:
    for attr in _OPENAI_ENV_ATTRS:
        if hasattr(client, attr):
            setattr(client, attr, passed.get(attr))
    env_headers = os.environ.get("OPENAI_CUSTOM_HEADERS")
    custom = getattr(client, "_custom_headers", None)
    if env_headers and isinstance(custom, dict):
        explicit = passed.get("default_headers") or {}
        for line in env_headers.split("\n"):
            name = line.split(":", 1)[0].strip()
            if name and name not in explicit:
                custom.pop(name, None)


def _status_error(err_msg: str, body: object, response: Any) -> Optional[openai.APIStatusError]:
    error = body.get("error") if isinstance(body, Mapping) else None
    if response.status_code == 403 and is_guardrail_error(error):
        assert isinstance(error, Mapping)
        message = error.get("message")
        text = message if isinstance(message, str) else err_msg
        return GuardrailBlockedError(text, response=response, body=body, stage="input")
    return None


def _attach_metadata(parsed: Any, response: Any) -> Any:
    # Streams carry their metadata on the stream; chunks stay untouched (no per-chunk work).
    if hasattr(parsed, "__dict__") and not getattr(parsed, "object", "").endswith(".chunk"):
        try:
            object.__setattr__(parsed, METADATA_ATTR, PrismMetadata.from_headers(response.headers))
        except (AttributeError, TypeError):
            pass
    return parsed


class PrismCompletions(Completions):
    """`chat.completions` with the Prism stream manager."""

    def stream(self, **params: Any) -> ChatCompletionStreamManager:  # type: ignore[override]
        """Starts a streamed chat completion on entering the `with` block.

        Takes the keyword arguments of `create()` (without `stream`); usage is always requested.
        """
        return ChatCompletionStreamManager(lambda: self.create(**with_usage(params)))


class AsyncPrismCompletions(AsyncCompletions):
    """`chat.completions` with the async Prism stream manager."""

    def stream(self, **params: Any) -> AsyncChatCompletionStreamManager:  # type: ignore[override]
        """Starts a streamed chat completion on entering the `async with` block."""
        return AsyncChatCompletionStreamManager(lambda: self.create(**with_usage(params)))


class PrismChat(Chat):
    @cached_property
    def completions(self) -> PrismCompletions:
        return PrismCompletions(self._client)


class AsyncPrismChat(AsyncChat):
    @cached_property
    def completions(self) -> AsyncPrismCompletions:
        return AsyncPrismCompletions(self._client)


class Prism(openai.OpenAI):
    """The `openai.OpenAI` client for a Prism gateway.

    `api_key` defaults to `PRISM_API_KEY`; `base_url` is the gateway's root (default
    `PRISM_BASE_URL`, else `http://127.0.0.1:8080`), `/v1` is appended. Every other argument is
    `openai.OpenAI`'s. `OPENAI_*` environment variables are not read.
    """

    def __init__(self, *, api_key: Optional[str] = None, base_url: Optional[str] = None, **kwargs: Any) -> None:
        super().__init__(api_key=_api_key(api_key), base_url=_base_url(base_url), **kwargs)
        _forget_openai_environment(self, kwargs)
        # Older `openai` releases assign `chat` in their constructor, hiding the property below.
        self.__dict__["chat"] = self.chat_resource()

    def chat_resource(self) -> PrismChat:
        return PrismChat(self)

    @cached_property
    def chat(self) -> PrismChat:
        return PrismChat(self)

    def request(self, cast_to: Any, options: Any, *, stream: bool = False, stream_cls: Any = None) -> Any:
        return super().request(cast_to, options, stream=stream, stream_cls=stream_class(stream_cls, False))

    def _make_status_error(self, err_msg: str, *, body: object, response: Any) -> openai.APIStatusError:
        return _status_error(err_msg, body, response) or super()._make_status_error(
            err_msg, body=body, response=response
        )

    def _process_response_data(self, *, data: object, cast_to: Any, response: Any) -> Any:
        return _attach_metadata(
            super()._process_response_data(data=data, cast_to=cast_to, response=response), response
        )


class AsyncPrism(openai.AsyncOpenAI):
    """The `openai.AsyncOpenAI` client for a Prism gateway (same options as `Prism`)."""

    def __init__(self, *, api_key: Optional[str] = None, base_url: Optional[str] = None, **kwargs: Any) -> None:
        super().__init__(api_key=_api_key(api_key), base_url=_base_url(base_url), **kwargs)
        _forget_openai_environment(self, kwargs)
        # Older `openai` releases assign `chat` in their constructor, hiding the property below.
        self.__dict__["chat"] = self.chat_resource()

    def chat_resource(self) -> AsyncPrismChat:
        return AsyncPrismChat(self)

    @cached_property
    def chat(self) -> AsyncPrismChat:
        return AsyncPrismChat(self)

    async def request(self, cast_to: Any, options: Any, *, stream: bool = False, stream_cls: Any = None) -> Any:
        return await super().request(cast_to, options, stream=stream, stream_cls=stream_class(stream_cls, True))

    def _make_status_error(self, err_msg: str, *, body: object, response: Any) -> openai.APIStatusError:
        return _status_error(err_msg, body, response) or super()._make_status_error(
            err_msg, body=body, response=response
        )

    def _process_response_data(self, *, data: object, cast_to: Any, response: Any) -> Any:
        return _attach_metadata(
            super()._process_response_data(data=data, cast_to=cast_to, response=response), response
        )
