"""Chat-completion streams that fail loudly.

The `openai` package ends a stream quietly when the connection closes without `data: [DONE]`,
returning a shorter answer as if it were whole. These subclasses watch the server-sent events on
their way to `openai`'s own parsing: a missing `[DONE]` raises `StreamTruncatedError`, and an
error event raises the typed error it stands for (a guardrail block, an upstream failure).
"""

from __future__ import annotations

import json
from typing import Any, AsyncIterator, Iterator, Mapping, Optional

from openai import AsyncStream, Stream
from openai.types.chat import ChatCompletionChunk

from ._errors import stream_event_error, truncated_error
from ._metadata import PrismMetadata


def _check_event(data: str, response: Any) -> bool:
    """True for `[DONE]`; raises for an error event."""
    if data.startswith("[DONE]"):
        return True
    if '"error"' in data:
        try:
            parsed = json.loads(data)
        except ValueError:
            return False
        error = parsed.get("error") if isinstance(parsed, Mapping) else None
        if isinstance(error, Mapping):
            raise stream_event_error(error, response)
    return False


class PrismStream(Stream[ChatCompletionChunk]):
    """`openai.Stream[ChatCompletionChunk]` that raises on truncation and on error events."""

    @property
    def metadata(self) -> PrismMetadata:
        """The gateway metadata of this stream's response."""
        return PrismMetadata.from_headers(self.response.headers)

    def _iter_events(self) -> Iterator[Any]:
        for sse in super()._iter_events():
            if _check_event(sse.data, self.response):
                yield sse
                return
            yield sse
        raise truncated_error(self.response)


class AsyncPrismStream(AsyncStream[ChatCompletionChunk]):
    """`openai.AsyncStream[ChatCompletionChunk]` that raises on truncation and on error events."""

    @property
    def metadata(self) -> PrismMetadata:
        """The gateway metadata of this stream's response."""
        return PrismMetadata.from_headers(self.response.headers)

    async def _iter_events(self) -> AsyncIterator[Any]:
        async for sse in super()._iter_events():
            if _check_event(sse.data, self.response):
                yield sse
                return
            yield sse
        raise truncated_error(self.response)


def stream_class(stream_cls: Optional[type[Any]], is_async: bool) -> Optional[type[Any]]:
    """The Prism stream class to use instead of `openai`'s chat-chunk stream, else `stream_cls`."""
    if is_async and stream_cls == AsyncStream[ChatCompletionChunk]:
        return AsyncPrismStream
    if not is_async and stream_cls == Stream[ChatCompletionChunk]:
        return PrismStream
    return stream_cls
