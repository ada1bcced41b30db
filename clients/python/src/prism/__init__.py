"""Prism's Python client: the official `openai` client pointed at a Prism gateway, with streams
that fail loudly, typed guardrail errors and the gateway's metadata."""

from ._client import AsyncPrism, Prism
from ._errors import GuardrailBlockedError, PrismStreamError, StreamTruncatedError
from ._manager import (
    AsyncChatCompletionStream,
    AsyncChatCompletionStreamManager,
    ChatCompletionStream,
    ChatCompletionStreamManager,
)
from ._metadata import PrismMetadata, prism_metadata
from ._streaming import AsyncPrismStream, PrismStream

__all__ = [
    "AsyncChatCompletionStream",
    "AsyncChatCompletionStreamManager",
    "AsyncPrism",
    "AsyncPrismStream",
    "ChatCompletionStream",
    "ChatCompletionStreamManager",
    "GuardrailBlockedError",
    "Prism",
    "PrismMetadata",
    "PrismStream",
    "PrismStreamError",
    "StreamTruncatedError",
    "prism_metadata",
]
